// train_halo's promises, each checked on what a user sees: a NaN loss stops the run with a message,
// a non-zero exit and a loadable best checkpoint; --recipe, --lr, --weight-decay, --patience,
// --norm, the list files, --sim-count/--sim-size and the --cache of scripts/run.sh each change what
// they should (the metrics.csv lr column, the weights, the number of epochs, the recorded
// normalisation, the split, the cache); --quiet keeps progress bars out of logs.
// Runs are tiny (20 simulated 32x32 images, one or two steps per epoch): the tests check behaviour,
// not learning.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "apps/support/simulated_data.h"
#include "apps/support/trainer.h"
#include "data/hdf5_dataset.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/serialize.h"
#include "models/registry.h"
#include "tests/apps/cli_util.h"
#include "tests/common/compare.h"
#include "tests/common/temp_dir.h"

using namespace halo;
using namespace halo::test;
namespace fs = std::filesystem;

namespace {

// train_halo on the CPU, with no progress bar, no 8-symmetry test pass and one thread (ctest runs
// two tests at once on CI's two cores).
std::string train_halo(const std::string& args) {
  return app_path("train_halo") + " --device cpu --quiet --no-tta --threads 1 " + args;
}

std::string attribute(const std::string& h5, const std::string& key) {
  for (const auto& [k, v] : read_h5_attributes(h5))
    if (k == key) return v;
  ADD_FAILURE() << h5 << " has no attribute " << key;
  return "";
}

// The float32 tensors of a state dict file, by key.
std::vector<float> values(const StateDict& sd, const std::string& key) {
  return sd.at(key).to_vector();
}

bool all_finite(const StateDict& sd) {
  for (const auto& [k, t] : sd.items()) {
    if (t.dtype() != DType::f32) continue;
    for (float v : t.to_vector())
      if (!std::isfinite(v)) return false;
  }
  return true;
}

// The model's predictions (original units) for dataset images `idx`, computed here: each image
// normalised with `norm`, one eval-mode forward, then z * std + mean.
std::vector<double> predictions(nn::Module& model, const data::Dataset& ds,
                                const std::vector<std::size_t>& idx, data::ImageNorm norm,
                                double mean, double std) {
  NoGradGuard no_grad;
  model.eval();
  const int64_t n = int64_t(idx.size()), px = int64_t(ds.pixels());
  std::vector<float> x(std::size_t(n * px));
  for (int64_t k = 0; k < n; ++k) {
    ds.read_image(idx[std::size_t(k)], x.data() + k * px);
    data::normalize_image(x.data() + k * px, std::size_t(px), norm);
  }
  const std::vector<float> z =
      model(Tensor::from_vector(x, {n, 1, ds.height(), ds.width()})).to_vector();
  std::vector<double> out;
  for (float v : z) out.push_back(double(v) * std + mean);
  return out;
}

// A float32 HDF5 copy of the 32x32 data set `clean` at `path`, with pixel `pixel` set to NaN in
// every image i for which poison(i) holds.
template <class Poison>
void write_with_nan_pixel(const data::Dataset& clean, const std::string& path, Poison poison,
                          std::size_t pixel) {
  data::Hdf5WriteOptions wo;
  wo.image_dtype = data::DType::Float32;
  data::Hdf5DatasetWriter w(path, 32, 32, {}, nlohmann::json::object(), wo);
  std::vector<float> px(clean.pixels());
  for (std::size_t i = 0; i < clean.size(); ++i) {
    clean.read_image(i, px.data());
    if (poison(i)) px[pixel] = NAN;
    w.append(px.data(), clean.label(i));
  }
  w.finish();
}

class TrainHaloCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("halo_train_cli");
    data_ = *dir_ / "tiny.h5";
    apps::write_simulated_hdf5(data_, "model1", 20, 32, 7, 2, /*progress=*/false);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static inline TempDir* dir_ = nullptr;
  static inline std::string data_;
};

}  // namespace

// A training image with a NaN pixel, placed where the first batch of epoch 2 meets it but that of
// epoch 1 does not: epoch 1 finishes and writes best.h5, then the loss turns NaN.
TEST_F(TrainHaloCli, NanLossStopsSaysSoAndKeepsTheBestCheckpoint) {
  TempDir dir("halo_nan");
  const uint64_t seed = 0;
  const std::size_t batch = 4;
  auto clean = data::open_dataset(data_);
  const data::Split split = data::make_split(clean->size(), seed);  // as train_halo splits
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.seed = seed;
  lo.prefetch = 0;
  data::Loader loader(clean, split.train, lo);
  const std::vector<std::size_t> e1 = loader.epoch_order(0), e2 = loader.epoch_order(1);
  std::size_t victim = SIZE_MAX;
  for (std::size_t k = 0; k < batch && victim == SIZE_MAX; ++k)
    if (std::find(e1.begin(), e1.begin() + batch, e2[k]) == e1.begin() + batch) victim = e2[k];
  ASSERT_NE(victim, SIZE_MAX) << "the first batches of epochs 1 and 2 hold the same images";

  const std::string poisoned = dir / "poisoned.h5";
  write_with_nan_pixel(
      *clean, poisoned, [&](std::size_t i) { return i == victim; }, 17);
  const std::string rd = dir / "run";
  CmdResult r = run_cmd(train_halo("--data " + poisoned + " --run-dir " + rd +
                                   " --epochs 3 --batch-size 4 --max-batches 1 --seed 0"));
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "the training loss became nan at epoch 2, batch 1: stopping"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "the best checkpoint (epoch 1,")) << r.output;
  EXPECT_TRUE(contains(r.output, rd + "/best.h5")) << r.output;
  EXPECT_FALSE(contains(r.output, "epoch   2  train MSE"))
      << "epoch 2 must not be reported as finished\n"
      << r.output;

  // metrics.csv holds epoch 1 only; best.h5 and checkpoint.h5 are epoch 1's, finite and loadable.
  EXPECT_EQ(read_csv(rd + "/metrics.csv").rows.size(), 1u);
  StateDict best = load_state_dict_file(rd + "/best.h5");
  EXPECT_TRUE(all_finite(best));
  auto model = models::make_model("resnet18");
  EXPECT_NO_THROW(load_module(*model, rd + "/best.h5"));
  StateDict meta = load_state_dict_file(rd + "/checkpoint.h5", "meta");
  EXPECT_EQ(meta.at("epoch").data_i64()[0], 1);
  EXPECT_EQ(meta.at("batch").data_i64()[0], 0);
  EXPECT_TRUE(all_finite(load_state_dict_file(rd + "/checkpoint.h5", "model")));
  // eval_halo reads the kept weights and gives finite metrics on the clean images.
  r = run_cmd(app("eval_halo") + " --device cpu --weights " + rd + "/best.h5 --data " + data_);
  ASSERT_EQ(r.code, 0) << r.output;
  const double mse = number_after(r.output, "MSE ");
  EXPECT_TRUE(std::isfinite(mse) && mse > 0) << r.output;
}

// NaN in the very first batch: nothing to keep, and the message must not claim otherwise.
TEST_F(TrainHaloCli, NanLossInTheFirstEpochSaysThereAreNoBestWeights) {
  TempDir dir("halo_nan1");
  auto clean = data::open_dataset(data_);
  const std::string poisoned = dir / "poisoned.h5";
  write_with_nan_pixel(
      *clean, poisoned, [](std::size_t) { return true; }, 40);  // every image
  const std::string rd = dir / "run";
  CmdResult r =
      run_cmd(train_halo("--data " + poisoned + " --run-dir " + rd + " --epochs 2 --batch-size 4"));
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "the training loss became nan at epoch 1, batch 1")) << r.output;
  EXPECT_TRUE(contains(r.output, "no best weights to keep")) << r.output;
  EXPECT_FALSE(fs::exists(rd + "/best.h5"));
  EXPECT_FALSE(fs::exists(rd + "/checkpoint.h5"));
}

// --lr sets the peak of the default recipe's schedule (linear warm-up over the first epoch, cosine
// decay to lr/100 at the last); metrics.csv records the rate of each epoch's last step.
TEST_F(TrainHaloCli, LrSetsThePeakOfTheDefaultSchedule) {
  TempDir dir("halo_lr");
  const std::string rd = dir / "run";
  // 16 training images in batches of 4, cut to 2 steps per epoch: the last step of epoch e is at
  // t = e + 1/2.
  CmdResult r = run_cmd(train_halo("--data " + data_ + " --run-dir " + rd +
                                   " --epochs 3 --batch-size 4 --max-batches 2 --lr 2e-3"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "recipe default (lr 2.0e-03, batch 4, <= 3 epochs, patience 5)"))
      << r.output;
  const double peak = 2e-3, floor = peak / 100;
  auto cosine = [&](double t) {
    return floor + 0.5 * (peak - floor) * (1 + std::cos(M_PI * (t - 1) / 2));
  };
  const std::vector<double> want = {peak * (0.5 + 1e-3), cosine(1.5),
                                    cosine(2.5)};  // 1.002e-3, 1.01e-3, 3.1e-4
  const std::vector<double> got = read_csv(rd + "/metrics.csv").column("lr");
  EXPECT_TRUE(close_rel(got, want, 1e-6)) << "the csv keeps 7 significant digits";
}

// --recipe seed: Adam at a constant 1e-6 (no warm-up: the first step already has it), batch 64.
// --weight-decay: decoupled (AdamW) decay, w <- w (1 - lr wd) before the Adam step, so after one
// step the weights of a run with decay differ from those without by exactly -lr wd w0.
TEST_F(TrainHaloCli, SeedRecipeAndWeightDecay) {
  TempDir dir("halo_wd");
  const std::string a = dir / "plain", b = dir / "decay";
  const std::string common = "--data " + data_ + " --recipe seed --epochs 1 --seed 0 ";
  CmdResult r = run_cmd(train_halo(common + "--run-dir " + a));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "recipe seed (lr 1.0e-06, batch 64, <= 1 epochs, patience 5)"))
      << r.output;
  EXPECT_EQ(read_csv(a + "/metrics.csv").column("lr"), std::vector<double>{1e-6});
  r = run_cmd(train_halo(common + "--run-dir " + b + " --weight-decay 10000"));
  ASSERT_EQ(r.code, 0) << r.output;

  nn::manual_seed(0);  // train_halo's initial weights for --seed 0
  auto model = models::make_model("resnet18");
  const StateDict wa = load_state_dict_file(a + "/best.h5"),
                  wb = load_state_dict_file(b + "/best.h5");
  const double shrink = 1e-6 * 10000;  // lr * wd
  for (const auto& [key, p] : model->named_parameters()) {
    const std::vector<float> va = values(wa, key), vb = values(wb, key), v0 = p.to_vector();
    std::vector<double> diff(va.size()), want(va.size());
    for (std::size_t i = 0; i < va.size(); ++i) {
      diff[i] = double(vb[i]) - double(va[i]);
      want[i] = -shrink * double(v0[i]);
    }
    // Rounding: |w| ~ 1 at most, float32 steps of 6e-8 against a difference of 1e-2 |w|.
    if (std::any_of(v0.begin(), v0.end(), [](float v) { return v != 0; })) {
      EXPECT_TRUE(close_rel(diff, want, 1e-4, key));
    }
  }
  // Buffers do not decay: the running statistics of the one forward pass are the same.
  EXPECT_EQ(values(wa, "bn1.running_mean"), values(wb, "bn1.running_mean"));
}

// --patience P: the run stops after P epochs without a lower validation MSE. Here the validation
// MSE cannot change: the head starts at zero and the rate is 1e-30, so every prediction is the
// label mean, and only the first epoch counts as an improvement.
TEST_F(TrainHaloCli, PatienceStopsAfterThatManyEpochsWithoutImprovement) {
  TempDir dir("halo_patience");
  const std::string init = dir / "zero_head.h5";
  {
    nn::manual_seed(0);
    auto model = models::make_model("resnet18");
    StateDict sd = model->state_dict();
    for (const char* k : {"fc.weight", "fc.bias"}) {
      Tensor t = sd.at(k);  // shares the storage
      t.fill_(0.f);
    }
    save_state_dict(sd, init);
  }
  for (int patience : {1, 3}) {
    SCOPED_TRACE("patience " + std::to_string(patience));
    const std::string rd = dir / ("p" + std::to_string(patience));
    CmdResult r = run_cmd(train_halo("--data " + data_ + " --run-dir " + rd + " --init " + init +
                                     " --recipe seed --lr 1e-30 --epochs 10 --patience " +
                                     std::to_string(patience)));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "early stop after " + std::to_string(patience + 1) + " epochs"))
        << r.output;
    EXPECT_TRUE(contains(r.output, "at epoch 1")) << r.output;
    const Csv csv = read_csv(rd + "/metrics.csv");
    ASSERT_EQ(csv.rows.size(), std::size_t(patience + 1));
    for (std::size_t e = 1; e < csv.rows.size(); ++e)
      EXPECT_EQ(csv.num(e, "val_mse"), csv.num(0, "val_mse"));
  }
}

// --norm: recorded in best.h5 (eval_halo reads it from there) and used for the run's own test
// predictions, which match the kept weights applied here to standardised, not log1p, images.
TEST_F(TrainHaloCli, NormIsUsedAndRecorded) {
  TempDir dir("halo_norm");
  const std::string rd = dir / "run";
  CmdResult r =
      run_cmd(train_halo("--data " + data_ + " --run-dir " + rd +
                         " --epochs 1 --batch-size 4 --max-batches 1 --norm standardize"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(attribute(rd + "/best.h5", "halo_image_norm"), "standardize");
  const Csv pred = read_csv(rd + "/test_predictions.csv");
  ASSERT_FALSE(pred.rows.empty());
  std::vector<std::size_t> idx;
  for (const std::string& n : pred.text_column("name")) idx.push_back(std::stoul(n));
  auto model = models::make_model("resnet18");
  load_module(*model, rd + "/best.h5");
  const double mean = std::stod(attribute(rd + "/best.h5", "halo_label_mean"));
  const double sd = std::stod(attribute(rd + "/best.h5", "halo_label_std"));
  auto ds = data::open_dataset(data_);
  const std::vector<double> got = pred.column("prediction");
  EXPECT_TRUE(
      close_rel(got, predictions(*model, *ds, idx, data::ImageNorm::Standardize, mean, sd), 1e-5));
  EXPECT_FALSE(close_rel(
      got, predictions(*model, *ds, idx, data::ImageNorm::Log1pStandardize, mean, sd), 1e-3))
      << "the log1p predictions are as close: the test cannot tell the norms apart";

  r = run_cmd(train_halo("--data " + data_ + " --run-dir " + (dir / "bad") + " --norm log2"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "log2")) << r.output;
  EXPECT_TRUE(contains(r.output, "log1p-standardize")) << r.output;  // says what is accepted
}

// --train-list/--val-list/--test-list choose the split: the sizes, the training labels the scaling
// is fitted on, the validation set the mean baseline is computed on, the test images predicted.
TEST_F(TrainHaloCli, ListFilesChooseTheSplit) {
  TempDir dir("halo_lists");
  auto ds = data::open_dataset(data_);
  std::ofstream(dir / "train.txt") << "# training images\n0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n";
  std::ofstream(dir / "val.txt") << "10\n11\n12\n";
  std::ofstream(dir / "test.txt") << "13\n14\n";
  const std::string lists = " --train-list " + (dir / "train.txt") + " --val-list " +
                            (dir / "val.txt") + " --test-list " + (dir / "test.txt");
  const std::string rd = dir / "run";
  CmdResult r = run_cmd(train_halo("--data " + data_ + " --run-dir " + rd +
                                   " --epochs 1 --batch-size 4 --max-batches 1" + lists));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "10 train / 3 val / 2 test images")) << r.output;
  double mean = 0;
  for (std::size_t i = 0; i < 10; ++i) mean += ds->label(i) / 10;
  EXPECT_NEAR(std::stod(attribute(rd + "/best.h5", "halo_label_mean")), mean, 1e-12);
  double base = 0;
  for (std::size_t i : {10, 11, 12}) base += (ds->label(i) - mean) * (ds->label(i) - mean) / 3;
  const double printed = number_after(r.output, "predicting the mean gives validation MSE ");
  EXPECT_NEAR(printed, base, 1e-3 * base) << r.output;  // printed with 5 significant digits
  EXPECT_EQ(read_csv(rd + "/test_predictions.csv").text_column("name"),
            (std::vector<std::string>{"13", "14"}));

  // A name that is not in the data: refused, naming the list file and the line.
  std::ofstream(dir / "bad.txt") << "0\n1\n99\n";
  r = run_cmd(train_halo("--data " + data_ + " --run-dir " + (dir / "bad") + " --train-list " +
                         (dir / "bad.txt") + " --val-list " + (dir / "val.txt")));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, (dir / "bad.txt") + ":3: index 99 out of range")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "bad/checkpoint.h5"));
}

// Without --data, as scripts/run.sh calls it: --sim-count/--sim-size images are simulated once into
// the cache (./cache by default) and reused; the log has no carriage-return progress bars; a
// corrupt cache file is named, not silently re-made.
TEST_F(TrainHaloCli, SimulatedDataIsCachedOnceAndReused) {
  TempDir dir("halo_cache");
  const std::string cd = "cd " + dir.path.string() + " && ";
  const std::string args =
      " --sim-count 20 --sim-size 32 --epochs 1 --batch-size 4 --max-batches 1";
  const std::string exe = app_path("train_halo") + " --device cpu --no-tta --threads 1";
  CmdResult r =
      run_cmd(cd + exe + args + " --run-dir r1");  // not --quiet: its output goes to a pipe
  ASSERT_EQ(r.code, 0) << r.output;
  const fs::path cached = dir.path / "cache" / "model1_20x32_seed20260101.h5";
  EXPECT_TRUE(contains(
      r.output, "simulating 20 model1 images of 32x32 into cache/model1_20x32_seed20260101.h5"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "16 train / 2 val / 2 test images of 32x32")) << r.output;
  EXPECT_FALSE(contains(r.output, "\r")) << "carriage returns in a log";
  EXPECT_TRUE(contains(r.output, "simulated 20 model1 images in "))
      << r.output;  // one line instead
  ASSERT_TRUE(fs::exists(cached));
  auto ds = data::open_dataset(cached.string());
  EXPECT_EQ(ds->size(), 20u);
  EXPECT_EQ(ds->height(), 32);
  const auto written = fs::last_write_time(cached);

  r = run_cmd(cd + exe + " --quiet" + args + " --run-dir r2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "using cached simulated data cache/model1_20x32_seed20260101.h5"))
      << r.output;
  EXPECT_FALSE(contains(r.output, "simulating")) << r.output;
  EXPECT_EQ(fs::last_write_time(cached), written);
  // The two runs trained on the same images: the same first epoch.
  EXPECT_EQ(read_csv(dir / "r1/metrics.csv").num(0, "train_mse"),
            read_csv(dir / "r2/metrics.csv").num(0, "train_mse"));

  // --quiet while simulating: no progress at all. (16x16 images are refused after the simulation,
  // which is all this needs.)
  r = run_cmd(cd + exe + " --quiet --sim-count 20 --sim-size 16 --cache c2 --run-dir r3");
  EXPECT_TRUE(fs::exists(dir.path / "c2" / "model1_20x16_seed20260101.h5")) << r.output;
  EXPECT_FALSE(contains(r.output, "\r")) << r.output;
  EXPECT_FALSE(contains(r.output, "simulating model1:")) << r.output;
  EXPECT_FALSE(contains(r.output, "simulated 20")) << r.output;

  // A cache file that is not a dataset: named, with what to do.
  std::ofstream(dir.path / "cache" / "model1_24x32_seed20260101.h5") << "garbage";
  r = run_cmd(cd + exe + " --sim-count 24 --sim-size 32 --run-dir r4");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "cache/model1_24x32_seed20260101.h5 is unreadable")) << r.output;
  EXPECT_TRUE(contains(r.output, "delete it")) << r.output;
  EXPECT_EQ(slurp(dir / "cache/model1_24x32_seed20260101.h5"), "garbage");  // not overwritten
}

// The quick CPU run behind scripts/run.sh (neither --data nor --sim-count): 3,000 model1 images of
// 150x150 cut to their central 96x96 (ring and subhalos kept), 6 epochs in batches of 16. The
// cache is filled beforehand with 20 images under the quick run's file name, so the test checks
// the choices without simulating 3,000 images. --crop 0 keeps the whole image; --sim-count (an
// experiment) keeps the recipe's epochs and batch and the whole image.
TEST_F(TrainHaloCli, QuickDefaultCropsTheSimulatedImages) {
  TempDir dir("halo_quick");
  fs::create_directories(dir.path / "cache");
  apps::write_simulated_hdf5((dir.path / "cache/model1_3000x150_seed20260101.h5").string(), "model1", 20, 150, 20260101,
                             1, /*progress=*/false);
  const std::string cd = "cd " + dir.path.string() + " && ";
  const std::string exe = train_halo(" --max-batches 1");
  CmdResult r = run_cmd(cd + exe + " --run-dir r1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "using cached simulated data cache/model1_3000x150_seed20260101.h5")) << r.output;
  EXPECT_TRUE(contains(r.output, "centre crop 96x96")) << r.output;
  EXPECT_TRUE(contains(r.output, "16 train / 2 val / 2 test images of 96x96")) << r.output;
  EXPECT_TRUE(contains(r.output, "batch 16, <= 6 epochs")) << r.output;
  EXPECT_EQ(read_csv(dir.path / "r1/metrics.csv").rows.size(), 6u);
  EXPECT_EQ(attribute((dir.path / "r1/best.h5").string(), "halo_image_crop"), "96");

  r = run_cmd(cd + exe + " --epochs 1 --crop 0 --run-dir r2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "images of 150x150;")) << r.output;
  EXPECT_TRUE(contains(r.output, "batch 16, <= 1 epochs")) << r.output;
  EXPECT_EQ(attribute((dir.path / "r2/best.h5").string(), "halo_image_crop"), "0");

  r = run_cmd(cd + exe + " --sim-count 20 --epochs 1 --run-dir r3");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "simulating 20 model1 images of 150x150")) << r.output;
  EXPECT_TRUE(contains(r.output, "images of 150x150;")) << r.output;
  EXPECT_TRUE(contains(r.output, "batch 64, <= 1 epochs")) << r.output;

  // A crop the images cannot give: refused, naming both sizes, before a run folder is made.
  r = run_cmd(cd + exe + " --crop 97 --run-dir r4");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "centre crop 97x97 of 150x150 images")) << r.output;
  EXPECT_FALSE(fs::exists(dir.path / "r4"));
}
