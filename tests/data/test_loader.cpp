// Tests of the data pipeline (data/loader.h): split sizes, determinism and disjointness; sample
// lists; image and label normalisation; the D4 symmetries; batching, shuffling, augmentation;
// prefetching (same batches as without, errors reach the consumer, clean shutdown); a caller's
// allocator; and datasets over a DeepLense .npy folder and an HDF5 file, in memory and lazy.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "data/deeplense.h"
#include "data/hdf5_dataset.h"
#include "data/loader.h"
#include "tests/common/compare.h"
#include "tests/common/temp_dir.h"

namespace fs = std::filesystem;
using namespace halo::data;

namespace {

using halo::test::expect_error;
struct TempDir : halo::test::TempDir {
  TempDir() : halo::test::TempDir("halo_test_loader") {}
};

// n images of size x size with distinct, asymmetric content (Poisson-like counts) and labels.
std::shared_ptr<Dataset> counts_dataset(size_t n, int size, uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::vector<float> images(n * static_cast<size_t>(size * size));
  std::vector<double> labels(n);
  for (size_t i = 0; i < n; ++i) {
    for (int p = 0; p < size * size; ++p)
      images[i * static_cast<size_t>(size * size) + static_cast<size_t>(p)] =
          static_cast<float>(rng() % 50 + (p % 7) * i);
    labels[i] = 0.01 + 0.0005 * static_cast<double>(i);
  }
  return make_memory_dataset(size, size, std::move(images), std::move(labels));
}

std::vector<float> batch_images(const Batch& b) {
  return std::vector<float>(b.images, b.images + b.size * static_cast<size_t>(b.height * b.width));
}

// All batches of one epoch, flattened.
struct EpochData {
  std::vector<float> images, labels;
  std::vector<size_t> indices;
  std::vector<int> symmetries;
  std::vector<size_t> batch_sizes;
};
EpochData run_epoch(Loader& loader, uint64_t epoch) {
  EpochData d;
  loader.start_epoch(epoch);
  while (auto b = loader.next()) {
    auto im = batch_images(*b);
    d.images.insert(d.images.end(), im.begin(), im.end());
    d.labels.insert(d.labels.end(), b->labels, b->labels + b->size);
    d.indices.insert(d.indices.end(), b->indices.begin(), b->indices.end());
    d.symmetries.insert(d.symmetries.end(), b->symmetries.begin(), b->symmetries.end());
    d.batch_sizes.push_back(b->size);
    EXPECT_EQ(b->epoch, epoch);
  }
  return d;
}

}  // namespace

// ---- split ----

TEST(LoaderSplit, SizesDeterminismAndDisjointness) {
  Split s = make_split(20000, 42);
  EXPECT_EQ(s.train.size(), 16000u);
  EXPECT_EQ(s.val.size(), 2000u);
  EXPECT_EQ(s.test.size(), 2000u);
  std::vector<int> seen(20000, 0);
  for (const auto* l : {&s.train, &s.val, &s.test}) {
    EXPECT_TRUE(std::is_sorted(l->begin(), l->end()));
    for (size_t i : *l) ++seen[i];
  }
  for (int c : seen) ASSERT_EQ(c, 1);  // a partition: disjoint and complete
  Split again = make_split(20000, 42);
  EXPECT_EQ(again.train, s.train);
  EXPECT_EQ(again.val, s.val);
  EXPECT_EQ(again.test, s.test);
  EXPECT_NE(make_split(20000, 43).val, s.val);
  Split small = make_split(10, 1);
  EXPECT_EQ(small.train.size(), 8u);
  EXPECT_EQ(small.val.size(), 1u);
  EXPECT_EQ(small.test.size(), 1u);
  Split custom = make_split(1000, 1, 0.2, 0.05);
  EXPECT_EQ(custom.val.size(), 200u);
  EXPECT_EQ(custom.test.size(), 50u);
  EXPECT_EQ(custom.train.size(), 750u);
  EXPECT_TRUE(make_split(0, 1).train.empty());
  EXPECT_THROW(make_split(10, 1, 0.6, 0.6), std::invalid_argument);
}

TEST(LoaderSplit, ListsOfNamesOrIndices) {
  TempDir dir;
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("image_" + std::to_string(1000 + i) + ".npy");
  auto ds =
      make_memory_dataset(2, 2, std::vector<float>(40, 0.f), std::vector<double>(10, 0.0), names);
  std::ofstream(dir / "train.csv")
      << "name,mass\nimage_1003.npy,0.1\nimage_1001,0.2\n# comment\n\n/some/dir/image_1007.npy\n";
  std::ofstream(dir / "val.txt") << "0\n2\n";
  std::ofstream(dir / "test.txt") << "image_1009.npy\n";
  Split s = split_from_lists(*ds, dir / "train.csv", dir / "val.txt", dir / "test.txt");
  EXPECT_EQ(s.train, (std::vector<size_t>{1, 3, 7}));
  EXPECT_EQ(s.val, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(s.test, (std::vector<size_t>{9}));
  write_index_list(*ds, s.train, dir / "train_out.txt");
  EXPECT_EQ(read_index_list(*ds, dir / "train_out.txt"), s.train);

  std::ofstream(dir / "unknown.txt") << "image_1001.npy\nimage_9999.npy\n";
  expect_error([&] { read_index_list(*ds, dir / "unknown.txt"); },
               {"unknown.txt:2", "image_9999.npy"});
  std::ofstream(dir / "dup.txt") << "3\nimage_1003.npy\n";
  expect_error([&] { read_index_list(*ds, dir / "dup.txt"); }, {"dup.txt:2", "twice"});
  std::ofstream(dir / "range.txt") << "10\n";
  expect_error([&] { read_index_list(*ds, dir / "range.txt"); }, {"range.txt:1", "out of range"});
  std::ofstream(dir / "overlap.txt") << "image_1003.npy\n";
  expect_error([&] { split_from_lists(*ds, dir / "train.csv", dir / "overlap.txt", ""); },
               {"overlap.txt", "both"});
  expect_error([&] { read_index_list(*ds, dir / "missing.txt"); }, {"missing.txt", "cannot open"});
}

// ---- normalisation ----

TEST(LoaderNorm, ImageNormalisations) {
  std::vector<float> img = {0, 1, 3, 7, 15, 1000, 0, 2};
  std::vector<float> a = img;
  normalize_image(a.data(), a.size(), ImageNorm::Log1pStandardize);
  double mean = 0, var = 0;
  for (float x : a) mean += x;
  mean /= static_cast<double>(a.size());
  for (float x : a) var += (x - mean) * (x - mean);
  var /= static_cast<double>(a.size());
  EXPECT_NEAR(mean, 0.0, 1e-6);
  EXPECT_NEAR(var, 1.0, 1e-5);
  // log1p is monotone: the order of pixels is kept; and it equals the hand computation.
  std::vector<double> l;
  for (float x : img) l.push_back(std::log1p(static_cast<double>(x)));
  const double lm = std::accumulate(l.begin(), l.end(), 0.0) / static_cast<double>(l.size());
  double lv = 0;
  for (double x : l) lv += (x - lm) * (x - lm);
  const double ls = std::sqrt(lv / static_cast<double>(l.size()));
  std::vector<double> want(img.size());
  for (size_t i = 0; i < img.size(); ++i) want[i] = (l[i] - lm) / ls;
  // Absolute, on standardised values of size ~1-2.5 stored as float (u = 6e-8 relative, ~1.5e-7)
  // after float log1p/mean/std: a few roundings each, ~1e-6; 1e-5.
  EXPECT_TRUE(halo::test::close_abs(a, want, 1e-5, "log1p-standardised pixels"));

  std::vector<float> s = img;
  normalize_image(s.data(), s.size(), ImageNorm::Standardize);
  EXPECT_NEAR(
      s[5],
      (1000 - 128.5) / std::sqrt(((0 - 128.5) * (0 - 128.5) * 2 + (1 - 128.5) * (1 - 128.5) +
                                  (3 - 128.5) * (3 - 128.5) + (7 - 128.5) * (7 - 128.5) +
                                  (15 - 128.5) * (15 - 128.5) + (1000 - 128.5) * (1000 - 128.5) +
                                  (2 - 128.5) * (2 - 128.5)) /
                                 8),
      1e-4);
  std::vector<float> n = img;
  normalize_image(n.data(), n.size(), ImageNorm::None);
  EXPECT_EQ(n, img);
  std::vector<float> flat(16, 5.0f);
  normalize_image(flat.data(), flat.size(), ImageNorm::Log1pStandardize);
  for (float x : flat) EXPECT_EQ(x, 0.0f);  // no division by zero
  std::vector<float> neg = {-3, 3};
  normalize_image(neg.data(), 2, ImageNorm::Log1pStandardize);
  EXPECT_FLOAT_EQ(neg[0], -1.0f);  // sign(x) log1p(|x|) keeps negatives finite
  EXPECT_FLOAT_EQ(neg[1], 1.0f);
  EXPECT_EQ(parse_image_norm("none"), ImageNorm::None);
  EXPECT_EQ(parse_image_norm(image_norm_name(ImageNorm::Standardize)), ImageNorm::Standardize);
  EXPECT_THROW(parse_image_norm("minmax"), std::invalid_argument);
}

TEST(LoaderNorm, LabelStandardisationRoundTrip) {
  auto ds = counts_dataset(100, 4);
  Split s = make_split(100, 3);
  LabelScaler sc = LabelScaler::fit(*ds, s.train);
  double mean = 0;
  for (size_t i : s.train) mean += ds->label(i);
  mean /= static_cast<double>(s.train.size());
  EXPECT_NEAR(sc.mean, mean, 1e-15);
  std::vector<double> z;
  for (size_t i : s.train) z.push_back(sc.to_scaled(ds->label(i)));
  double zm = 0, zv = 0;
  for (double v : z) zm += v;
  zm /= static_cast<double>(z.size());
  for (double v : z) zv += (v - zm) * (v - zm);
  EXPECT_NEAR(zm, 0.0, 1e-6);
  EXPECT_NEAR(zv / static_cast<double>(z.size()), 1.0, 1e-5);
  for (size_t i = 0; i < 100; ++i)
    EXPECT_NEAR(sc.to_original(sc.to_scaled(ds->label(i))), ds->label(i), 1e-9);
  // An MSE of 1 in scaled units is the label variance in original units.
  EXPECT_DOUBLE_EQ(sc.mse_to_original(1.0), sc.std * sc.std);
  EXPECT_DOUBLE_EQ(sc.abs_to_original(2.0), 2.0 * sc.std);
  const double same[3] = {0.5, 0.5, 0.5};
  EXPECT_EQ(LabelScaler::fit(same).std, 1.0);
}

// ---- D4 ----

TEST(LoaderD4, EightDistinctInversesAndClosure) {
  const int n = 5;
  std::vector<float> img(n * n);
  for (int i = 0; i < n * n; ++i)
    img[static_cast<size_t>(i)] = static_cast<float>(i * i % 17 + i);  // no symmetry
  std::vector<std::vector<float>> t(8, std::vector<float>(n * n));
  for (int k = 0; k < 8; ++k) apply_d4(img.data(), t[static_cast<size_t>(k)].data(), n, n, k);
  std::set<std::vector<float>> distinct(t.begin(), t.end());
  EXPECT_EQ(distinct.size(), 8u);
  EXPECT_EQ(t[0], img);
  // Conventions: k=1 is numpy's rot90 (a quarter turn anticlockwise), k=4 a left-right mirror.
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      EXPECT_EQ(t[1][static_cast<size_t>(i * n + j)],
                img[static_cast<size_t>(j * n + (n - 1 - i))]);
      EXPECT_EQ(t[4][static_cast<size_t>(i * n + j)],
                img[static_cast<size_t>(i * n + (n - 1 - j))]);
    }
  std::vector<float> back(n * n), two(n * n), direct(n * n);
  for (int k = 0; k < 8; ++k) {
    apply_d4(t[static_cast<size_t>(k)].data(), back.data(), n, n, d4_inverse(k));
    EXPECT_EQ(back, img) << "k=" << k;
    EXPECT_EQ(d4_compose(k, d4_inverse(k)), 0);
    for (int j = 0; j < 8; ++j) {
      const int c = d4_compose(k, j);
      ASSERT_GE(c, 0);
      ASSERT_LT(c, 8);  // closed
      apply_d4(t[static_cast<size_t>(j)].data(), two.data(), n, n, k);
      apply_d4(img.data(), direct.data(), n, n, c);
      EXPECT_EQ(two, direct) << "k=" << k << " j=" << j;
    }
  }
  // Associativity holds through the table, and there is exactly one identity.
  for (int a = 0; a < 8; ++a)
    for (int b = 0; b < 8; ++b)
      for (int c = 0; c < 8; ++c)
        EXPECT_EQ(d4_compose(a, d4_compose(b, c)), d4_compose(d4_compose(a, b), c));
  EXPECT_THROW(d4_inverse(8), std::invalid_argument);
}

TEST(LoaderD4, NonSquareImagesSwapDimensions) {
  std::vector<float> img = {1, 2, 3, 4, 5, 6};  // 2 x 3
  std::vector<float> out(6);
  int oh, ow;
  apply_d4(img.data(), out.data(), 2, 3, 1, &oh, &ow);
  EXPECT_EQ(oh, 3);
  EXPECT_EQ(ow, 2);
  EXPECT_EQ(out, (std::vector<float>{3, 6, 2, 5, 1, 4}));  // numpy.rot90 of [[1,2,3],[4,5,6]]
  apply_d4(img.data(), out.data(), 2, 3, 2, &oh, &ow);
  EXPECT_EQ(out, (std::vector<float>{6, 5, 4, 3, 2, 1}));
  auto ds = make_memory_dataset(2, 3, img, {0.1});
  LoaderOptions o;
  o.augment = true;
  EXPECT_THROW(Loader(ds, {0}, o), std::invalid_argument);
}

// ---- batching ----

TEST(LoaderBatches, ShapesCoverageAndShortLastBatch) {
  auto ds = counts_dataset(50, 6);
  Split s = make_split(50, 0);
  LoaderOptions o;
  o.batch_size = 16;
  o.seed = 5;
  o.label_scaler = LabelScaler::fit(*ds, s.train);
  Loader loader(ds, s.train, o);
  EXPECT_EQ(loader.size(), 40u);
  EXPECT_EQ(loader.batches_per_epoch(), 3u);
  EpochData d = run_epoch(loader, 0);
  EXPECT_EQ(d.batch_sizes, (std::vector<size_t>{16, 16, 8}));
  std::vector<size_t> sorted = d.indices;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, s.train);  // every training sample exactly once
  EXPECT_EQ(d.indices, loader.epoch_order(0));
  for (size_t k = 0; k < d.indices.size(); ++k)
    EXPECT_FLOAT_EQ(d.labels[k], o.label_scaler.to_scaled(ds->label(d.indices[k])));
  // Each image is the normalised raw image (no augmentation by default).
  std::vector<float> raw(36);
  for (size_t k = 0; k < d.indices.size(); ++k) {
    ds->read_image(d.indices[k], raw.data());
    normalize_image(raw.data(), 36, ImageNorm::Log1pStandardize);
    for (size_t p = 0; p < 36; ++p) ASSERT_EQ(d.images[k * 36 + p], raw[p]);
  }
  EXPECT_FALSE(loader.next().has_value());  // the epoch is over
  o.drop_last = true;
  Loader dl(ds, s.train, o);
  EXPECT_EQ(dl.batches_per_epoch(), 2u);
  EXPECT_EQ(run_epoch(dl, 0).batch_sizes, (std::vector<size_t>{16, 16}));
  // Labels in original units travel with the batch.
  o.drop_last = false;
  Loader l2(ds, {3, 4}, o);
  auto b = l2.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->height, 6);
  EXPECT_EQ(b->width, 6);
  for (size_t k = 0; k < b->size; ++k) EXPECT_EQ(b->labels_original[k], ds->label(b->indices[k]));
}

TEST(LoaderBatches, ShufflingIsSeededPerEpoch) {
  auto ds = counts_dataset(64, 4);
  std::vector<size_t> all(64);
  std::iota(all.begin(), all.end(), 0);
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 9;
  Loader a(ds, all, o), b(ds, all, o);
  EXPECT_EQ(run_epoch(a, 0).indices, run_epoch(b, 0).indices);
  EXPECT_NE(run_epoch(a, 0).indices, run_epoch(a, 1).indices);
  EXPECT_NE(run_epoch(a, 0).indices, all);
  o.seed = 10;
  Loader c(ds, all, o);
  EXPECT_NE(run_epoch(c, 0).indices, run_epoch(a, 0).indices);
  o.shuffle = false;
  Loader d(ds, all, o);
  EXPECT_EQ(run_epoch(d, 3).indices, all);
}

TEST(LoaderBatches, AugmentationAppliesTheRecordedSymmetry) {
  auto ds = counts_dataset(40, 7);
  std::vector<size_t> all(40);
  std::iota(all.begin(), all.end(), 0);
  LoaderOptions o;
  o.batch_size = 16;
  o.augment = true;
  o.seed = 1;
  Loader loader(ds, all, o);
  EpochData d = run_epoch(loader, 2);
  std::set<int> used(d.symmetries.begin(), d.symmetries.end());
  EXPECT_GE(used.size(), 6u);  // 40 draws from 8 elements
  std::vector<float> raw(49), want(49);
  for (size_t k = 0; k < d.indices.size(); ++k) {
    EXPECT_EQ(d.symmetries[k], loader.symmetry_for(2, d.indices[k]));
    ds->read_image(d.indices[k], raw.data());
    normalize_image(raw.data(), 49, o.norm);
    apply_d4(raw.data(), want.data(), 7, 7, d.symmetries[k]);
    for (size_t p = 0; p < 49; ++p) ASSERT_EQ(d.images[k * 49 + p], want[p]);
    EXPECT_EQ(d.labels[k], static_cast<float>(ds->label(d.indices[k])));  // labels do not change
  }
  EXPECT_NE(run_epoch(loader, 3).symmetries, d.symmetries);
  // Off for evaluation, or one fixed element for test-time averaging.
  o.augment = false;
  o.symmetry = 5;
  o.shuffle = false;
  Loader tta(ds, all, o);
  EpochData e = run_epoch(tta, 0);
  for (int k : e.symmetries) EXPECT_EQ(k, 5);
  Batch mb = make_batch(*ds, std::vector<size_t>{0, 1, 2}, o.norm, LabelScaler{}, 5);
  for (size_t p = 0; p < 3 * 49; ++p) ASSERT_EQ(mb.images[p], e.images[p]);
}

TEST(LoaderBatches, PrefetchAndWorkersGiveIdenticalBatches) {
  auto ds = counts_dataset(77, 9);
  Split s = make_split(77, 4);
  LoaderOptions base;
  base.batch_size = 10;
  base.augment = true;
  base.seed = 123;
  base.label_scaler = LabelScaler::fit(*ds, s.train);
  base.prefetch = 0;
  Loader ref_loader(ds, s.train, base);
  EpochData ref0 = run_epoch(ref_loader, 0), ref1 = run_epoch(ref_loader, 1);
  for (size_t prefetch : {1u, 2u, 5u})
    for (int workers : {1, 3}) {
      LoaderOptions o = base;
      o.prefetch = prefetch;
      o.workers = workers;
      Loader l(ds, s.train, o);
      for (int rep = 0; rep < 2; ++rep) {  // restarting an epoch gives it again
        EpochData d0 = run_epoch(l, 0);
        EXPECT_EQ(d0.indices, ref0.indices);
        EXPECT_EQ(d0.images, ref0.images) << "prefetch " << prefetch << " workers " << workers;
        EXPECT_EQ(d0.labels, ref0.labels);
        EXPECT_EQ(d0.symmetries, ref0.symmetries);
      }
      EXPECT_EQ(run_epoch(l, 1).images, ref1.images);
    }
}

namespace {

// A dataset whose image `bad` throws, to check that errors cross the prefetch thread.
class FailingDataset : public Dataset {
 public:
  FailingDataset(std::shared_ptr<Dataset> inner, size_t bad)
      : inner_(std::move(inner)), bad_(bad) {}
  size_t size() const override { return inner_->size(); }
  int height() const override { return inner_->height(); }
  int width() const override { return inner_->width(); }
  double label(size_t i) const override { return inner_->label(i); }
  std::string name(size_t i) const override { return inner_->name(i); }
  void read_image(size_t i, float* out) const override {
    if (i == bad_)
      throw std::runtime_error("/data/broken/image_" + std::to_string(i) + ".npy: truncated");
    inner_->read_image(i, out);
  }
  std::string describe() const override { return "failing"; }

 private:
  std::shared_ptr<Dataset> inner_;
  size_t bad_;
};

}  // namespace

TEST(LoaderPrefetch, ErrorsReachTheConsumer) {
  auto ds = std::make_shared<FailingDataset>(counts_dataset(30, 4), 17);
  std::vector<size_t> all(30);
  std::iota(all.begin(), all.end(), 0);
  for (size_t prefetch : {0u, 2u}) {
    LoaderOptions o;
    o.batch_size = 4;
    o.shuffle = false;
    o.prefetch = prefetch;
    o.workers = 2;
    Loader l(ds, all, o);
    size_t good = 0;
    try {
      while (auto b = l.next()) ++good;
      ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("image_17.npy"), std::string::npos) << e.what();
    }
    EXPECT_EQ(good, 4u);  // batches 0-3 hold indices 0-15; batch 4 holds 17
    if (prefetch > 0) {
      EXPECT_FALSE(l.next().has_value());  // the epoch ended at the error
    }
    l.start_epoch(1);  // and the loader can go on
    EXPECT_TRUE(l.next().has_value());
  }
}

TEST(LoaderPrefetch, CleanShutdownMidEpochAndBatchesOutliveTheLoader) {
  auto ds = counts_dataset(200, 16);
  std::vector<size_t> all(200);
  std::iota(all.begin(), all.end(), 0);
  std::optional<Batch> kept;
  for (int rep = 0; rep < 20; ++rep) {
    LoaderOptions o;
    o.batch_size = 8;
    o.prefetch = 3;
    o.workers = 2;
    Loader l(ds, all, o);
    kept = l.next();  // take one batch, then drop the loader with a full queue
    l.start_epoch(1);
    l.next();
  }
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->size, 8u);
  EXPECT_TRUE(std::isfinite(kept->images[kept->size * 256 - 1]));  // still valid memory
}

TEST(LoaderPrefetch, CallerAllocatorIsUsedAndRecycled) {
  static std::atomic<int> live{0}, total{0};
  live = 0;
  total = 0;
  auto ds = counts_dataset(100, 8);
  std::vector<size_t> all(100);
  std::iota(all.begin(), all.end(), 0);
  {
    LoaderOptions o;
    o.batch_size = 10;
    o.prefetch = 2;
    o.allocator.allocate = [](size_t bytes) {
      ++live;
      ++total;
      return std::malloc(bytes);
    };
    o.allocator.deallocate = [](void* p) {
      --live;
      std::free(p);
    };
    Loader l(ds, all, o);
    for (int epoch = 0; epoch < 3; ++epoch) run_epoch(l, static_cast<uint64_t>(epoch));
    EXPECT_LE(total.load(), 6);  // buffers are reused, not allocated per batch
    EXPECT_GE(total.load(), 1);
  }
  EXPECT_EQ(live.load(), 0);  // everything handed back when the loader (and its batches) are gone
}

// ---- datasets over files ----

TEST(LoaderDatasets, NpyFolderInMemoryAndLazyAgree) {
  TempDir dir;
  std::mt19937_64 rng(3);
  std::vector<std::string> names;
  for (uint64_t i = 0; i < 12; ++i) {
    NpyArray img;
    img.dtype = DType::Int64;
    img.shape = {10, 10};
    img.bytes.resize(800);
    for (size_t p = 0; p < 100; ++p) img.data<int64_t>()[p] = static_cast<int64_t>(rng() % 300);
    names.push_back(deeplense_file_name_for(1, i));
    write_deeplense_file(dir / names.back(), img, 0.02 + 0.001 * static_cast<double>(i));
  }
  std::sort(names.begin(), names.end());
  OpenOptions mem, lazy;
  mem.cache = CacheMode::Memory;
  lazy.cache = CacheMode::Lazy;
  auto a = open_npy_folder(dir.path.string(), mem);
  auto b = open_dataset(dir.path.string(), lazy);
  ASSERT_EQ(a->size(), 12u);
  ASSERT_EQ(b->size(), 12u);
  EXPECT_NE(a->describe().find("in memory"), std::string::npos) << a->describe();
  EXPECT_NE(b->describe().find("lazily"), std::string::npos) << b->describe();
  std::vector<float> x(100), y(100);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(a->name(i), names[i]);
    EXPECT_EQ(a->label(i), b->label(i));
    a->read_image(i, x.data());
    b->read_image(i, y.data());
    EXPECT_EQ(x, y);
    DeepLenseRecord r = read_deeplense_file(dir / names[i]);
    EXPECT_EQ(*r.label, a->label(i));
    EXPECT_EQ(r.image.to_float(), x);
  }
  // The same batches from either.
  LoaderOptions o;
  o.batch_size = 5;
  o.augment = true;
  Split s = make_split(12, 0);
  Loader la(a, s.train, o), lb(b, s.train, o);
  EXPECT_EQ(run_epoch(la, 0).images, run_epoch(lb, 0).images);
}

TEST(LoaderDatasets, NpyFolderErrorsNameTheFile) {
  NpyArray img;
  img.dtype = DType::Int64;
  img.shape = {4, 4};
  img.bytes.assign(128, 0);
  NpyArray other = img;
  other.shape = {2, 8};
  {
    TempDir dir;
    write_deeplense_file(dir / "image_1.npy", img, 0.1);
    write_deeplense_file(dir / "image_2.npy", other, 0.1);
    expect_error([&] { open_npy_folder(dir.path.string()); }, {"image_2.npy", "2x8", "one size"});
  }
  {
    TempDir dir;
    write_deeplense_file(dir / "image_1.npy", img, 0.1);
    write_npy(dir / "image_2.npy", img);  // a plain array: no label
    expect_error([&] { open_npy_folder(dir.path.string()); }, {"image_2.npy", "no label"});
  }
  {
    TempDir dir;
    write_deeplense_file(dir / "image_1.npy", img, 0.1);
    std::vector<uint8_t> b = encode_deeplense(img, 0.2);
    b.resize(b.size() - 30);
    std::ofstream(dir / "image_2.npy", std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    for (CacheMode m : {CacheMode::Memory, CacheMode::Lazy}) {
      OpenOptions oo;
      oo.cache = m;
      expect_error([&] { open_npy_folder(dir.path.string(), oo); }, {"image_2.npy", "truncated"});
    }
  }
  expect_error([] { open_dataset("/nonexistent/halo/data"); },
               {"/nonexistent/halo/data", "no such file"});
}

TEST(LoaderDatasets, RealSamplesThroughTheLoader) {
  TempDir dir;
  const std::string src = std::string(HALO_FIXTURES_DIR) + "/npy_samples/";
  for (const char* n : {"image_100039445715651244355586475194887440972.npy",
                        "image_10005688258524457867209939891556234100.npy"})
    fs::copy_file(src + n, dir.path / n);
  auto ds = open_npy_folder(dir.path.string());
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ(ds->height(), 150);
  EXPECT_EQ(ds->label(0), 0.034631228719606305);  // name order: "1000394..." < "1000568..."
  EXPECT_EQ(ds->label(1), 0.05309028336410531);
  std::vector<float> img(ds->pixels());
  ds->read_image(1, img.data());
  EXPECT_EQ(std::accumulate(img.begin(), img.end(), 0.0), 334891.0);
  LoaderOptions o;
  o.batch_size = 2;
  Loader l(ds, {0, 1}, o);
  auto b = l.next();
  ASSERT_TRUE(b);
  for (size_t p = 0; p < 2 * ds->pixels(); ++p) ASSERT_TRUE(std::isfinite(b->images[p]));
}

TEST(LoaderDatasets, Hdf5InMemoryAndLazyAgree) {
  TempDir dir;
  const std::string path = dir / "set.h5";
  {
    Hdf5DatasetWriter w(path, 8, 8, {"n_sub"}, {{"preset", "test"}});
    std::mt19937_64 rng(1);
    for (int i = 0; i < 25; ++i) {
      std::vector<int64_t> img(64);
      for (auto& v : img) v = static_cast<int64_t>(rng() % 100);
      const double p[1] = {static_cast<double>(i % 7)};
      w.append(img.data(), 0.03 + 0.001 * i, p);
    }
    w.finish();
  }
  OpenOptions mem, lazy;
  mem.cache = CacheMode::Memory;
  lazy.cache = CacheMode::Lazy;
  auto a = open_dataset(path, mem);
  auto b = open_hdf5_dataset(path, lazy);
  ASSERT_EQ(a->size(), 25u);
  EXPECT_NE(a->describe().find("HDF5"), std::string::npos);
  std::vector<float> x(64), y(64);
  Hdf5DatasetReader r(path);
  for (size_t i = 0; i < 25; ++i) {
    a->read_image(i, x.data());
    b->read_image(i, y.data());
    EXPECT_EQ(x, y);
    std::vector<int64_t> raw = r.read_image_int64(i);
    for (size_t p = 0; p < 64; ++p) ASSERT_EQ(x[p], static_cast<float>(raw[p]));
    EXPECT_EQ(a->label(i), 0.03 + 0.001 * static_cast<double>(i));
  }
  LoaderOptions o;
  o.batch_size = 6;
  o.augment = true;
  o.workers = 3;
  Split s = make_split(25, 2);
  Loader la(a, s.train, o), lb(b, s.train, o);
  EXPECT_EQ(run_epoch(la, 4).images, run_epoch(lb, 4).images);
}

// center_crop: every image is its central block, row by row; labels and names are the source's;
// an off-centre (wrong parity), empty or too large crop is refused naming the sizes.
TEST(LoaderDatasets, CenterCropIsTheCentralBlock) {
  auto src = counts_dataset(3, 10);
  auto crop = center_crop(src, 6);
  ASSERT_EQ(crop->size(), 3u);
  EXPECT_EQ(crop->height(), 6);
  EXPECT_EQ(crop->width(), 6);
  EXPECT_NE(crop->describe().find("centre crop 6x6"), std::string::npos) << crop->describe();
  std::vector<float> full(100), got(36, NAN);
  for (size_t i = 0; i < 3; ++i) {
    src->read_image(i, full.data());
    crop->read_image(i, got.data());
    std::vector<float> want;
    for (int r = 2; r < 8; ++r)
      for (int c = 2; c < 8; ++c) want.push_back(full[static_cast<size_t>(r * 10 + c)]);
    EXPECT_TRUE(halo::test::close_abs(got, want, 0.0, "crop of image " + std::to_string(i)));
    EXPECT_EQ(crop->label(i), src->label(i));
    EXPECT_EQ(crop->name(i), src->name(i));
  }
  // The whole image is a crop too.
  auto same = center_crop(src, 10);
  std::vector<float> all(100, NAN);
  same->read_image(1, all.data());
  src->read_image(1, full.data());
  EXPECT_TRUE(halo::test::close_abs(all, full, 0.0, "10x10 crop of 10x10"));

  for (const auto& [size, says] : std::vector<std::pair<int, std::string>>{
           {7, "off centre by half a pixel"},
           {12, "the images are 10x10"},
           {0, "the crop must be 1 to 10 pixels"}}) {
    try {
      center_crop(src, size);
      ADD_FAILURE() << "crop " << size << " of 10x10 images was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  }
}
