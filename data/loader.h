// The training data pipeline: a Dataset (a DeepLense .npy folder, an HDF5 file, or memory), a
// deterministic train/val/test split, image normalisation for raw counts, label standardisation,
// augmentation by the 8 symmetries of the square, per-epoch shuffling, batching into contiguous
// float buffers [B,1,H,W] (optionally from a caller's allocator, e.g. pinned host memory), and a
// background prefetch thread. Plain floats only: data/ knows nothing of the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace halo::data {

// ---- datasets -------------------------------------------------------------------------------

// N labelled single-channel images of one size. Implementations are thread-safe for reads.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  virtual int height() const = 0;
  virtual int width() const = 0;
  virtual double label(size_t i) const = 0;      // in original units (f_sub)
  virtual std::string name(size_t i) const = 0;  // file name for a folder, "<i>" otherwise
  // Image i's raw stored values (counts) as float, height()*width() of them, row-major.
  virtual void read_image(size_t i, float* out) const = 0;
  virtual std::string describe()
      const = 0;  // e.g. "npy folder /data/lens_data (20000 images, in memory)"
  size_t pixels() const { return static_cast<size_t>(height()) * static_cast<size_t>(width()); }
};

enum class CacheMode {
  Auto,    // keep all images in memory as float if they fit in OpenOptions::cache_limit_bytes
  Memory,  // always keep them in memory (20,000 x 150 x 150 floats = 1.8 GB)
  Lazy     // read from disk on every access (the OS page cache still helps)
};

struct OpenOptions {
  CacheMode cache = CacheMode::Auto;
  // Auto's limit; 0 means min(8 GiB, half the physical memory).
  size_t cache_limit_bytes = 0;
  // Threads for reading the folder when it is opened (0 = all cores).
  int threads = 0;
};

// A folder of DeepLense .npy files (or the folder holding lens_data/), indexed in file-name order.
// Opening reads every file once (in parallel) to learn the labels and check that all images have
// one size; with caching it keeps the images too. Errors name the offending file.
std::shared_ptr<Dataset> open_npy_folder(const std::string& dir, const OpenOptions& opt = {});
// An HDF5 file from Hdf5DatasetWriter (see data/hdf5_dataset.h).
std::shared_ptr<Dataset> open_hdf5_dataset(const std::string& path, const OpenOptions& opt = {});
// A folder -> open_npy_folder, a file -> open_hdf5_dataset.
std::shared_ptr<Dataset> open_dataset(const std::string& path, const OpenOptions& opt = {});
// Images [N, H*W] and labels [N] already in memory (tests, synthetic data).
std::shared_ptr<Dataset> make_memory_dataset(int height, int width, std::vector<float> images,
                                             std::vector<double> labels,
                                             std::vector<std::string> names = {});
// A view of `ds` holding the central size x size pixels of every image (labels and names
// unchanged). The crop stays centred on the optical axis, so (height - size) and (width - size)
// must be even; 1 <= size <= min(height, width). A 150x150 model1 image keeps its ring and every
// subhalo in the central 96x96 (0.08% of the ring's flux lies outside it, docs/DATA.md; subhalos
// lie within 40 px). Throws std::invalid_argument naming the sizes otherwise.
std::shared_ptr<Dataset> center_crop(std::shared_ptr<const Dataset> ds, int size);

// ---- split ------------------------------------------------------------------------------------

struct Split {
  std::vector<size_t> train, val, test;  // dataset indices, each list sorted ascending
};

// A random split of 0..n-1 by `seed`: round(n*val_fraction) for validation, round(n*test_fraction)
// for test, the rest (80 % by default) for training. The same (n, seed) always gives the same
// split.
Split make_split(size_t n, uint64_t seed, double val_fraction = 0.1, double test_fraction = 0.1);

// Reads a list of samples, one per line: a dataset name (the file name, with or without ".npy")
// or a 0-based index. Text after the first comma is ignored (so a CSV's first column works), '#'
// starts a comment, and a first line that matches nothing and is not a number is taken as a
// header. Unknown names, out-of-range indices and duplicates are errors naming the file and line.
std::vector<size_t> read_index_list(const Dataset& ds, const std::string& list_file);
// A split from three such lists (they must be disjoint; empty path = empty list).
Split split_from_lists(const Dataset& ds, const std::string& train_file,
                       const std::string& val_file, const std::string& test_file);
// Writes a list of names (one per line) that read_index_list reads back.
void write_index_list(const Dataset& ds, std::span<const size_t> indices,
                      const std::string& list_file);

// ---- normalisation ----------------------------------------------------------------------------

// Per-image input normalisation. The default suits raw Poisson counts whose scale varies from
// image to image (exposure 10^U(3,3.5) s): log1p compresses the bright ring against the faint
// background, then standardising each image removes its brightness scale.
enum class ImageNorm {
  Log1pStandardize,  // x -> sign(x) log(1 + |x|), then (x - mean) / std over the image  [default]
  Standardize,       // (x - mean) / std over the image
  None               // raw values
};
ImageNorm parse_image_norm(std::string_view s);  // "log1p-standardize", "standardize", "none"
std::string_view image_norm_name(ImageNorm n);
void normalize_image(float* image, size_t n, ImageNorm norm);

// Labels are trained on as z = (y - mean) / std with mean and std of the training split, so the
// network's output is O(1); predictions and metrics are mapped back with to_original.
struct LabelScaler {
  double mean = 0.0;
  double std = 1.0;
  static LabelScaler fit(std::span<const double> labels);  // population std; std 1 if constant
  static LabelScaler fit(const Dataset& ds, std::span<const size_t> indices);
  float to_scaled(double y) const { return static_cast<float>((y - mean) / std); }
  double to_original(double z) const { return z * std + mean; }
  // An MSE (or RMSE / MAE) computed on scaled labels, in original units.
  double mse_to_original(double mse_scaled) const { return mse_scaled * std * std; }
  double abs_to_original(double err_scaled) const { return err_scaled * std; }
};

// ---- symmetries of the square (dihedral group D4) ---------------------------------------------

// Element k in 0..7 is "mirror left-right if k >= 4, then turn k % 4 quarter turns anticlockwise"
// (as displayed with row 0 at the top). The label (a mass fraction) is invariant under all eight.
// Writes the transformed image to `out` (which must not overlap `in`); for odd quarter turns the
// output is w x h. out_h/out_w (optional) receive the output size.
void apply_d4(const float* in, float* out, int h, int w, int k, int* out_h = nullptr,
              int* out_w = nullptr);
int d4_inverse(int k);         // apply_d4(apply_d4(x, k), d4_inverse(k)) == x
int d4_compose(int a, int b);  // apply_d4(apply_d4(x, b), a) == apply_d4(x, d4_compose(a, b))

// ---- batches ----------------------------------------------------------------------------------

// Where batch buffers come from. The default uses 64-byte-aligned host memory; the engine can
// pass page-locked (pinned) host memory for fast, asynchronous copies to a GPU. Buffers are
// recycled, so allocate() is called only a few times per Loader.
struct BatchAllocator {
  std::function<void*(size_t bytes)> allocate;
  std::function<void(void*)> deallocate;
};

struct Batch {
  size_t size = 0;  // samples in this batch (the last one may be short)
  int height = 0, width = 0;
  float* images = nullptr;              // [size, 1, height, width], normalised and augmented
  float* labels = nullptr;              // [size], scaled by the loader's LabelScaler
  std::vector<double> labels_original;  // [size], in original units
  std::vector<size_t> indices;          // dataset index of each sample
  std::vector<int> symmetries;          // D4 element applied to each sample
  uint64_t epoch = 0;
  size_t batch_index = 0;
  std::shared_ptr<void> buffer;  // owns images + labels; returns to the loader's pool when dropped
};

struct LoaderOptions {
  size_t batch_size = 64;
  bool shuffle = true;   // a new order each epoch, from (seed, epoch)
  bool augment = false;  // a random D4 element per sample, from (seed, epoch, index)
  int symmetry = 0;      // without augment: this D4 element for every sample (test-time averaging)
  bool drop_last = false;  // drop a short final batch
  uint64_t seed = 0;
  ImageNorm norm = ImageNorm::Log1pStandardize;
  LabelScaler label_scaler;  // identity unless set (fit it on the training split)
  size_t prefetch = 2;       // batches prepared ahead by a background thread; 0 = no thread
  int workers = 1;           // threads that fill one batch (OpenMP); >1 helps lazy npy folders
  BatchAllocator allocator;  // empty = aligned host memory
};

// Batches over a subset of a dataset. Same dataset, indices, options and epoch -> the same
// batches, bit for bit, with or without prefetching and whatever the number of workers.
class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> ds, std::vector<size_t> indices, LoaderOptions opt);
  ~Loader();  // stops and joins the prefetch thread
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  size_t size() const;  // samples
  size_t batches_per_epoch() const;
  const LoaderOptions& options() const;
  const Dataset& dataset() const;

  // Starts (or restarts) epoch `epoch`; drops batches prepared for the previous one.
  void start_epoch(uint64_t epoch);
  // The next batch of the current epoch, or nullopt when it is over. Calling next() before
  // start_epoch() starts epoch 0. An error while reading (a corrupt file) is rethrown here.
  std::optional<Batch> next();

  // The sample order of an epoch (dataset indices), as next() will deliver it.
  std::vector<size_t> epoch_order(uint64_t epoch) const;
  // The D4 element sample `index` gets in `epoch`.
  int symmetry_for(uint64_t epoch, size_t index) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Fills one batch for the given indices (no shuffling, one symmetry for all). For evaluation and
// tests; the Loader uses the same code.
Batch make_batch(const Dataset& ds, std::span<const size_t> indices, ImageNorm norm,
                 const LabelScaler& scaler, int symmetry = 0);

}  // namespace halo::data
