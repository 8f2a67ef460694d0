// HDF5 data sets (see data/hdf5_dataset.h), with the HDF5 C API. Handles are held by a small RAII
// guard; HDF5's own error printing is switched off and every failure becomes a std::runtime_error
// naming the file and the dataset or attribute.
#include "data/hdf5_dataset.h"

#include <fmt/format.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace halo::data {

namespace {

struct H5 {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H5() = default;
  H5(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~H5() { reset(); }
  H5(H5&& o) noexcept : id(o.id), close(o.close) { o.id = -1; }
  H5& operator=(H5&& o) noexcept {
    if (this != &o) {
      reset();
      id = o.id;
      close = o.close;
      o.id = -1;
    }
    return *this;
  }
  H5(const H5&) = delete;
  H5& operator=(const H5&) = delete;
  void reset() {
    if (id >= 0 && close) close(id);
    id = -1;
  }
  operator hid_t() const { return id; }
  bool ok() const { return id >= 0; }
};

// Our messages replace HDF5's printed error stacks (the setting is per thread in thread-safe
// builds).
void quiet() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", path, what));
}

hid_t mem_type(DType t) {
  switch (t) {
    case DType::Bool:
      return H5T_NATIVE_UINT8;
    case DType::Int8:
      return H5T_NATIVE_INT8;
    case DType::Int16:
      return H5T_NATIVE_INT16;
    case DType::Int32:
      return H5T_NATIVE_INT32;
    case DType::Int64:
      return H5T_NATIVE_INT64;
    case DType::UInt8:
      return H5T_NATIVE_UINT8;
    case DType::UInt16:
      return H5T_NATIVE_UINT16;
    case DType::UInt32:
      return H5T_NATIVE_UINT32;
    case DType::UInt64:
      return H5T_NATIVE_UINT64;
    case DType::Float32:
      return H5T_NATIVE_FLOAT;
    case DType::Float64:
      return H5T_NATIVE_DOUBLE;
  }
  return H5T_NATIVE_DOUBLE;
}

// The DType matching a stored numeric type, or a message saying what it is.
bool dtype_of_h5(hid_t type, DType* out, std::string* what) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) {
    if (size == 4) {
      *out = DType::Float32;
      return true;
    }
    if (size == 8) {
      *out = DType::Float64;
      return true;
    }
    *what = fmt::format("float of {} bytes", size);
    return false;
  }
  if (cls == H5T_INTEGER) {
    const bool sign = H5Tget_sign(type) == H5T_SGN_2;
    switch (size) {
      case 1:
        *out = sign ? DType::Int8 : DType::UInt8;
        return true;
      case 2:
        *out = sign ? DType::Int16 : DType::UInt16;
        return true;
      case 4:
        *out = sign ? DType::Int32 : DType::UInt32;
        return true;
      case 8:
        *out = sign ? DType::Int64 : DType::UInt64;
        return true;
      default:
        *what = fmt::format("integer of {} bytes", size);
        return false;
    }
  }
  *what = cls == H5T_STRING ? "string" : cls == H5T_COMPOUND ? "compound" : "non-numeric";
  return false;
}

std::vector<hsize_t> dims_of(hid_t ds, const std::string& path, const std::string& name) {
  H5 space(H5Dget_space(ds), H5Sclose);
  const int rank = space.ok() ? H5Sget_simple_extent_ndims(space) : -1;
  if (rank < 0) fail(path, fmt::format("dataset '{}': unreadable dataspace", name));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

std::string dims_str(const std::vector<hsize_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

// ---- attributes ----

void write_scalar_attr(hid_t obj, const std::string& name, hid_t type, const void* value,
                       const std::string& path) {
  H5 space(H5Screate(H5S_SCALAR), H5Sclose);
  H5 attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || H5Awrite(attr, type, value) < 0)
    fail(path, fmt::format("cannot write attribute '{}'", name));
}

void write_string_attr(hid_t obj, const std::string& name, const std::string& value,
                       const std::string& path) {
  H5 type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const char* p = value.c_str();
  write_scalar_attr(obj, name, type, &p, path);
}

void write_array_attr(hid_t obj, const std::string& name, const std::vector<double>& v,
                      const std::string& path) {
  hsize_t n = v.size();
  H5 space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5 attr(H5Acreate2(obj, name.c_str(), H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose);
  if (!attr.ok() || (n > 0 && H5Awrite(attr, H5T_NATIVE_DOUBLE, v.data()) < 0))
    fail(path, fmt::format("cannot write attribute '{}'", name));
}

void write_json_attr(hid_t obj, const std::string& name, const nlohmann::json& v,
                     const std::string& path) {
  if (v.is_boolean()) {
    int8_t b = v.get<bool>() ? 1 : 0;
    write_scalar_attr(obj, name, H5T_NATIVE_INT8, &b, path);
  } else if (v.is_number_integer()) {
    int64_t i = v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
    write_scalar_attr(obj, name, H5T_NATIVE_INT64, &i, path);
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    write_scalar_attr(obj, name, H5T_NATIVE_DOUBLE, &d, path);
  } else if (v.is_string()) {
    write_string_attr(obj, name, v.get<std::string>(), path);
  } else if (v.is_array() && !v.empty() &&
             std::all_of(v.begin(), v.end(),
                         [](const nlohmann::json& e) { return e.is_number(); })) {
    std::vector<double> d;
    for (const auto& e : v) d.push_back(e.get<double>());
    write_array_attr(obj, name, d, path);
  } else {
    write_string_attr(obj, name, v.dump(), path);
  }
}

nlohmann::json read_attr(hid_t attr, const std::string& path, const std::string& name) {
  H5 type(H5Aget_type(attr), H5Tclose);
  H5 space(H5Aget_space(attr), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  const H5T_class_t cls = H5Tget_class(type);
  if (n < 0) fail(path, fmt::format("attribute '{}': unreadable dataspace", name));
  if (cls == H5T_STRING) {
    if (n != 1) return fmt::format("<{} strings>", n);
    if (H5Tis_variable_str(type) > 0) {
      H5 mt(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(mt, H5T_VARIABLE);
      H5Tset_cset(mt, H5Tget_cset(type));
      char* p = nullptr;
      if (H5Aread(attr, mt, &p) < 0) fail(path, fmt::format("attribute '{}': read failed", name));
      std::string s = p ? p : "";
      H5free_memory(p);
      return s;
    }
    const size_t size = H5Tget_size(type);
    std::string s(size, '\0');
    H5 mt(H5Tcopy(type), H5Tclose);
    if (H5Aread(attr, mt, s.data()) < 0)
      fail(path, fmt::format("attribute '{}': read failed", name));
    s.resize(std::strlen(s.c_str()));
    return s;
  }
  if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    const bool is_int = cls == H5T_INTEGER;
    if (n == 0) return nlohmann::json::array();
    std::vector<int64_t> iv(is_int ? static_cast<size_t>(n) : 0);
    std::vector<double> dv(is_int ? 0 : static_cast<size_t>(n));
    herr_t rc = is_int ? H5Aread(attr, H5T_NATIVE_INT64, iv.data())
                       : H5Aread(attr, H5T_NATIVE_DOUBLE, dv.data());
    if (rc < 0) fail(path, fmt::format("attribute '{}': read failed", name));
    const bool scalar = H5Sget_simple_extent_type(space) == H5S_SCALAR;
    if (scalar) return is_int ? nlohmann::json(iv[0]) : nlohmann::json(dv[0]);
    return is_int ? nlohmann::json(iv) : nlohmann::json(dv);
  }
  return "<unsupported attribute type>";
}

herr_t collect_attr(hid_t obj, const char* name, const H5A_info_t*, void* data) {
  auto* names = static_cast<std::vector<std::string>*>(data);
  names->emplace_back(name);
  return 0;
}

}  // namespace

// ---- writer ------------------------------------------------------------------------------------

struct Hdf5DatasetWriter::Impl {
  std::string path, tmp;
  int h = 0, w = 0;
  std::vector<std::string> param_names;
  nlohmann::json attributes;
  Hdf5WriteOptions opt;
  H5 file, images;
  size_t n = 0, capacity = 0;
  std::vector<double> labels;
  std::vector<std::vector<double>> params;  // per parameter, per image
  std::vector<uint8_t> scratch;
  bool finished = false;

  void grow_to(size_t want) {
    if (want <= capacity) return;
    size_t cap = std::max<size_t>(capacity * 2, 256);
    while (cap < want) cap *= 2;
    hsize_t dims[4] = {cap, 1, static_cast<hsize_t>(h), static_cast<hsize_t>(w)};
    if (H5Dset_extent(images, dims) < 0) fail(tmp, "dataset 'images': cannot extend");
    capacity = cap;
  }

  void write_image(const void* data, double label, std::span<const double> p) {
    if (finished) throw std::logic_error("Hdf5DatasetWriter: append after finish()");
    if (p.size() != param_names.size())
      throw std::invalid_argument(
          fmt::format("{}: append: {} parameters given, the table has {} ({})", path, p.size(),
                      param_names.size(), fmt::join(param_names, ", ")));
    quiet();
    grow_to(n + 1);
    H5 fspace(H5Dget_space(images), H5Sclose);
    hsize_t start[4] = {n, 0, 0, 0};
    hsize_t count[4] = {1, 1, static_cast<hsize_t>(h), static_cast<hsize_t>(w)};
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr);
    H5 mspace(H5Screate_simple(4, count, nullptr), H5Sclose);
    if (H5Dwrite(images, mem_type(opt.image_dtype), mspace, fspace, H5P_DEFAULT, data) < 0)
      fail(tmp, fmt::format("dataset 'images': write of image {} failed (disk full?)", n));
    labels.push_back(label);
    for (size_t k = 0; k < p.size(); ++k) params[k].push_back(p[k]);
    ++n;
  }
};

Hdf5DatasetWriter::Hdf5DatasetWriter(const std::string& path, int height, int width,
                                     std::vector<std::string> param_names,
                                     const nlohmann::json& attributes, Hdf5WriteOptions options)
    : impl_(std::make_unique<Impl>()) {
  quiet();
  Impl& m = *impl_;
  m.path = path;
  m.tmp = temp_path_for(path);
  m.h = height;
  m.w = width;
  m.param_names = std::move(param_names);
  m.attributes = attributes.is_null() ? nlohmann::json::object() : attributes;
  m.opt = options;
  m.params.resize(m.param_names.size());
  if (height <= 0 || width <= 0)
    throw std::invalid_argument(
        fmt::format("{}: image size {}x{} is not positive", path, height, width));
  if (!m.attributes.is_object())
    throw std::invalid_argument(fmt::format("{}: attributes must be a JSON object", path));
  if (options.image_dtype != DType::Int64 && options.image_dtype != DType::Float32)
    throw std::invalid_argument(fmt::format("{}: images can be stored as int64 or float32, not {}",
                                            path, dtype_name(options.image_dtype)));
  if (options.chunk_images < 1 || options.gzip_level < 0 || options.gzip_level > 9)
    throw std::invalid_argument(
        fmt::format("{}: chunk_images must be >= 1 and gzip_level 0-9", path));
  for (size_t i = 0; i < m.param_names.size(); ++i) {
    const std::string& nm = m.param_names[i];
    if (nm.empty() || nm.find('/') != std::string::npos || nm == ".")
      throw std::invalid_argument(
          fmt::format("{}: parameter name '{}' is not a valid dataset name", path, nm));
    for (size_t j = 0; j < i; ++j)
      if (m.param_names[j] == nm)
        throw std::invalid_argument(fmt::format("{}: parameter '{}' listed twice", path, nm));
  }
  m.file = H5(H5Fcreate(m.tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!m.file.ok()) fail(m.tmp, "cannot create HDF5 file (folder missing or not writable?)");
  try {
    create_images();
  } catch (...) {
    m.images.reset();
    m.file.reset();
    std::remove(m.tmp.c_str());
    throw;
  }
}

void Hdf5DatasetWriter::create_images() {
  Impl& m = *impl_;
  const Hdf5WriteOptions& options = m.opt;
  const hsize_t height = static_cast<hsize_t>(m.h), width = static_cast<hsize_t>(m.w);
  hsize_t dims[4] = {0, 1, height, width};
  hsize_t maxdims[4] = {H5S_UNLIMITED, 1, height, width};
  hsize_t chunk[4] = {static_cast<hsize_t>(options.chunk_images), 1, height, width};
  H5 space(H5Screate_simple(4, dims, maxdims), H5Sclose);
  H5 dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(dcpl, 4, chunk);
  if (options.gzip_level > 0) {
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, static_cast<unsigned>(options.gzip_level));
  }
  const hid_t ftype = options.image_dtype == DType::Int64 ? H5T_STD_I64LE : H5T_IEEE_F32LE;
  m.images =
      H5(H5Dcreate2(m.file, "images", ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), H5Dclose);
  if (!m.images.ok()) fail(m.tmp, "cannot create dataset 'images'");
}

Hdf5DatasetWriter::~Hdf5DatasetWriter() {
  if (impl_ && !impl_->finished) {
    impl_->images.reset();
    impl_->file.reset();
    std::remove(impl_->tmp.c_str());
  }
}

size_t Hdf5DatasetWriter::count() const {
  return impl_->n;
}

void Hdf5DatasetWriter::append(const int64_t* image, double label, std::span<const double> params) {
  Impl& m = *impl_;
  if (m.opt.image_dtype == DType::Int64) return m.write_image(image, label, params);
  const size_t px = static_cast<size_t>(m.h) * static_cast<size_t>(m.w);
  m.scratch.resize(px * sizeof(float));
  float* f = reinterpret_cast<float*>(m.scratch.data());
  for (size_t i = 0; i < px; ++i) f[i] = static_cast<float>(image[i]);
  m.write_image(f, label, params);
}

void Hdf5DatasetWriter::append(const float* image, double label, std::span<const double> params) {
  Impl& m = *impl_;
  if (m.opt.image_dtype == DType::Float32) return m.write_image(image, label, params);
  const size_t px = static_cast<size_t>(m.h) * static_cast<size_t>(m.w);
  m.scratch.resize(px * sizeof(int64_t));
  int64_t* q = reinterpret_cast<int64_t*>(m.scratch.data());
  for (size_t i = 0; i < px; ++i) {
    const float r = std::nearbyint(image[i]);
    if (!std::isfinite(image[i]) || r != image[i] || std::fabs(r) > 9.0e15f)
      throw std::invalid_argument(fmt::format(
          "{}: pixel {} of image {} is {}, not an integer count (write float32 instead)", m.path, i,
          m.n, image[i]));
    q[i] = static_cast<int64_t>(r);
  }
  m.write_image(q, label, params);
}

void Hdf5DatasetWriter::finish() {
  Impl& m = *impl_;
  if (m.finished) return;
  quiet();
  hsize_t dims[4] = {m.n, 1, static_cast<hsize_t>(m.h), static_cast<hsize_t>(m.w)};
  if (H5Dset_extent(m.images, dims) < 0) fail(m.tmp, "dataset 'images': cannot set final size");
  auto write_column = [&](hid_t where, const std::string& name, const std::vector<double>& v) {
    hsize_t n = v.size();
    H5 space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    H5 ds(H5Dcreate2(where, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                     H5P_DEFAULT),
          H5Dclose);
    if (!ds.ok() ||
        (n > 0 && H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0))
      fail(m.tmp, fmt::format("cannot write dataset '{}'", name));
  };
  write_column(m.file, "labels", m.labels);
  // Track creation order so a reader lists the parameters in the order they were given.
  H5 gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  H5 group(H5Gcreate2(m.file, "params", H5P_DEFAULT, gcpl, H5P_DEFAULT), H5Gclose);
  if (!group.ok()) fail(m.tmp, "cannot create group 'params'");
  for (size_t k = 0; k < m.param_names.size(); ++k)
    write_column(group, m.param_names[k], m.params[k]);
  group.reset();
  write_string_attr(m.file, "format", "halo-lens-dataset", m.tmp);
  int64_t version = 1;
  write_scalar_attr(m.file, "format_version", H5T_NATIVE_INT64, &version, m.tmp);
  write_string_attr(m.file, "settings_json", m.attributes.dump(), m.tmp);
  for (const auto& [key, value] : m.attributes.items()) {
    if (key == "format" || key == "format_version" || key == "settings_json") continue;
    write_json_attr(m.file, key, value, m.tmp);
  }
  m.images.reset();
  if (H5Fflush(m.file, H5F_SCOPE_GLOBAL) < 0) fail(m.tmp, "flush failed (disk full?)");
  m.file.reset();
  if (std::rename(m.tmp.c_str(), m.path.c_str()) != 0) {
    std::remove(m.tmp.c_str());
    fail(m.path, fmt::format("cannot rename {} into place", m.tmp));
  }
  m.finished = true;
}

// ---- reader ------------------------------------------------------------------------------------

struct Hdf5DatasetReader::Impl {
  std::string path;
  H5 file, images;
  size_t n = 0;
  int h = 0, w = 0;
  DType dtype = DType::Int64;
  std::vector<double> labels;
  nlohmann::json attributes = nlohmann::json::object();
  std::vector<std::string> param_names;

  H5 open_dataset(const std::string& name) const {
    if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0)
      fail(path, fmt::format("no dataset '{}'", name));
    H5 ds(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) fail(path, fmt::format("'{}' is not a dataset", name));
    return ds;
  }
  std::vector<double> read_column(const std::string& name) const {
    H5 ds = open_dataset(name);
    auto dims = dims_of(ds, path, name);
    if (dims.size() != 1 || dims[0] != n)
      fail(path, fmt::format("dataset '{}' has shape {}, expected [{}] (one value per image)", name,
                             dims_str(dims), n));
    H5 type(H5Dget_type(ds), H5Tclose);
    DType t;
    std::string what;
    if (!dtype_of_h5(type, &t, &what))
      fail(path, fmt::format("dataset '{}' has type {}, expected a number", name, what));
    std::vector<double> v(n);
    if (n > 0 && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
      fail(path, fmt::format("dataset '{}': read failed (truncated file?)", name));
    return v;
  }
};

Hdf5DatasetReader::Hdf5DatasetReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  quiet();
  Impl& m = *impl_;
  m.path = path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "file not found");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, "not an HDF5 file");
  m.file = H5(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!m.file.ok()) fail(path, "cannot open as HDF5 (corrupt or truncated?)");
  m.images = m.open_dataset("images");
  auto dims = dims_of(m.images, path, "images");
  if (dims.size() != 4 || dims[1] != 1 || dims[2] == 0 || dims[3] == 0)
    fail(path, fmt::format("dataset 'images' has shape {}, expected [N, 1, H, W]", dims_str(dims)));
  m.n = dims[0];
  m.h = static_cast<int>(dims[2]);
  m.w = static_cast<int>(dims[3]);
  {
    H5 type(H5Dget_type(m.images), H5Tclose);
    std::string what;
    if (!dtype_of_h5(type, &m.dtype, &what) || m.dtype == DType::Bool)
      fail(path, fmt::format("dataset 'images' has type {}, expected int64, int32, uint16, uint8, "
                             "float32 or float64",
                             what));
  }
  m.labels = m.read_column("labels");
  if (H5Lexists(m.file, "params", H5P_DEFAULT) > 0) {
    H5 group(H5Gopen2(m.file, "params", H5P_DEFAULT), H5Gclose);
    if (!group.ok()) fail(path, "'params' is not a group");
    H5G_info_t info;
    if (H5Gget_info(group, &info) < 0) fail(path, "group 'params': unreadable");
    // Creation order where the file tracks it (ours do), else name order.
    H5 gcpl(H5Gget_create_plist(group), H5Pclose);
    unsigned order_flags = 0;
    if (gcpl.ok()) H5Pget_link_creation_order(gcpl, &order_flags);
    const H5_index_t order =
        (order_flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      ssize_t len = H5Lget_name_by_idx(group, ".", order, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (len < 0) fail(path, "group 'params': unreadable member name");
      std::string name(static_cast<size_t>(len) + 1, '\0');
      H5Lget_name_by_idx(group, ".", order, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
      name.resize(static_cast<size_t>(len));
      m.param_names.push_back(name);
    }
  }
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5Aiterate2(m.file, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, &names);
  for (const auto& name : names) {
    H5 attr(H5Aopen(m.file, name.c_str(), H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) fail(path, fmt::format("attribute '{}': cannot open", name));
    m.attributes[name] = read_attr(attr, path, name);
  }
  if (m.attributes.contains("settings_json") && m.attributes["settings_json"].is_string()) {
    try {
      m.attributes["settings"] =
          nlohmann::json::parse(m.attributes["settings_json"].get<std::string>());
    } catch (const nlohmann::json::exception& e) {
      fail(path, fmt::format("attribute 'settings_json' is not valid JSON: {}", e.what()));
    }
  }
}

Hdf5DatasetReader::~Hdf5DatasetReader() = default;

const std::string& Hdf5DatasetReader::path() const {
  return impl_->path;
}
size_t Hdf5DatasetReader::size() const {
  return impl_->n;
}
int Hdf5DatasetReader::height() const {
  return impl_->h;
}
int Hdf5DatasetReader::width() const {
  return impl_->w;
}
DType Hdf5DatasetReader::image_dtype() const {
  return impl_->dtype;
}
const std::vector<double>& Hdf5DatasetReader::labels() const {
  return impl_->labels;
}
const nlohmann::json& Hdf5DatasetReader::attributes() const {
  return impl_->attributes;
}
const std::vector<std::string>& Hdf5DatasetReader::param_names() const {
  return impl_->param_names;
}

std::vector<double> Hdf5DatasetReader::param(const std::string& name) const {
  quiet();
  for (const auto& p : impl_->param_names)
    if (p == name) return impl_->read_column("params/" + name);
  fail(impl_->path, fmt::format("no parameter 'params/{}' (have: {})", name,
                                fmt::join(impl_->param_names, ", ")));
}

void Hdf5DatasetReader::read_images(std::span<const size_t> indices, float* out) const {
  quiet();
  const Impl& m = *impl_;
  const size_t px = static_cast<size_t>(m.h) * static_cast<size_t>(m.w);
  H5 fspace(H5Dget_space(m.images), H5Sclose);
  hsize_t count[4] = {1, 1, static_cast<hsize_t>(m.h), static_cast<hsize_t>(m.w)};
  H5 mspace(H5Screate_simple(4, count, nullptr), H5Sclose);
  const bool direct = m.dtype == DType::Float32;
  std::vector<uint8_t> scratch(direct ? 0 : px * dtype_size(m.dtype));
  NpyArray view;
  for (size_t k = 0; k < indices.size(); ++k) {
    const size_t i = indices[k];
    if (i >= m.n)
      fail(m.path, fmt::format("image index {} out of range (the file has {})", i, m.n));
    hsize_t start[4] = {i, 0, 0, 0};
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr);
    float* dst = out + k * px;
    void* buf = direct ? static_cast<void*>(dst) : static_cast<void*>(scratch.data());
    if (H5Dread(m.images, mem_type(m.dtype), mspace, fspace, H5P_DEFAULT, buf) < 0)
      fail(m.path, fmt::format("dataset 'images': read of image {} failed (truncated file?)", i));
    if (!direct) {
      view.dtype = m.dtype;
      view.shape = {static_cast<int64_t>(px)};
      view.bytes.swap(scratch);
      view.to_float(dst);
      view.bytes.swap(scratch);
    }
  }
}

std::vector<int64_t> Hdf5DatasetReader::read_image_int64(size_t index) const {
  quiet();
  const Impl& m = *impl_;
  if (index >= m.n)
    fail(m.path, fmt::format("image index {} out of range (the file has {})", index, m.n));
  const size_t px = static_cast<size_t>(m.h) * static_cast<size_t>(m.w);
  std::vector<int64_t> out(px);
  H5 fspace(H5Dget_space(m.images), H5Sclose);
  hsize_t start[4] = {index, 0, 0, 0};
  hsize_t count[4] = {1, 1, static_cast<hsize_t>(m.h), static_cast<hsize_t>(m.w)};
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr);
  H5 mspace(H5Screate_simple(4, count, nullptr), H5Sclose);
  if (H5Dread(m.images, H5T_NATIVE_INT64, mspace, fspace, H5P_DEFAULT, out.data()) < 0)
    fail(m.path, fmt::format("dataset 'images': read of image {} failed", index));
  return out;
}

}  // namespace halo::data
