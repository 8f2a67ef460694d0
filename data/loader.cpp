// The data pipeline of data/loader.h. Determinism comes from deriving every random choice from a
// counter-based hash of (seed, epoch, sample) rather than from a shared random stream, so the
// batches do not depend on threads, prefetching or the order in which samples are prepared.
#include "data/loader.h"

#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "data/deeplense.h"
#include "data/hdf5_dataset.h"

namespace halo::data {

namespace {

// ---- counter-based randomness ----

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser: a bijection with good avalanche
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(mix64(seed)) {}
  uint64_t next() { return mix64(state += 0x9E3779B97F4A7C15ull); }
  // Uniform in [0, n) without modulo bias (rejection), the same on every platform.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = next();
    while (r >= limit);
    return r % n;
  }
};

template <class T>
void shuffle(std::vector<T>& v, Rng& rng) {  // Fisher-Yates
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(rng.below(i))]);
}

size_t default_cache_limit() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  const size_t half =
      pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) / 2 : 0;
  const size_t eight = size_t{8} << 30;
  return half > 0 ? std::min(eight, half) : eight;
}

bool want_cache(const OpenOptions& opt, size_t bytes) {
  if (opt.cache == CacheMode::Memory) return true;
  if (opt.cache == CacheMode::Lazy) return false;
  return bytes <= (opt.cache_limit_bytes ? opt.cache_limit_bytes : default_cache_limit());
}

std::string human_bytes(size_t b) {
  if (b >= (size_t{1} << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1 << 30));
  return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1 << 20));
}

// Runs body(i) for i in [0, n) on `threads` OpenMP threads; rethrows the error of the lowest i.
template <class F>
void parallel_for(size_t n, int threads, F body) {
  std::mutex mu;
  size_t err_i = SIZE_MAX;
  std::exception_ptr err;
  const int nt = std::max(1, threads);
  const long long nn = static_cast<long long>(n);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4) if (nt > 1)
  for (long long i = 0; i < nn; ++i) {
    try {
      body(static_cast<size_t>(i));
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      if (static_cast<size_t>(i) < err_i) {
        err_i = static_cast<size_t>(i);
        err = std::current_exception();
      }
    }
  }
  if (err) std::rethrow_exception(err);
}

// ---- datasets ----

class NpyFolderDataset final : public Dataset {
 public:
  NpyFolderDataset(const std::string& dir_in, const OpenOptions& opt) {
    dir_ = resolve_deeplense_folder(dir_in);
    paths_ = list_npy_files(dir_);
    const size_t n = paths_.size();
    names_.resize(n);
    for (size_t i = 0; i < n; ++i) names_[i] = std::filesystem::path(paths_[i]).filename().string();
    DeepLenseRecord first = read_deeplense_file(paths_[0]);
    h_ = first.height();
    w_ = first.width();
    const size_t bytes = n * pixels() * sizeof(float);
    cached_ = want_cache(opt, bytes);
    if (cached_) cache_.resize(n * pixels());
    labels_.resize(n);
    const int threads = opt.threads > 0 ? opt.threads : omp_get_num_procs();
    parallel_for(n, threads, [&](size_t i) {
      DeepLenseRecord r = read_deeplense_file(paths_[i]);
      check(r, i);
      labels_[i] = *r.label;
      if (cached_) r.image.to_float(cache_.data() + i * pixels());
    });
    cache_note_ = cached_ ? fmt::format("in memory, {}", human_bytes(bytes))
                          : fmt::format("read lazily; caching would need {}", human_bytes(bytes));
  }
  size_t size() const override { return paths_.size(); }
  int height() const override { return h_; }
  int width() const override { return w_; }
  double label(size_t i) const override { return labels_.at(i); }
  std::string name(size_t i) const override { return names_.at(i); }
  void read_image(size_t i, float* out) const override {
    if (i >= paths_.size())
      throw std::out_of_range(fmt::format("{}: image index {} of {}", dir_, i, paths_.size()));
    if (cached_) {
      std::memcpy(out, cache_.data() + i * pixels(), pixels() * sizeof(float));
      return;
    }
    DeepLenseRecord r = read_deeplense_file(paths_[i]);
    check(r, i);
    r.image.to_float(out);
  }
  std::string describe() const override {
    return fmt::format("npy folder {} ({} images of {}x{}, {})", dir_, paths_.size(), h_, w_,
                       cache_note_);
  }

 private:
  std::string dir_, cache_note_;
  std::vector<std::string> paths_, names_;
  std::vector<double> labels_;
  std::vector<float> cache_;
  int h_ = 0, w_ = 0;
  bool cached_ = false;

  void check(const DeepLenseRecord& r, size_t i) const {
    if (!r.label)
      throw std::runtime_error(
          fmt::format("{}: has no label (a plain array, not [image, label])", paths_[i]));
    if (!std::isfinite(*r.label))
      throw std::runtime_error(fmt::format("{}: label is {}", paths_[i], *r.label));
    if (r.height() != h_ || r.width() != w_)
      throw std::runtime_error(
          fmt::format("{}: image is {}x{}, but {} is {}x{} (all images must have one size)",
                      paths_[i], r.height(), r.width(), names_[0], h_, w_));
  }
};

class Hdf5Dataset final : public Dataset {
 public:
  Hdf5Dataset(const std::string& path, const OpenOptions& opt) : reader_(path) {
    const size_t n = reader_.size();
    const size_t bytes = n * pixels() * sizeof(float);
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite(reader_.labels()[i]))
        throw std::runtime_error(
            fmt::format("{}: dataset 'labels': entry {} is {}", path, i, reader_.labels()[i]));
    cached_ = want_cache(opt, bytes);
    if (cached_) {
      cache_.resize(n * pixels());
      std::vector<size_t> idx;
      for (size_t s = 0; s < n; s += 256) {
        idx.clear();
        for (size_t i = s; i < std::min(n, s + 256); ++i) idx.push_back(i);
        reader_.read_images(idx, cache_.data() + s * pixels());
      }
    }
    cache_note_ = cached_ ? fmt::format("in memory, {}", human_bytes(bytes))
                          : fmt::format("read lazily; caching would need {}", human_bytes(bytes));
  }
  size_t size() const override { return reader_.size(); }
  int height() const override { return reader_.height(); }
  int width() const override { return reader_.width(); }
  double label(size_t i) const override { return reader_.labels().at(i); }
  std::string name(size_t i) const override { return std::to_string(i); }
  void read_image(size_t i, float* out) const override {
    if (i >= size())
      throw std::out_of_range(fmt::format("{}: image index {} of {}", reader_.path(), i, size()));
    if (cached_) {
      std::memcpy(out, cache_.data() + i * pixels(), pixels() * sizeof(float));
      return;
    }
    const size_t one[1] = {i};
    reader_.read_images(one, out);
  }
  std::string describe() const override {
    return fmt::format("HDF5 file {} ({} images of {}x{}, stored as {}, {})", reader_.path(),
                       size(), height(), width(), dtype_name(reader_.image_dtype()), cache_note_);
  }

 private:
  Hdf5DatasetReader reader_;
  std::vector<float> cache_;
  bool cached_ = false;
  std::string cache_note_;
};

class MemoryDataset final : public Dataset {
 public:
  MemoryDataset(int h, int w, std::vector<float> images, std::vector<double> labels,
                std::vector<std::string> names)
      : h_(h),
        w_(w),
        images_(std::move(images)),
        labels_(std::move(labels)),
        names_(std::move(names)) {
    if (h <= 0 || w <= 0)
      throw std::invalid_argument(fmt::format("memory dataset: image size {}x{}", h, w));
    if (images_.size() != labels_.size() * pixels())
      throw std::invalid_argument(fmt::format("memory dataset: {} floats for {} images of {}x{}",
                                              images_.size(), labels_.size(), h, w));
    if (!names_.empty() && names_.size() != labels_.size())
      throw std::invalid_argument("memory dataset: names and labels differ in length");
  }
  size_t size() const override { return labels_.size(); }
  int height() const override { return h_; }
  int width() const override { return w_; }
  double label(size_t i) const override { return labels_.at(i); }
  std::string name(size_t i) const override {
    return names_.empty() ? std::to_string(i) : names_.at(i);
  }
  void read_image(size_t i, float* out) const override {
    if (i >= size())
      throw std::out_of_range(fmt::format("memory dataset: image index {} of {}", i, size()));
    std::memcpy(out, images_.data() + i * pixels(), pixels() * sizeof(float));
  }
  std::string describe() const override {
    return fmt::format("memory ({} images of {}x{})", size(), h_, w_);
  }

 private:
  int h_, w_;
  std::vector<float> images_;
  std::vector<double> labels_;
  std::vector<std::string> names_;
};

class CenterCropDataset final : public Dataset {
 public:
  CenterCropDataset(std::shared_ptr<const Dataset> ds, int size) : ds_(std::move(ds)), size_(size) {
    if (!ds_) throw std::invalid_argument("center_crop: no dataset");
    const int h = ds_->height(), w = ds_->width();
    if (size < 1 || size > std::min(h, w))
      throw std::invalid_argument(fmt::format(
          "centre crop {}x{}: the images are {}x{}; the crop must be 1 to {} pixels", size, size, h,
          w, std::min(h, w)));
    if ((h - size) % 2 != 0 || (w - size) % 2 != 0)
      throw std::invalid_argument(fmt::format(
          "centre crop {}x{} of {}x{} images would be off centre by half a pixel: choose an {} size",
          size, size, h, w, h % 2 == 0 ? "even" : "odd"));
    top_ = (h - size) / 2;
    left_ = (w - size) / 2;
  }
  size_t size() const override { return ds_->size(); }
  int height() const override { return size_; }
  int width() const override { return size_; }
  double label(size_t i) const override { return ds_->label(i); }
  std::string name(size_t i) const override { return ds_->name(i); }
  void read_image(size_t i, float* out) const override {
    thread_local std::vector<float> full;
    full.resize(ds_->pixels());
    ds_->read_image(i, full.data());
    const size_t w = static_cast<size_t>(ds_->width());
    for (int r = 0; r < size_; ++r)
      std::memcpy(out + static_cast<size_t>(r) * static_cast<size_t>(size_),
                  full.data() + static_cast<size_t>(top_ + r) * w + static_cast<size_t>(left_),
                  static_cast<size_t>(size_) * sizeof(float));
  }
  std::string describe() const override {
    return fmt::format("{}, centre crop {}x{}", ds_->describe(), size_, size_);
  }

 private:
  std::shared_ptr<const Dataset> ds_;
  int size_, top_ = 0, left_ = 0;
};

// ---- D4 ----

// 2x2 integer matrices acting on (column, row) with rows pointing down. R turns a quarter turn
// anticlockwise as displayed; F mirrors left-right. Element k = R^(k%4) F^(k/4).
using Mat = std::array<int, 4>;  // {m00, m01, m10, m11}
Mat mul(const Mat& a, const Mat& b) {
  return {a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2],
          a[2] * b[1] + a[3] * b[3]};
}
const std::array<Mat, 8>& d4_table() {
  static const std::array<Mat, 8> t = [] {
    std::array<Mat, 8> m{};
    const Mat I{1, 0, 0, 1}, R{0, 1, -1, 0}, F{-1, 0, 0, 1};
    for (int k = 0; k < 8; ++k) {
      Mat x = I;
      for (int r = 0; r < k % 4; ++r) x = mul(R, x);
      m[static_cast<size_t>(k)] = k >= 4 ? mul(x, F) : x;
    }
    return m;
  }();
  return t;
}
int d4_index(const Mat& m) {
  const auto& t = d4_table();
  for (int k = 0; k < 8; ++k)
    if (t[static_cast<size_t>(k)] == m) return k;
  throw std::logic_error("d4_index: not a symmetry of the square");
}
void check_k(int k) {
  if (k < 0 || k > 7) throw std::invalid_argument(fmt::format("D4 element {} is not in 0..7", k));
}

// ---- batches ----

size_t round_up(size_t x, size_t a) {
  return (x + a - 1) / a * a;
}

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  BufferPool(size_t bytes, BatchAllocator alloc) : bytes_(bytes), alloc_(std::move(alloc)) {
    if (!alloc_.allocate) {
      alloc_.allocate = [](size_t b) { return std::aligned_alloc(64, round_up(b, 64)); };
      alloc_.deallocate = [](void* p) { std::free(p); };
    }
    if (!alloc_.deallocate)
      throw std::invalid_argument("BatchAllocator: allocate given without deallocate");
  }
  ~BufferPool() {
    for (void* p : free_) alloc_.deallocate(p);
  }
  std::shared_ptr<void> get() {
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!free_.empty()) {
        p = free_.back();
        free_.pop_back();
      }
    }
    if (!p) p = alloc_.allocate(bytes_);
    if (!p)
      throw std::runtime_error(
          fmt::format("batch buffer: cannot allocate {}", human_bytes(bytes_)));
    auto self = shared_from_this();
    return std::shared_ptr<void>(p, [self](void* q) { self->put(q); });
  }

 private:
  void put(void* p) {
    std::lock_guard<std::mutex> lk(mu_);
    free_.push_back(p);
  }
  size_t bytes_;
  BatchAllocator alloc_;
  std::mutex mu_;
  std::vector<void*> free_;
};

size_t batch_bytes(size_t b, size_t pixels, size_t* label_offset) {
  *label_offset = round_up(b * pixels * sizeof(float), 64);
  return *label_offset + round_up(b * sizeof(float), 64);
}

// Fills images/labels for `idx` with symmetries `sym`; one scratch image per sample.
void fill(const Dataset& ds, std::span<const size_t> idx, std::span<const int> sym, ImageNorm norm,
          const LabelScaler& scaler, float* images, float* labels, std::vector<double>& original,
          int workers) {
  const size_t px = ds.pixels();
  const int h = ds.height(), w = ds.width();
  original.resize(idx.size());
  parallel_for(idx.size(), workers, [&](size_t k) {
    thread_local std::vector<float> scratch;
    scratch.resize(px);
    const size_t i = idx[k];
    ds.read_image(i, scratch.data());
    normalize_image(scratch.data(), px, norm);  // per-image statistics do not change under D4
    float* dst = images + k * px;
    if (sym[k] == 0) {
      std::memcpy(dst, scratch.data(), px * sizeof(float));
    } else {
      int oh, ow;
      apply_d4(scratch.data(), dst, h, w, sym[k], &oh, &ow);
      if (oh != h || ow != w)
        throw std::invalid_argument(fmt::format(
            "D4 element {} turns a {}x{} image; only square images can be turned", sym[k], h, w));
    }
    const double y = ds.label(i);
    original[k] = y;
    labels[k] = scaler.to_scaled(y);
  });
}

}  // namespace

// ---- public: datasets ----

std::shared_ptr<Dataset> open_npy_folder(const std::string& dir, const OpenOptions& opt) {
  return std::make_shared<NpyFolderDataset>(dir, opt);
}

std::shared_ptr<Dataset> open_hdf5_dataset(const std::string& path, const OpenOptions& opt) {
  return std::make_shared<Hdf5Dataset>(path, opt);
}

std::shared_ptr<Dataset> open_dataset(const std::string& path, const OpenOptions& opt) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return open_npy_folder(path, opt);
  if (std::filesystem::is_regular_file(path, ec)) return open_hdf5_dataset(path, opt);
  throw std::runtime_error(fmt::format(
      "{}: no such file or folder (expected a DeepLense .npy folder or an HDF5 file)", path));
}

std::shared_ptr<Dataset> make_memory_dataset(int height, int width, std::vector<float> images,
                                             std::vector<double> labels,
                                             std::vector<std::string> names) {
  return std::make_shared<MemoryDataset>(height, width, std::move(images), std::move(labels),
                                         std::move(names));
}

std::shared_ptr<Dataset> center_crop(std::shared_ptr<const Dataset> ds, int size) {
  return std::make_shared<CenterCropDataset>(std::move(ds), size);
}

// ---- public: split ----

Split make_split(size_t n, uint64_t seed, double val_fraction, double test_fraction) {
  if (!(val_fraction >= 0 && test_fraction >= 0 && val_fraction + test_fraction <= 1))
    throw std::invalid_argument(
        fmt::format("make_split: fractions val {} and test {} must be >= 0 with sum <= 1",
                    val_fraction, test_fraction));
  const size_t nv = static_cast<size_t>(std::llround(static_cast<double>(n) * val_fraction));
  const size_t nt =
      std::min(n - std::min(n, nv),
               static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction)));
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  Rng rng(seed ^ 0x73706c6974ull);  // "split"
  shuffle(perm, rng);
  Split s;
  s.val.assign(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(nv));
  s.test.assign(perm.begin() + static_cast<std::ptrdiff_t>(nv),
                perm.begin() + static_cast<std::ptrdiff_t>(nv + nt));
  s.train.assign(perm.begin() + static_cast<std::ptrdiff_t>(nv + nt), perm.end());
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.val.begin(), s.val.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

static std::string trim(std::string s) {
  const char* ws = " \t\r\n\"'";
  s.erase(0, s.find_first_not_of(ws));
  const size_t e = s.find_last_not_of(ws);
  s.erase(e == std::string::npos ? 0 : e + 1);
  return s;
}

std::vector<size_t> read_index_list(const Dataset& ds, const std::string& list_file) {
  std::ifstream in(list_file);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open the sample list", list_file));
  std::unordered_map<std::string, size_t> by_name;
  by_name.reserve(ds.size() * 2);
  for (size_t i = 0; i < ds.size(); ++i) {
    std::string nm = ds.name(i);
    by_name.emplace(nm, i);
    if (nm.size() > 4 && nm.compare(nm.size() - 4, 4, ".npy") == 0)
      by_name.emplace(nm.substr(0, nm.size() - 4), i);
  }
  std::vector<size_t> out;
  std::vector<char> seen(ds.size(), 0);
  std::string line;
  size_t lineno = 0, entries = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    const size_t comma = line.find(',');
    if (comma != std::string::npos) line.resize(comma);
    std::string key = trim(std::filesystem::path(trim(line)).filename().string());
    if (key.empty()) continue;
    ++entries;
    size_t idx = SIZE_MAX;
    auto it = by_name.find(key);
    const bool numeric =
        std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (it != by_name.end()) {
      idx = it->second;
    } else if (numeric && key.size() < 19) {
      idx = static_cast<size_t>(std::stoull(key));
      if (idx >= ds.size())
        throw std::runtime_error(
            fmt::format("{}:{}: index {} out of range (the dataset has {} images)", list_file,
                        lineno, idx, ds.size()));
    } else if (entries == 1) {
      continue;  // a header line such as "name"
    } else {
      throw std::runtime_error(fmt::format("{}:{}: '{}' is not a name or index in {}", list_file,
                                           lineno, key, ds.describe()));
    }
    if (seen[idx])
      throw std::runtime_error(fmt::format("{}:{}: '{}' is listed twice", list_file, lineno, key));
    seen[idx] = 1;
    out.push_back(idx);
  }
  return out;
}

Split split_from_lists(const Dataset& ds, const std::string& train_file,
                       const std::string& val_file, const std::string& test_file) {
  Split s;
  if (!train_file.empty()) s.train = read_index_list(ds, train_file);
  if (!val_file.empty()) s.val = read_index_list(ds, val_file);
  if (!test_file.empty()) s.test = read_index_list(ds, test_file);
  std::vector<int> owner(ds.size(), -1);
  const std::vector<size_t>* lists[3] = {&s.train, &s.val, &s.test};
  const char* names[3] = {"train", "val", "test"};
  const std::string files[3] = {train_file, val_file, test_file};
  for (int l = 0; l < 3; ++l)
    for (size_t i : *lists[l]) {
      if (owner[i] >= 0)
        throw std::runtime_error(
            fmt::format("{}: sample '{}' is in both the {} list ({}) and the {} list", files[l],
                        ds.name(i), names[owner[i]], files[owner[i]], names[l]));
      owner[i] = l;
    }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.val.begin(), s.val.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

void write_index_list(const Dataset& ds, std::span<const size_t> indices,
                      const std::string& list_file) {
  std::string text;
  for (size_t i : indices) text += ds.name(i) + "\n";
  write_file_atomic(list_file, std::span<const uint8_t>(
                                   reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

// ---- public: normalisation ----

ImageNorm parse_image_norm(std::string_view s) {
  if (s == "log1p-standardize" || s == "log1p") return ImageNorm::Log1pStandardize;
  if (s == "standardize") return ImageNorm::Standardize;
  if (s == "none") return ImageNorm::None;
  throw std::invalid_argument(
      fmt::format("unknown image normalisation '{}' (log1p-standardize, standardize, none)", s));
}

std::string_view image_norm_name(ImageNorm n) {
  switch (n) {
    case ImageNorm::Log1pStandardize:
      return "log1p-standardize";
    case ImageNorm::Standardize:
      return "standardize";
    case ImageNorm::None:
      return "none";
  }
  return "?";
}

// log1p of the small non-negative integers that photon counts almost always are, so the common
// case is a table look-up instead of a libm call (the same float log1pf would return).
static const std::array<float, 4096>& log1p_table() {
  static const std::array<float, 4096> t = [] {
    std::array<float, 4096> a{};
    for (size_t i = 0; i < a.size(); ++i) a[i] = std::log1p(static_cast<float>(i));
    return a;
  }();
  return t;
}

void normalize_image(float* x, size_t n, ImageNorm norm) {
  if (norm == ImageNorm::None || n == 0) return;
  double sum = 0;
  if (norm == ImageNorm::Log1pStandardize) {
    const auto& table = log1p_table();
    for (size_t i = 0; i < n; ++i) {
      const float v = x[i];
      const bool small = v >= 0.0f && v < 4096.0f;  // false for NaN; makes the cast below defined
      const int k = small ? static_cast<int>(v) : 0;
      if (small && static_cast<float>(k) == v)
        x[i] = table[static_cast<size_t>(k)];
      else
        x[i] = std::copysign(std::log1p(std::fabs(v)), v);
      sum += x[i];
    }
  } else {
    for (size_t i = 0; i < n; ++i) sum += x[i];
  }
  const double mean = sum / static_cast<double>(n);
  double ss = 0;
  for (size_t i = 0; i < n; ++i) ss += (x[i] - mean) * (x[i] - mean);
  const double sd = std::sqrt(ss / static_cast<double>(n));
  // A flat image (sd ~ 0) becomes all zeros instead of dividing by zero.
  const float inv = sd > 1e-12 ? static_cast<float>(1.0 / sd) : 1.0f;
  const float m = static_cast<float>(mean);
  for (size_t i = 0; i < n; ++i) x[i] = (x[i] - m) * inv;
}

LabelScaler LabelScaler::fit(std::span<const double> labels) {
  LabelScaler s;
  if (labels.empty()) return s;
  double sum = 0;
  for (double y : labels) sum += y;
  s.mean = sum / static_cast<double>(labels.size());
  double ss = 0;
  for (double y : labels) ss += (y - s.mean) * (y - s.mean);
  const double sd = std::sqrt(ss / static_cast<double>(labels.size()));
  s.std = sd > 0 ? sd : 1.0;
  return s;
}

LabelScaler LabelScaler::fit(const Dataset& ds, std::span<const size_t> indices) {
  std::vector<double> y;
  y.reserve(indices.size());
  for (size_t i : indices) y.push_back(ds.label(i));
  return fit(y);
}

// ---- public: D4 ----

void apply_d4(const float* in, float* out, int h, int w, int k, int* out_h, int* out_w) {
  check_k(k);
  const Mat& m = d4_table()[static_cast<size_t>(k)];
  const bool swap = m[0] == 0;
  const int oh = swap ? w : h, ow = swap ? h : w;
  if (out_h) *out_h = oh;
  if (out_w) *out_w = ow;
  // out(p) = in(M^-1 p) in centred coordinates; M^-1 = M^T for these orthogonal matrices. With
  // X = 2j - (ow-1), Y = 2i - (oh-1): src_col = (a X + b Y + w - 1) / 2, src_row = (c X + d Y + h -
  // 1) / 2.
  const int a = m[0], b = m[2], c = m[1], d = m[3];
  for (int i = 0; i < oh; ++i) {
    const int Y = 2 * i - (oh - 1);
    for (int j = 0; j < ow; ++j) {
      const int X = 2 * j - (ow - 1);
      const int sc = (a * X + b * Y + w - 1) / 2;
      const int sr = (c * X + d * Y + h - 1) / 2;
      out[static_cast<size_t>(i) * static_cast<size_t>(ow) + static_cast<size_t>(j)] =
          in[static_cast<size_t>(sr) * static_cast<size_t>(w) + static_cast<size_t>(sc)];
    }
  }
}

int d4_inverse(int k) {
  check_k(k);
  const Mat& m = d4_table()[static_cast<size_t>(k)];
  return d4_index({m[0], m[2], m[1], m[3]});  // transpose = inverse
}

int d4_compose(int a, int b) {
  check_k(a);
  check_k(b);
  return d4_index(mul(d4_table()[static_cast<size_t>(a)], d4_table()[static_cast<size_t>(b)]));
}

// ---- public: batches and the loader ----

Batch make_batch(const Dataset& ds, std::span<const size_t> indices, ImageNorm norm,
                 const LabelScaler& scaler, int symmetry) {
  check_k(symmetry);
  size_t label_off;
  const size_t bytes = batch_bytes(std::max<size_t>(indices.size(), 1), ds.pixels(), &label_off);
  auto pool = std::make_shared<BufferPool>(bytes, BatchAllocator{});
  Batch b;
  b.buffer = pool->get();
  b.size = indices.size();
  b.height = ds.height();
  b.width = ds.width();
  b.images = static_cast<float*>(b.buffer.get());
  b.labels = reinterpret_cast<float*>(static_cast<char*>(b.buffer.get()) + label_off);
  b.indices.assign(indices.begin(), indices.end());
  b.symmetries.assign(indices.size(), symmetry);
  fill(ds, indices, b.symmetries, norm, scaler, b.images, b.labels, b.labels_original, 1);
  return b;
}

struct Loader::Impl {
  std::shared_ptr<const Dataset> ds;
  std::vector<size_t> indices;
  LoaderOptions opt;
  std::shared_ptr<BufferPool> pool;
  size_t label_off = 0;

  bool started = false;
  uint64_t epoch = 0;
  std::vector<size_t> order;
  size_t next_batch = 0;

  // Prefetch state (guarded by mu).
  struct Item {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  std::thread thread;
  std::mutex mu;
  std::condition_variable not_full, not_empty;
  std::deque<Item> queue;
  bool producer_done = false;
  bool stop = false;

  size_t nbatches() const {
    const size_t n = indices.size(), b = opt.batch_size;
    return opt.drop_last ? n / b : (n + b - 1) / b;
  }

  int symmetry_for(uint64_t ep, size_t index) const {
    if (!opt.augment) return opt.symmetry;
    return static_cast<int>(
        mix64(mix64(opt.seed ^ 0x6434ull) ^ mix64(ep * 0x100000001B3ull + index)) & 7);
  }

  std::vector<size_t> order_for(uint64_t ep) const {
    std::vector<size_t> o = indices;
    if (opt.shuffle) {
      Rng rng(mix64(opt.seed ^ 0x73687566ull) ^ mix64(ep));  // "shuf"
      shuffle(o, rng);
    }
    return o;
  }

  Batch build(size_t bi) {
    const size_t B = opt.batch_size;
    const size_t begin = bi * B, end = std::min(order.size(), begin + B);
    Batch b;
    b.buffer = pool->get();
    b.size = end - begin;
    b.height = ds->height();
    b.width = ds->width();
    b.images = static_cast<float*>(b.buffer.get());
    b.labels = reinterpret_cast<float*>(static_cast<char*>(b.buffer.get()) + label_off);
    b.indices.assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                     order.begin() + static_cast<std::ptrdiff_t>(end));
    b.symmetries.resize(b.size);
    for (size_t k = 0; k < b.size; ++k) b.symmetries[k] = symmetry_for(epoch, b.indices[k]);
    b.epoch = epoch;
    b.batch_index = bi;
    fill(*ds, b.indices, b.symmetries, opt.norm, opt.label_scaler, b.images, b.labels,
         b.labels_original, opt.workers);
    return b;
  }

  void produce() {
    const size_t nb = nbatches();
    for (size_t bi = 0; bi < nb; ++bi) {
      {
        std::unique_lock<std::mutex> lk(mu);
        not_full.wait(lk, [&] { return stop || queue.size() < opt.prefetch; });
        if (stop) return;
      }
      Item it;
      try {
        it.batch = build(bi);
      } catch (...) {
        it.error = std::current_exception();
      }
      const bool failed = static_cast<bool>(it.error);
      {
        std::lock_guard<std::mutex> lk(mu);
        if (stop) return;
        queue.push_back(std::move(it));
        if (failed) producer_done = true;
      }
      not_empty.notify_one();
      if (failed) return;
    }
    {
      std::lock_guard<std::mutex> lk(mu);
      producer_done = true;
    }
    not_empty.notify_one();
  }

  void stop_thread() {
    if (thread.joinable()) {
      {
        std::lock_guard<std::mutex> lk(mu);
        stop = true;
      }
      not_full.notify_all();
      not_empty.notify_all();
      thread.join();
    }
    queue.clear();
    stop = false;
    producer_done = false;
  }
};

Loader::Loader(std::shared_ptr<const Dataset> ds, std::vector<size_t> indices, LoaderOptions opt)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (!ds) throw std::invalid_argument("Loader: no dataset");
  if (opt.batch_size == 0) throw std::invalid_argument("Loader: batch_size must be at least 1");
  check_k(opt.symmetry);
  for (size_t i : indices)
    if (i >= ds->size())
      throw std::invalid_argument(
          fmt::format("Loader: index {} out of range for {}", i, ds->describe()));
  const bool turns = opt.augment || (opt.symmetry % 2 == 1);
  if (turns && ds->height() != ds->width())
    throw std::invalid_argument(
        fmt::format("Loader: D4 augmentation needs square images, {} has {}x{}", ds->describe(),
                    ds->height(), ds->width()));
  if (opt.workers < 1) opt.workers = 1;
  m.ds = std::move(ds);
  m.indices = std::move(indices);
  m.opt = std::move(opt);
  const size_t bytes = batch_bytes(m.opt.batch_size, m.ds->pixels(), &m.label_off);
  m.pool = std::make_shared<BufferPool>(bytes, m.opt.allocator);
}

Loader::~Loader() {
  impl_->stop_thread();
}

size_t Loader::size() const {
  return impl_->indices.size();
}
size_t Loader::batches_per_epoch() const {
  return impl_->nbatches();
}
const LoaderOptions& Loader::options() const {
  return impl_->opt;
}
const Dataset& Loader::dataset() const {
  return *impl_->ds;
}
std::vector<size_t> Loader::epoch_order(uint64_t epoch) const {
  return impl_->order_for(epoch);
}
int Loader::symmetry_for(uint64_t epoch, size_t index) const {
  return impl_->symmetry_for(epoch, index);
}

void Loader::start_epoch(uint64_t epoch) {
  Impl& m = *impl_;
  m.stop_thread();
  m.epoch = epoch;
  m.order = m.order_for(epoch);
  m.next_batch = 0;
  m.started = true;
  if (m.opt.prefetch > 0 && m.nbatches() > 0) m.thread = std::thread([&m] { m.produce(); });
}

std::optional<Batch> Loader::next() {
  Impl& m = *impl_;
  if (!m.started) start_epoch(0);
  if (m.opt.prefetch == 0) {
    if (m.next_batch >= m.nbatches()) return std::nullopt;
    return m.build(m.next_batch++);
  }
  if (m.next_batch >= m.nbatches()) return std::nullopt;
  Impl::Item it;
  {
    std::unique_lock<std::mutex> lk(m.mu);
    m.not_empty.wait(lk, [&] { return !m.queue.empty() || m.producer_done; });
    if (m.queue.empty()) return std::nullopt;
    it = std::move(m.queue.front());
    m.queue.pop_front();
  }
  m.not_full.notify_one();
  if (it.error) {
    m.next_batch = m.nbatches();  // the epoch ends at an error
    std::rethrow_exception(it.error);
  }
  ++m.next_batch;
  return std::move(it.batch);
}

}  // namespace halo::data
