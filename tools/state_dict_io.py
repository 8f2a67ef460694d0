"""State dicts in Halo's HDF5 layout, from and to PyTorch.

The layout (engine/serialize.h): one dataset per state-dict key at the file's root, named by the
key, float32 for parameters and float buffers, int64 0-d for num_batches_tracked (a float32 0-d
dataset is accepted there too). Keys are written in state-dict order (HDF5 link creation order is
tracked, so Halo lists them back in that order). Files are written to "<path>.tmp" and renamed.

    from state_dict_io import load_into, save_state_dict, read_state_dict
    load_into(model, "weights.h5")               # strict: same keys, shapes checked by torch
    save_state_dict(model.state_dict(), "w.h5")
"""
import os
from collections import OrderedDict

import h5py
import numpy as np
import torch


def read_state_dict(path, group=None):
    """Every root dataset of `path` (or of `group`, e.g. "model" in a training checkpoint) as an
    OrderedDict key -> torch tensor, in file order. Root attributes are ignored."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: file not found")
    out = OrderedDict()
    with h5py.File(path, "r") as f:
        root = f
        if group:
            if group not in f or not isinstance(f[group], h5py.Group):
                raise KeyError(f"{path}: no group '{group}'")
            root = f[group]
        for key in root.keys():
            obj = root[key]
            if not isinstance(obj, h5py.Dataset):
                raise ValueError(f"{path}: '{key}' is not a dataset (a state dict holds one "
                                 "dataset per key at the root; pass group= for a checkpoint)")
            arr = obj[()]
            arr = np.asarray(arr)
            if arr.dtype == np.float32:
                t = torch.from_numpy(arr.copy())
            elif arr.dtype == np.int64:
                t = torch.from_numpy(arr.copy())
            else:
                raise ValueError(f"{path}: dataset '{key}' has dtype {arr.dtype}, expected float32 "
                                 "(or int64 for counters)")
            out[key] = t
    return out


def load_into(model, path, strict=True, group=None):
    """Loads the HDF5 state dict at `path` into a torch module. strict: the key sets must be equal
    (the error lists missing and unexpected keys); shapes are checked by torch. Tensors are cast to
    the dtype the module holds (num_batches_tracked back to int64)."""
    sd = read_state_dict(path, group)
    mine = model.state_dict()
    if strict:
        missing = [k for k in mine if k not in sd]
        unexpected = [k for k in sd if k not in mine]
        if missing or unexpected:
            raise KeyError(f"{path}: state dict does not match the model: missing {missing[:10]}"
                           f"{' ...' if len(missing) > 10 else ''}, unexpected {unexpected[:10]}"
                           f"{' ...' if len(unexpected) > 10 else ''}")
    for k, v in list(sd.items()):
        if k in mine:
            if tuple(v.shape) != tuple(mine[k].shape):
                raise ValueError(f"{path}: key '{k}' has shape {list(v.shape)}, expected "
                                 f"{list(mine[k].shape)}")
            sd[k] = v.to(mine[k].dtype)
    model.load_state_dict(sd, strict=strict)
    return model


def save_state_dict(state_dict, path):
    """Writes a torch state dict (or any key -> tensor/array mapping) in Halo's layout."""
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", track_order=True) as f:
        for key, value in state_dict.items():
            arr = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
            if np.issubdtype(arr.dtype, np.integer):
                arr = arr.astype(np.int64)
            else:
                arr = arr.astype(np.float32)
            f.create_dataset(key, data=arr)
    os.replace(tmp, path)


def write_tensors(path, tensors):
    """Writes named arrays (inputs, outputs) to an HDF5 file; names may contain '/' (groups)."""
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", track_order=True) as f:
        for key, value in tensors.items():
            arr = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
            if not np.issubdtype(arr.dtype, np.integer):
                arr = arr.astype(np.float32)
            f.create_dataset(key, data=arr)
    os.replace(tmp, path)


def read_tensor(path, dataset):
    with h5py.File(path, "r") as f:
        if dataset not in f:
            raise KeyError(f"{path}: no dataset '{dataset}'")
        return torch.from_numpy(np.asarray(f[dataset][()]).copy())
