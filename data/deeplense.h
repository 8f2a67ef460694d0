// The DeepLense "Test III" folder layout: files image_<128-bit decimal>.npy, each a numpy object
// array [image, label] as np.save writes it. Reads every variant numpy has written (pickle
// protocols 2-5, images of any numeric dtype, label as numpy scalar or Python float) and writes
// files byte-identical to numpy 1.24's np.save of [int64 image, numpy.float64 label].
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "data/npy.h"

namespace halo::data {

// One file's content: the image as stored (2-D [H, W]; a singleton leading or trailing axis such
// as (1, H, W) or (H, W, 1) is removed) and the label, if the file had one.
struct DeepLenseRecord {
  NpyArray image;
  std::optional<double> label;
  int height() const { return image.shape.size() == 2 ? static_cast<int>(image.shape[0]) : 0; }
  int width() const { return image.shape.size() == 2 ? static_cast<int>(image.shape[1]) : 0; }
};

// Reads one file. Accepts an object array [image, label] (label: numpy scalar or Python number)
// or a plain numeric 2-D array (no label). Throws std::runtime_error naming the file otherwise.
DeepLenseRecord read_deeplense_file(const std::string& path);
DeepLenseRecord read_deeplense_memory(std::span<const uint8_t> bytes, const std::string& source);
DeepLenseRecord deeplense_record_from(NpyFile&& f, const std::string& source);

// The bytes np.save writes for np.array([image, np.float64(label)], dtype=object) with numpy 1.24
// (npy v1.0, pickle protocol 3). `image` is 2-D of any supported dtype; int64 is the real layout.
std::vector<uint8_t> encode_deeplense(const NpyArray& image, double label);
// Writes them to `path` atomically (temporary name, then rename).
void write_deeplense_file(const std::string& path, const NpyArray& image, double label);

// "image_<decimal of the 128-bit number hi:lo>.npy".
std::string deeplense_file_name(uint64_t hi, uint64_t lo);
// A deterministic pseudo-random 128-bit name for image `index` of a run with `seed` (DeepLenseSim
// used random.getrandbits(128); we derive the bits from (seed, index) so runs are reproducible).
std::string deeplense_file_name_for(uint64_t seed, uint64_t index);

// The folder that holds the .npy files: `dir` itself, or `dir/lens_data` when `dir` is the
// folder the archive lens_data_alt.tgz was unpacked into. Throws if neither holds .npy files.
std::string resolve_deeplense_folder(const std::string& dir);
// Full paths of the *.npy files directly in `dir`, sorted by file name (byte order), so that
// indices are the same on every machine.
std::vector<std::string> list_npy_files(const std::string& dir);

}  // namespace halo::data
