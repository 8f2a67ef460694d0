// Golden-value fixtures for the tests (header-only): the path of a file under tests/fixtures, a
// small HDF5 reader for the datasets and attributes that tools/make_fixtures.py writes. Compare
// what it reads with tests/common/compare.h (close_rel), which this header includes.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "tests/common/compare.h"

namespace halo::test {

// tests/fixtures/<name> in the source tree (HALO_FIXTURES_DIR comes from tests/CMakeLists.txt).
inline std::string fixture_path(const std::string& name) {
#ifdef HALO_FIXTURES_DIR
  return std::string(HALO_FIXTURES_DIR) + "/" + name;
#else
  return "tests/fixtures/" + name;
#endif
}

// Silences HDF5's automatic error printing while alive (we throw messages of our own) and
// restores the previous handler afterwards.
class H5QuietErrors {
 public:
  H5QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~H5QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  H5QuietErrors(const H5QuietErrors&) = delete;
  H5QuietErrors& operator=(const H5QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// A read-only fixture file. Paths are HDF5 paths inside it, e.g. "conv2d_stem/x".
// Every error throws std::runtime_error naming the file and the object; regenerate the fixtures
// with `/usr/bin/python3 tools/make_fixtures.py` if one is missing.
class H5Fixture {
 public:
  explicit H5Fixture(const std::string& name) : path_(fixture_path(name)) {
    H5QuietErrors quiet;
    file_ = H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file_ < 0)
      throw std::runtime_error(path_ + ": cannot open as HDF5 (run /usr/bin/python3 tools/make_fixtures.py)");
  }
  ~H5Fixture() {
    if (file_ >= 0) H5Fclose(file_);
  }
  H5Fixture(const H5Fixture&) = delete;
  H5Fixture& operator=(const H5Fixture&) = delete;

  const std::string& path() const { return path_; }

  // Does the object (group or dataset) exist? Checks each path component, as H5Lexists requires.
  bool has(const std::string& object) const {
    H5QuietErrors quiet;
    std::string prefix;
    std::size_t start = 0;
    while (start <= object.size()) {
      const std::size_t slash = object.find('/', start);
      const std::string part = object.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      prefix += (prefix.empty() ? "" : "/") + part;
      if (H5Lexists(file_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    return true;
  }

  // A float32 CPU tensor with the dataset's shape (a scalar dataset gives shape []). Any stored
  // floating type is converted to float by HDF5.
  Tensor tensor(const std::string& dataset) const {
    if (!has(dataset)) throw std::runtime_error(path_ + ": no dataset '" + dataset + "'");
    H5QuietErrors quiet;
    const hid_t d = H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT);
    if (d < 0) throw std::runtime_error(path_ + ": cannot open dataset '" + dataset + "'");
    const hid_t space = H5Dget_space(d);
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
    if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    H5Sclose(space);
    Shape shape(dims.begin(), dims.end());
    std::vector<float> values(static_cast<std::size_t>(numel_of(shape)));
    const herr_t status = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
    H5Dclose(d);
    if (status < 0) throw std::runtime_error(path_ + ": cannot read dataset '" + dataset + "' as float");
    return Tensor::from_vector(values, shape);
  }

  double attr_double(const std::string& object, const std::string& attr) const {
    double v = 0;
    read_attr(object, attr, H5T_NATIVE_DOUBLE, &v);
    return v;
  }
  long long attr_int(const std::string& object, const std::string& attr) const {
    long long v = 0;
    read_attr(object, attr, H5T_NATIVE_LLONG, &v);
    return v;
  }
  // Variable- or fixed-length string attribute.
  std::string attr_string(const std::string& object, const std::string& attr) const {
    H5QuietErrors quiet;
    const hid_t a = open_attr(object, attr);
    const hid_t type = H5Aget_type(a);
    std::string out;
    herr_t status = -1;
    if (H5Tis_variable_str(type) > 0) {
      const hid_t mem = H5Tcopy(H5T_C_S1);
      H5Tset_size(mem, H5T_VARIABLE);
      H5Tset_cset(mem, H5Tget_cset(type));
      char* s = nullptr;
      status = H5Aread(a, mem, &s);
      if (status >= 0 && s) {
        out = s;
        H5free_memory(s);
      }
      H5Tclose(mem);
    } else {
      std::vector<char> buf(H5Tget_size(type) + 1, '\0');
      status = H5Aread(a, type, buf.data());
      out = buf.data();
    }
    H5Tclose(type);
    H5Aclose(a);
    if (status < 0) throw std::runtime_error(path_ + ": cannot read attribute '" + object + "@" + attr + "'");
    return out;
  }

 private:
  hid_t open_attr(const std::string& object, const std::string& attr) const {
    if (!has(object)) throw std::runtime_error(path_ + ": no object '" + object + "'");
    const hid_t a = H5Aopen_by_name(file_, object.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) throw std::runtime_error(path_ + ": no attribute '" + attr + "' on '" + object + "'");
    return a;
  }
  void read_attr(const std::string& object, const std::string& attr, hid_t mem_type, void* out) const {
    H5QuietErrors quiet;
    const hid_t a = open_attr(object, attr);
    const hid_t space = H5Aget_space(a);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    herr_t status = -1;
    if (n == 1) status = H5Aread(a, mem_type, out);
    H5Aclose(a);
    if (status < 0)
      throw std::runtime_error(path_ + ": attribute '" + object + "@" + attr + "' is not one number");
  }

  std::string path_;
  hid_t file_ = -1;
};

}  // namespace halo::test
