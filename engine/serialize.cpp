// State dicts and tensors in HDF5 (see serialize.h), with the HDF5 C API. Every handle is held by
// a small RAII guard so that an error half-way through closes what was opened.
#include "engine/serialize.h"

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace halo {

namespace {
struct H5Handle {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H5Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~H5Handle() {
    if (id >= 0 && close) close(id);
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  operator hid_t() const { return id; }
  bool ok() const { return id >= 0; }
};

void quiet_hdf5() {
  static bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // we report errors ourselves, with context
    return true;
  }();
  (void)done;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

hid_t open_for_read(const std::string& path) {
  quiet_hdf5();
  if (!std::filesystem::exists(path)) fail(path, "file not found");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, "not an HDF5 file");
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) fail(path, "cannot open as HDF5 (corrupt or truncated?)");
  return f;
}

// BatchNorm's num_batches_tracked is an int64 counter, but files written by other tools may hold
// it as float (PyTorch's load_state_dict copies it into the int64 buffer) or as a narrower or
// unsigned integer. Any numeric type is read; every value must be a whole number that fits in
// int64, else the key is named and the file refused.
Tensor read_counter(hid_t ds, hid_t type, H5T_class_t cls, const Shape& shape, const std::string& path,
                    const std::string& name) {
  Tensor t = Tensor::empty(shape, Device::cpu, DType::i64);
  const std::size_t n = std::size_t(t.numel());
  if (n == 0) return t;
  int64_t* out = t.data_i64();
  auto bad = [&](const std::string& value) {
    fail(path, "dataset '" + name + "' holds " + value +
                   ", expected a whole number in int64's range (a count of batches)");
  };
  if (cls == H5T_FLOAT) {
    std::vector<double> v(n);
    if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
      fail(path, "dataset '" + name + "': read failed (truncated file?)");
    for (std::size_t i = 0; i < n; ++i) {
      // 2^63 is exactly representable; every whole double below it in magnitude fits in int64.
      if (!std::isfinite(v[i]) || v[i] != std::floor(v[i]) || std::fabs(v[i]) >= 9223372036854775808.0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", v[i]);
        bad(buf);
      }
      out[i] = static_cast<int64_t>(v[i]);
    }
  } else if (H5Tget_sign(type) == H5T_SGN_NONE) {
    std::vector<unsigned long long> v(n);
    if (H5Dread(ds, H5T_NATIVE_ULLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
      fail(path, "dataset '" + name + "': read failed (truncated file?)");
    for (std::size_t i = 0; i < n; ++i) {
      if (v[i] > static_cast<unsigned long long>(INT64_MAX)) bad(std::to_string(v[i]));
      out[i] = static_cast<int64_t>(v[i]);
    }
  } else {
    if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
      fail(path, "dataset '" + name + "': read failed (truncated file?)");
  }
  return t;
}

Tensor read_dataset(hid_t file, const std::string& path, const std::string& name) {
  H5Handle ds(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) fail(path, "no dataset '" + name + "'");
  H5Handle space(H5Dget_space(ds), H5Sclose);
  H5Handle type(H5Dget_type(ds), H5Tclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) fail(path, "dataset '" + name + "': unreadable dataspace");
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  Shape shape(dims.begin(), dims.end());
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  const std::size_t sep = name.find_last_of("./");  // "layer1.0.bn1.num_batches_tracked", "model/bn1...."
  if (name.substr(sep == std::string::npos ? 0 : sep + 1) == "num_batches_tracked" &&
      (cls == H5T_FLOAT || cls == H5T_INTEGER) &&
      !(cls == H5T_INTEGER && size == 8 && H5Tget_sign(type) == H5T_SGN_2))
    return read_counter(ds, type, cls, shape, path, name);
  if (cls == H5T_FLOAT && size == 4) {
    Tensor t = Tensor::empty(shape);
    if (t.numel() > 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data()) < 0)
      fail(path, "dataset '" + name + "': read failed (truncated file?)");
    return t;
  }
  if (cls == H5T_INTEGER && size == 8 && H5Tget_sign(type) == H5T_SGN_2) {
    Tensor t = Tensor::empty(shape, Device::cpu, DType::i64);
    if (t.numel() > 0 && H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_i64()) < 0)
      fail(path, "dataset '" + name + "': read failed (truncated file?)");
    return t;
  }
  const std::string got = (cls == H5T_FLOAT ? "float" : cls == H5T_INTEGER ? "integer" : "non-numeric") +
                          std::string(" of ") + std::to_string(size) + " bytes";
  fail(path, "dataset '" + name + "' has type " + got + ", expected float32 (or int64 for counters)");
}

void write_all(const StateDict& sd, const std::string& path, const H5Attributes& attributes = {}) {
  quiet_hdf5();
  const std::string tmp = path + ".tmp";
  {
    // Track link creation order so that a reader lists the keys in the order they were written.
    H5Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) fail(path, "cannot create '" + tmp + "' (missing folder or no permission?)");
    H5Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    H5Pset_create_intermediate_group(lcpl, 1);  // "group/name" keys create their groups
    for (const auto& [key, t0] : sd.items()) {
      Tensor t = t0.to(Device::cpu);
      std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
      H5Handle space(t.dim() == 0 ? H5Screate(H5S_SCALAR)
                                  : H5Screate_simple(t.dim(), dims.data(), nullptr),
                     H5Sclose);
      const bool f32 = t.dtype() == DType::f32;
      H5Handle ds(H5Dcreate2(file, key.c_str(), f32 ? H5T_IEEE_F32LE : H5T_STD_I64LE, space, lcpl,
                             H5P_DEFAULT, H5P_DEFAULT),
                  H5Dclose);
      if (!ds.ok()) fail(path, "cannot create dataset '" + key + "'");
      herr_t st = f32 ? H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data())
                      : H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_i64());
      if (st < 0) fail(path, "cannot write dataset '" + key + "' (disk full?)");
    }
    for (const auto& [name, value] : attributes) {
      H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(type, std::max<std::size_t>(value.size(), 1));
      H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
      H5Handle attr(H5Acreate2(file, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
      if (!attr.ok() || H5Awrite(attr, type, value.empty() ? "" : value.c_str()) < 0)
        fail(path, "cannot write attribute '" + name + "'");
    }
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) fail(path, "flush failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail(path, "cannot rename '" + tmp + "': " + ec.message());
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}
}  // namespace

void save_state_dict(const StateDict& sd, const std::string& path, const H5Attributes& attributes) {
  write_all(sd, path, attributes);
}

H5Attributes read_h5_attributes(const std::string& path) {
  H5Handle file(open_for_read(path), H5Fclose);
  H5Attributes out;
  H5O_info_t info;
  if (H5Oget_info(file, &info) < 0) fail(path, "cannot read the root's attributes");
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    H5Handle attr(H5Aopen_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) continue;
    char name[256] = {0};
    H5Aget_name(attr, sizeof(name) - 1, name);
    H5Handle type(H5Aget_type(attr), H5Tclose);
    if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) > 0) continue;
    std::string value(H5Tget_size(type), '\0');
    if (H5Aread(attr, type, value.data()) < 0) continue;
    value.resize(std::strlen(value.c_str()));
    out.emplace_back(name, value);
  }
  return out;
}
void write_tensors_h5(const std::string& path, const StateDict& tensors) { write_all(tensors, path); }

StateDict load_state_dict_file(const std::string& path, const std::string& group) {
  H5Handle file(open_for_read(path), H5Fclose);
  const std::string where = group.empty() ? "the file's root" : "group '" + group + "'";
  H5Handle loc(group.empty() ? H5Gopen2(file, "/", H5P_DEFAULT) : H5Gopen2(file, group.c_str(), H5P_DEFAULT),
               H5Gclose);
  if (!loc.ok()) fail(path, "no group '" + group + "'");
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Literate(loc, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_name, &names) < 0) {
    names.clear();
    idx = 0;  // files written without creation order tracking: fall back to name order
    if (H5Literate(loc, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &names) < 0)
      fail(path, "cannot list the datasets of " + where);
  }
  StateDict sd;
  const std::string prefix = group.empty() ? "" : group + "/";
  for (const std::string& n : names) {
    H5O_info_t info;
    if (H5Oget_info_by_name(loc, n.c_str(), &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET)
      fail(path, "'" + prefix + n + "' is not a dataset (a state dict holds one dataset per key in " + where + ")");
    sd.set(n, read_dataset(file, path, prefix + n));
  }
  return sd;
}

void load_module(nn::Module& m, const std::string& path, bool strict) {
  StateDict sd = load_state_dict_file(path);
  try {
    m.load_state_dict(sd, strict);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
}

Tensor read_tensor_h5(const std::string& path, const std::string& dataset) {
  H5Handle file(open_for_read(path), H5Fclose);
  return read_dataset(file, path, dataset);
}

}  // namespace halo
