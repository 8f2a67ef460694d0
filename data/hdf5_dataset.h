// Lensing data sets in one HDF5 file: `images` [N,1,H,W] (int64 counts by default, or float32),
// chunked one image per chunk for fast random batch reads; `labels` [N] float64; a per-image
// parameter table as one float64 dataset [N] per parameter under the group `params/`; and file
// attributes recording every generator setting. Written to a temporary name and renamed.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "data/npy.h"

namespace halo::data {

struct Hdf5WriteOptions {
  // Element type of `images`: Int64 keeps the simulator's Poisson counts exactly (the real data's
  // type); Float32 halves the size for non-integer images. Others are rejected.
  DType image_dtype = DType::Int64;
  int chunk_images = 1;  // images per chunk along N (1 = best for random access)
  int gzip_level = 0;    // 0 = no compression (fastest reads); 1-9 = deflate level
};

// Streams images into a new file. `attributes` must be a JSON object; each member becomes a file
// attribute (numbers as int64/float64, strings as UTF-8 strings, booleans as int8 0/1, arrays of
// numbers as 1-D attributes, anything else as its JSON text), and the whole object is also kept
// as the string attribute `settings_json`.
class Hdf5DatasetWriter {
 public:
  Hdf5DatasetWriter(const std::string& path, int height, int width,
                    std::vector<std::string> param_names, const nlohmann::json& attributes,
                    Hdf5WriteOptions options = {});
  ~Hdf5DatasetWriter();  // without finish(), the temporary file is deleted and `path` is untouched
  Hdf5DatasetWriter(const Hdf5DatasetWriter&) = delete;
  Hdf5DatasetWriter& operator=(const Hdf5DatasetWriter&) = delete;

  // One image (height*width values, row-major), its label and its parameters (one per name).
  // Float images into an Int64 file must hold integers (they are rounded and checked).
  void append(const int64_t* image, double label, std::span<const double> params = {});
  void append(const float* image, double label, std::span<const double> params = {});
  size_t count() const;
  // Writes the labels, the parameter table and the attributes, closes and renames into place.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  void create_images();
};

// Random access to a file written by Hdf5DatasetWriter (or any file with the same layout:
// `images` of int64/int32/uint16/uint8/float32/float64, `labels` of a float or integer type).
// Thread-safe for concurrent reads (the Debian HDF5 is built thread-safe; calls serialise).
class Hdf5DatasetReader {
 public:
  explicit Hdf5DatasetReader(const std::string& path);
  ~Hdf5DatasetReader();
  Hdf5DatasetReader(const Hdf5DatasetReader&) = delete;
  Hdf5DatasetReader& operator=(const Hdf5DatasetReader&) = delete;

  const std::string& path() const;
  size_t size() const;
  int height() const;
  int width() const;
  DType image_dtype() const;
  const std::vector<double>& labels() const;
  // File attributes as a JSON object (settings_json is parsed back into the member "settings").
  const nlohmann::json& attributes() const;
  const std::vector<std::string>& param_names() const;
  std::vector<double> param(const std::string& name) const;  // the column for all N images

  // Images `indices` (any order, repeats allowed) as float into out[k*H*W ...].
  void read_images(std::span<const size_t> indices, float* out) const;
  // One image with its stored values converted to int64 (for exact round trips of counts).
  std::vector<int64_t> read_image_int64(size_t index) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace halo::data
