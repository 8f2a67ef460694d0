// State dicts in HDF5: one dataset per key at the file's root, named by the key, float32 (int64 for
// num_batches_tracked and other counters), so that `h5py` + `torch.from_numpy` load them into
// PyTorch and back (tools/state_dict_io.py). Files are written to "<path>.tmp" and renamed.
#pragma once
#include <string>

#include "engine/nn.h"

namespace halo {

// `attributes` become string attributes of the file's root (e.g. the label scaling a model was
// trained with); they do not disturb readers that look only at the datasets.
using H5Attributes = std::vector<std::pair<std::string, std::string>>;
void save_state_dict(const StateDict& sd, const std::string& path, const H5Attributes& attributes = {});
H5Attributes read_h5_attributes(const std::string& path);
// Reads every dataset at the root. Errors (missing file, not HDF5, unsupported dtype) throw
// std::runtime_error naming the file and the key. A `num_batches_tracked` key may be stored in any
// numeric type (PyTorch files sometimes hold it as float): whole values are read as int64, others
// are refused naming the key.
// With `group`, reads the datasets of that group instead (keys without the group prefix), e.g.
// the "model" and "optimizer" groups of a training checkpoint.
StateDict load_state_dict_file(const std::string& path, const std::string& group = "");
// Loads into a module with Module::load_state_dict (strict by default); messages name the file.
void load_module(nn::Module& m, const std::string& path, bool strict = true);

// Single tensors by dataset name (for inputs/outputs of eval tools and test fixtures).
Tensor read_tensor_h5(const std::string& path, const std::string& dataset);
void write_tensors_h5(const std::string& path, const StateDict& tensors);

}  // namespace halo
