#!/usr/bin/env python3
"""Checks Halo-written data files with numpy/h5py themselves (the test suite runs it when numpy
is importable; Debian's /usr/bin/python3 has numpy 1.24 and h5py).

  check_npy_roundtrip.py npy EXPECTED.json [--compare-bytes]
      EXPECTED.json: {"folder": DIR, "files": [{"name", "label", "dtype", "shape", "sum",
      "weighted_sum"}, ...]}. Each file must load with np.load(f, allow_pickle=True) as a
      length-2 object array [image, numpy.float64 label] with those values. --compare-bytes
      also re-saves what was loaded with np.save and requires the very same bytes.
  check_npy_roundtrip.py h5 FILE.h5 EXPECTED.json
      The HDF5 layout: images [N,1,H,W], labels [N], params/<name> [N], attributes.
  check_npy_roundtrip.py vectors
      Prints the small numpy-written test vectors embedded in tests/data/test_formats.cpp.

Exit status 0 when everything matches; otherwise 1 with one line per problem.
"""
import io
import json
import os
import pickle
import sys

import numpy as np


def weighted_sum(a):
    flat = np.asarray(a, dtype=np.float64).ravel()
    w = (np.arange(flat.size) % 1000 + 1).astype(np.float64)
    return float(np.dot(flat, w))


def check_npy(expected_path, compare_bytes):
    spec = json.load(open(expected_path))
    folder = spec["folder"]
    problems = []
    for e in spec["files"]:
        path = os.path.join(folder, e["name"])
        try:
            arr = np.load(path, allow_pickle=True)
        except Exception as ex:  # noqa: BLE001 - report anything numpy raises
            problems.append(f"{path}: np.load failed: {ex!r}")
            continue
        if arr.dtype != object or arr.shape != (2,):
            problems.append(f"{path}: expected an object array of shape (2,), got {arr.dtype} {arr.shape}")
            continue
        img, label = arr[0], arr[1]
        if not isinstance(img, np.ndarray):
            problems.append(f"{path}: item 0 is {type(img).__name__}, not an ndarray")
            continue
        if str(img.dtype) != e["dtype"]:
            problems.append(f"{path}: image dtype {img.dtype}, expected {e['dtype']}")
        if list(img.shape) != list(e["shape"]):
            problems.append(f"{path}: image shape {img.shape}, expected {tuple(e['shape'])}")
        if float(np.sum(img, dtype=np.float64)) != e["sum"]:
            problems.append(f"{path}: pixel sum {float(np.sum(img, dtype=np.float64))}, expected {e['sum']}")
        if weighted_sum(img) != e["weighted_sum"]:
            problems.append(f"{path}: weighted pixel sum {weighted_sum(img)}, expected {e['weighted_sum']}")
        if not isinstance(label, np.float64):
            problems.append(f"{path}: label is {type(label).__name__}, expected numpy.float64")
        if float(label) != e["label"]:
            problems.append(f"{path}: label {float(label)!r}, expected {e['label']!r}")
        try:
            label.astype("float32")  # what DeepLense solvers call on it
        except Exception as ex:  # noqa: BLE001
            problems.append(f"{path}: label.astype failed: {ex!r}")
        if compare_bytes:
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=True)
            if buf.getvalue() != open(path, "rb").read():
                problems.append(f"{path}: np.save of the loaded array gives different bytes")
    return problems, len(spec["files"])


def check_h5(h5_path, expected_path):
    import h5py

    spec = json.load(open(expected_path))
    problems = []
    with h5py.File(h5_path, "r") as f:
        images, labels = f["images"], f["labels"]
        n, h, w = spec["count"], spec["height"], spec["width"]
        if images.shape != (n, 1, h, w):
            problems.append(f"{h5_path}: images shape {images.shape}, expected {(n, 1, h, w)}")
        if str(images.dtype) != spec["dtype"]:
            problems.append(f"{h5_path}: images dtype {images.dtype}, expected {spec['dtype']}")
        if labels.shape != (n,):
            problems.append(f"{h5_path}: labels shape {labels.shape}, expected {(n,)}")
        for i, e in enumerate(spec["images"]):
            img = images[i, 0]
            if float(np.sum(img, dtype=np.float64)) != e["sum"] or weighted_sum(img) != e["weighted_sum"]:
                problems.append(f"{h5_path}: image {i} pixel sums differ")
            if float(labels[i]) != e["label"]:
                problems.append(f"{h5_path}: label {i} is {float(labels[i])!r}, expected {e['label']!r}")
        for name, values in spec.get("params", {}).items():
            got = f["params"][name][...]
            if got.tolist() != values:
                problems.append(f"{h5_path}: params/{name} = {got.tolist()}, expected {values}")
        for key, value in spec.get("attributes", {}).items():
            got = f.attrs.get(key)
            if isinstance(got, bytes):
                got = got.decode()
            if isinstance(got, np.ndarray):
                got = got.tolist()
            elif isinstance(got, np.generic):
                got = got.item()
            if got != value:
                problems.append(f"{h5_path}: attribute {key} = {got!r}, expected {value!r}")
    return problems, spec["count"]


def obj_file(img, label, proto):
    obj = np.empty(2, dtype=object)
    obj[0] = img
    obj[1] = label
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(obj))
    pickle.dump(obj, buf, protocol=proto)
    return buf.getvalue()


def vectors():
    """Small numpy-written files: a 3x4 image (arange(12) % 5, pixel sum 21), label 0.0375."""
    img = (np.arange(12, dtype=np.int64) % 5).reshape(3, 4)
    v = {
        "kProto2": obj_file(img, np.float64(0.0375), 2),
        "kProto3": obj_file(img, np.float64(0.0375), 3),
        "kProto4": obj_file(img, np.float64(0.0375), 4),
        "kProto5": obj_file(img, np.float64(0.0375), 5),
        "kPyFloatF4": obj_file(img.astype(np.float32), 0.0375, 3),
        "kBigEndianI8": obj_file(img.astype(">i8"), np.float64(0.0375), 3),
        "kU2Leading1": obj_file(img.astype(np.uint16).reshape(1, 3, 4), np.float64(0.0375), 3),
        "kI4Trailing1": obj_file(img.astype(np.int32).reshape(3, 4, 1), np.float32(0.0375), 3),
        "kF8Proto2": obj_file(img.astype(np.float64), 0.0375, 2),
        "kFortran": obj_file(np.asfortranarray(img.astype(np.float64)), np.float64(0.0375), 3),
        "kStrLabel": obj_file(img, "hello", 3),
    }
    o3 = np.empty(3, dtype=object)
    o3[0], o3[1], o3[2] = img, np.float64(0.0375), None
    buf = io.BytesIO()
    np.save(buf, o3, allow_pickle=True)
    v["kThreeItems"] = buf.getvalue()
    for name, arr in [("kPlainBeF8", img.astype(">f8")), ("kPlainU1", img.astype(np.uint8)),
                      ("kPlainFortranF4", np.asfortranarray(img.astype(np.float32))),
                      ("kPlainI2", img.astype(np.int16)), ("kPlainBool", img > 2)]:
        buf = io.BytesIO()
        np.save(buf, arr)
        v[name] = buf.getvalue()
    for name, ver in [("kPlainV2", (2, 0)), ("kPlainV3", (3, 0))]:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, img.astype(np.float32), version=ver)
        v[name] = buf.getvalue()
    buf = io.BytesIO()
    o = np.empty(2, dtype=object)
    o[0], o[1] = img, np.float64(0.0375)
    np.lib.format.write_array(buf, o, version=(2, 0))
    v["kObjectV2"] = buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, np.zeros(3, dtype=[("a", "<f4"), ("b", "<i8")]))
    v["kStructured"] = buf.getvalue()

    class Evil:  # pickled only; the C++ reader must refuse the global, never run it
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "|O", "fortran_order": False, "shape": (2,)})
    v["kEvil"] = hdr.getvalue() + pickle.dumps(Evil(), protocol=3)
    print(f"// Generated by `/usr/bin/python3 tools/check_npy_roundtrip.py vectors` (numpy {np.__version__}).")
    for k, b in v.items():
        h = b.hex()
        print(f"const char* const {k} =")
        for i in range(0, len(h), 120):
            print(f'    "{h[i:i + 120]}"')
        print("    ;")


def main(argv):
    if len(argv) >= 2 and argv[1] == "vectors":
        vectors()
        return 0
    if len(argv) >= 3 and argv[1] == "npy":
        problems, n = check_npy(argv[2], "--compare-bytes" in argv[3:])
    elif len(argv) == 4 and argv[1] == "h5":
        problems, n = check_h5(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"ok: {n} entries match (numpy {np.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
