// The training run behind train_halo: recipes, early stopping, metrics, an end-to-end run that beats
// predicting the mean, and resume after an interruption giving exactly the uninterrupted result.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <fstream>
#include <random>

#include "apps/support/trainer.h"
#include "data/synthetic.h"
#include "engine/serialize.h"

using namespace halo;
namespace fs = std::filesystem;

namespace {
std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("halo_trainer_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  return p.string();
}

// Blob images whose width is the label (learnable), as a memory dataset.
std::shared_ptr<data::Dataset> blob_dataset(int n, int size) {
  data::BlobBatch b = data::make_blob_batch(n, size, 11, 0);
  std::vector<double> labels;
  for (float l : b.labels) labels.push_back(0.05 + 0.01 * l);  // f_sub-like values
  return data::make_memory_dataset(size, size, b.images, labels);
}

train::Config small_config(const std::string& dir) {
  train::Config c;
  c.model = "resnet18";
  c.run_dir = dir;
  c.recipe = train::make_recipe("default");
  c.recipe.epochs = 4;
  c.recipe.batch_size = 16;
  c.recipe.lr = 2e-3;
  c.norm = data::ImageNorm::None;
  c.tta = false;
  c.progress = false;
  c.seed = 3;
  return c;
}
}  // namespace

TEST(Recipe, DefaultAndSeed) {
  train::Recipe d = train::make_recipe("default");
  EXPECT_EQ(d.patience, 5);
  train::Recipe s = train::make_recipe("seed");
  EXPECT_DOUBLE_EQ(s.lr, 1e-6);
  EXPECT_EQ(s.batch_size, 64);
  EXPECT_EQ(s.patience, 5);
  EXPECT_DOUBLE_EQ(train::learning_rate(s, 0.0), 1e-6);
  EXPECT_DOUBLE_EQ(train::learning_rate(s, 37.5), 1e-6);
  EXPECT_THROW(train::make_recipe("fast"), std::invalid_argument);
}

TEST(Recipe, WarmupThenCosine) {
  train::Recipe r = train::make_recipe("default");
  r.lr = 1e-3;
  r.epochs = 11;
  EXPECT_LT(train::learning_rate(r, 0.0), 1e-5);                 // warm-up starts near zero
  EXPECT_NEAR(train::learning_rate(r, 0.5), 0.5e-3, 1e-5);       // linear
  EXPECT_NEAR(train::learning_rate(r, 1.0), 1e-3, 1e-12);        // peak after one epoch
  EXPECT_NEAR(train::learning_rate(r, 6.0), 0.5 * (1e-3 + 1e-5), 1e-9);  // half-way down
  EXPECT_NEAR(train::learning_rate(r, 11.0), 1e-5, 1e-12);       // floor lr/100 at the end
  for (double t = 1.0; t < 11; t += 0.25) EXPECT_GE(train::learning_rate(r, t), train::learning_rate(r, t + 0.25));
}

TEST(EarlyStopping, PatienceCountsEpochsWithoutImprovement) {
  train::EarlyStopping es(2);
  EXPECT_TRUE(es.update(0, 1.0));
  EXPECT_FALSE(es.update(1, 1.0));  // equal is not better
  EXPECT_FALSE(es.should_stop());
  EXPECT_TRUE(es.update(2, 0.5));   // improvement resets the count
  EXPECT_EQ(es.bad_epochs(), 0);
  EXPECT_FALSE(es.update(3, 0.7));
  EXPECT_FALSE(es.should_stop());
  EXPECT_FALSE(es.update(4, NAN));  // NaN never counts as better
  EXPECT_TRUE(es.should_stop());
  EXPECT_EQ(es.best_epoch(), 2);
  EXPECT_DOUBLE_EQ(es.best(), 0.5);
}

TEST(Metrics, MseNrmseR2) {
  const std::vector<double> t = {1, 2, 3, 4}, p = {1, 2, 3, 5};
  train::Metrics m = train::compute_metrics(t, p);
  EXPECT_DOUBLE_EQ(m.mse, 0.25);
  EXPECT_DOUBLE_EQ(m.rmse, 0.5);
  EXPECT_DOUBLE_EQ(m.nrmse, 0.5 / 2.5);
  EXPECT_DOUBLE_EQ(m.var_label, 1.25);
  EXPECT_DOUBLE_EQ(m.r2, 1 - 0.25 / 1.25);
  EXPECT_DOUBLE_EQ(train::compute_metrics(t, std::vector<double>(4, 2.5)).r2, 0.0);
  EXPECT_THROW(train::compute_metrics(t, {1, 2}), std::invalid_argument);
}

// ConvNeXt-pico (LayerNorm: its eval-mode outputs follow training at once, unlike batch norm's
// running statistics) learns the blob width in 3 short epochs; the best weights must beat predicting
// the training mean by far (validation MSE 0.03-0.3 of the mean's over seeds), on the validation and
// the test split.
TEST(TrainRun, BeatsPredictingTheMeanAndRunFolderIsComplete) {
  auto ds = blob_dataset(64, 32);
  const data::Split split = data::make_split(ds->size(), 1);
  const std::string dir = temp_dir("e2e");
  train::Config c = small_config(dir);
  c.model = "convnext_pico";
  c.recipe.epochs = 3;
  c.recipe.batch_size = 8;
  train::Result r = train::run(c, ds, split);
  ASSERT_EQ(r.history.size(), 3u);
  // Predicting the mean of the training labels, computed here.
  double train_mean = 0;
  for (std::size_t i : split.train) train_mean += ds->label(i) / double(split.train.size());
  auto mean_mse = [&](const std::vector<std::size_t>& idx) {
    double m = 0;
    for (std::size_t i : idx) m += (ds->label(i) - train_mean) * (ds->label(i) - train_mean) / double(idx.size());
    return m;
  };
  EXPECT_LT(r.best_val_mse, 0.5 * mean_mse(split.val)) << "validation R^2 below 0.5";
  EXPECT_DOUBLE_EQ(r.best_val_mse, r.history.back().val_mse);
  ASSERT_EQ(r.test.n, split.test.size());
  EXPECT_LT(r.test.mse, mean_mse(split.test)) << "the best weights do not beat the mean on the test split";
  EXPECT_NEAR(r.predict_mean.mse, mean_mse(split.test), 1e-12);
  for (const char* f : {"metrics.csv", "best.h5", "checkpoint.h5", "model.json", "mse.png", "nrmse.png",
                        "scatter_test.png", "test_metrics.json", "test_predictions.csv"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  std::ifstream csv(fs::path(dir) / "metrics.csv");
  int lines = 0;
  for (std::string l; std::getline(csv, l);) ++lines;
  EXPECT_EQ(lines, 4);  // header + 3 epochs
  // best.h5 is a plain state dict in timm's names, with the label scaling as attributes.
  StateDict sd = load_state_dict_file((fs::path(dir) / "best.h5").string());
  EXPECT_TRUE(sd.contains("stem.0.weight"));
  EXPECT_TRUE(sd.contains("head.fc.bias"));
  bool has_mean = false;
  for (auto& [k, v] : read_h5_attributes((fs::path(dir) / "best.h5").string())) has_mean |= k == "halo_label_mean";
  EXPECT_TRUE(has_mean);
  fs::remove_all(dir);
}

TEST(TrainRun, EarlyStoppingEndsTheRun) {
  // Labels that are pure noise: nothing to learn, so the validation MSE soon stops improving.
  data::BlobBatch b = data::make_blob_batch(48, 32, 12, 0);
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(0.01, 0.1);
  std::vector<double> labels(48);
  for (double& l : labels) l = u(rng);
  auto ds = data::make_memory_dataset(32, 32, b.images, labels);
  const data::Split split = data::make_split(ds->size(), 2);
  const std::string dir = temp_dir("early");
  train::Config c = small_config(dir);
  c.recipe.epochs = 8;
  c.recipe.lr = 1e-3;
  c.recipe.warmup_epochs = 0;
  c.recipe.cosine = false;
  c.recipe.patience = 2;
  train::Result r = train::run(c, ds, split);
  ASSERT_EQ(r.outcome, train::Outcome::early_stopped);
  // It stops exactly `patience` epochs after the best one.
  EXPECT_EQ(int(r.history.size()), r.best_epoch + c.recipe.patience);
  EXPECT_LT(r.history.size(), 8u);
  fs::remove_all(dir);
}

TEST(TrainRun, ResumeAfterInterruptionEqualsUninterruptedRun) {
  auto ds = blob_dataset(96, 32);
  const data::Split split = data::make_split(ds->size(), 3);
  const std::string a = temp_dir("straight"), b = temp_dir("resumed");
  train::Config ca = small_config(a);
  ca.recipe.epochs = 3;
  train::Result ra = train::run(ca, ds, split);

  train::Config cb = small_config(b);
  cb.recipe.epochs = 3;
  cb.interrupt_after_batches = 6;  // mid-way through the second epoch (4 batches per epoch)
  train::Result rb1 = train::run(cb, ds, split);
  ASSERT_EQ(rb1.outcome, train::Outcome::interrupted);
  EXPECT_EQ(rb1.history.size(), 1u);
  cb.interrupt_after_batches = 0;
  cb.resume = true;
  train::Result rb = train::run(cb, ds, split);

  ASSERT_EQ(ra.history.size(), rb.history.size());
  for (std::size_t e = 0; e < ra.history.size(); ++e) {
    EXPECT_EQ(ra.history[e].train_mse, rb.history[e].train_mse) << "epoch " << e + 1;
    EXPECT_EQ(ra.history[e].val_mse, rb.history[e].val_mse) << "epoch " << e + 1;
  }
  StateDict wa = load_state_dict_file((fs::path(a) / "best.h5").string());
  StateDict wb = load_state_dict_file((fs::path(b) / "best.h5").string());
  for (const auto& [k, t] : wa.items()) {
    if (t.dtype() != DType::f32) continue;
    EXPECT_EQ(t.to_vector(), wb.at(k).to_vector()) << k;
  }
  EXPECT_EQ(ra.test.mse, rb.test.mse);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(TrainRun, BadInputIsRefusedWithAClearMessage) {
  const std::string dir = temp_dir("bad");
  train::Config c = small_config(dir);
  auto tiny = blob_dataset(40, 16);
  const data::Split split = data::make_split(tiny->size(), 1);
  try {
    train::run(c, tiny, split);
    FAIL() << "16x16 images must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("at least 32x32"), std::string::npos) << e.what();
  }
  auto ds = blob_dataset(40, 32);
  c.resume = true;
  EXPECT_THROW(train::run(c, ds, data::make_split(ds->size(), 1)), std::runtime_error);  // nothing to resume
  c.resume = false;
  c.init = (fs::path(dir) / "missing.h5").string();
  EXPECT_THROW(train::run(c, ds, data::make_split(ds->size(), 1)), std::runtime_error);
  fs::remove_all(dir);
}

// --crop: the run trains on the central crop (its model.json and weights say the crop's size and
// the crop), so it equals a run on images cropped here by hand; a resume with another crop is
// refused before any weight is loaded.
TEST(TrainRun, CropTrainsOnTheCentralPixelsAndIsRecorded) {
  auto full = blob_dataset(48, 36);
  // The central 32x32 of every image, cut out here.
  std::vector<float> cut;
  std::vector<double> labels;
  std::vector<float> img(full->pixels());
  for (std::size_t i = 0; i < full->size(); ++i) {
    full->read_image(i, img.data());
    for (int r = 2; r < 34; ++r) cut.insert(cut.end(), img.begin() + r * 36 + 2, img.begin() + r * 36 + 34);
    labels.push_back(full->label(i));
  }
  auto by_hand = data::make_memory_dataset(32, 32, cut, labels);
  const data::Split split = data::make_split(full->size(), 5);
  const std::string a = temp_dir("crop"), b = temp_dir("by_hand");
  train::Config ca = small_config(a);
  ca.recipe.epochs = 2;
  ca.crop = 32;
  const train::Result ra = train::run(ca, full, split);
  train::Config cb = small_config(b);
  cb.recipe.epochs = 2;
  const train::Result rb = train::run(cb, by_hand, split);
  ASSERT_EQ(ra.history.size(), 2u);
  ASSERT_EQ(rb.history.size(), 2u);
  for (std::size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(ra.history[e].train_mse, rb.history[e].train_mse) << "epoch " << e + 1;
    EXPECT_EQ(ra.history[e].val_mse, rb.history[e].val_mse) << "epoch " << e + 1;
  }
  EXPECT_TRUE(std::isfinite(ra.test.mse));
  EXPECT_EQ(ra.test.mse, rb.test.mse);

  std::map<std::string, std::string> attrs;
  for (const auto& [k, v] : read_h5_attributes((fs::path(a) / "best.h5").string())) attrs[k] = v;
  EXPECT_EQ(attrs["halo_image_size"], "32x32");
  EXPECT_EQ(attrs["halo_image_crop"], "32");
  std::ifstream json(fs::path(a) / "test_metrics.json");
  const std::string text((std::istreambuf_iterator<char>(json)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"crop\": 32"), std::string::npos) << text;

  // Resuming with another crop (here none) is refused, saying what differs.
  ca.resume = true;
  ca.crop = 0;
  try {
    train::run(ca, full, split);
    FAIL() << "a resume with another crop must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--crop"), std::string::npos) << e.what();
  }
  // A crop larger than the images, or off centre by half a pixel, is refused.
  train::Config cc = small_config(temp_dir("bad_crop"));
  for (int crop : {38, 33}) {
    cc.crop = crop;
    EXPECT_THROW(train::run(cc, full, split), std::invalid_argument) << crop;
  }
  fs::remove_all(a);
  fs::remove_all(b);
  fs::remove_all(cc.run_dir);
}
