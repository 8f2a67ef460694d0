// eval_halo as a user runs it, against numbers computed here: its predictions are the model's
// outputs (one forward per image, or the mean over the 8 symmetries of the square with --tta, the
// symmetries written out here independently of data/); MSE, RMSE, NRMSE, R^2 and MAE follow from
// them by their definitions; --indices, --out and --predict each do what the README says.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/support/simulated_data.h"
#include "data/deeplense.h"
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

constexpr double kLabelMean = 0.04, kLabelStd = 0.02;

// The 8 symmetries of an n x n square image: a left-right mirror or not, then 0-3 quarter turns.
std::vector<std::vector<float>> eight_views(const std::vector<float>& img, int n) {
  auto mirror = [n](const std::vector<float>& a) {
    std::vector<float> b(a.size());
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) b[i * n + j] = a[i * n + (n - 1 - j)];
    return b;
  };
  auto turn = [n](const std::vector<float>& a) {  // a quarter turn
    std::vector<float> b(a.size());
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) b[i * n + j] = a[j * n + (n - 1 - i)];
    return b;
  };
  std::vector<std::vector<float>> out;
  for (int m = 0; m < 2; ++m) {
    std::vector<float> v = m ? mirror(img) : img;
    for (int r = 0; r < 4; ++r, v = turn(v)) out.push_back(v);
  }
  return out;
}

struct Metrics {
  double mse, rmse, nrmse, r2, mae, var;
};
// The definitions (README, eval_halo): NRMSE = RMSE / mean label, R^2 = 1 - MSE / var(labels).
Metrics metrics(const std::vector<double>& y, const std::vector<double>& p) {
  const double n = double(y.size());
  double se = 0, ae = 0, mean = 0, var = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    se += (p[i] - y[i]) * (p[i] - y[i]);
    ae += std::abs(p[i] - y[i]);
    mean += y[i] / n;
  }
  for (double v : y) var += (v - mean) * (v - mean) / n;
  const double mse = se / n;
  return {mse, std::sqrt(mse), std::sqrt(mse) / mean, 1 - mse / var, ae / n, var};
}

class EvalHalo : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("halo_eval");
    data_ = *dir_ / "data.h5";
    apps::write_simulated_hdf5(data_, "model1", 12, 32, 5, 2, /*progress=*/false);
    // Weights as train_halo leaves them: a resnet18 with its own random weights and non-trivial
    // norms and biases (so every layer matters), and the attributes eval_halo reads.
    nn::manual_seed(3);
    auto model = models::make_model("resnet18");
    models::perturb_norms_and_biases(*model);
    weights_ = *dir_ / "best.h5";
    save_state_dict(model->state_dict(), weights_,
                    {{"halo_model", "resnet18"},
                     {"halo_label_mean", "0.04"},
                     {"halo_label_std", "0.02"},
                     {"halo_image_norm", "log1p-standardize"},
                     {"halo_image_size", "32x32"}});
    // The reference predictions: each image normalised, its 8 views through the model in eval mode.
    auto ds = data::open_dataset(data_);
    model->eval();
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < ds->size(); ++i) {
      std::vector<float> img(ds->pixels());
      ds->read_image(i, img.data());
      data::normalize_image(img.data(), img.size(), data::ImageNorm::Log1pStandardize);
      std::vector<float> batch;
      for (const auto& v : eight_views(img, 32)) batch.insert(batch.end(), v.begin(), v.end());
      const std::vector<float> z = (*model)(Tensor::from_vector(batch, {8, 1, 32, 32})).to_vector();
      plain_.push_back(double(z[0]) * kLabelStd + kLabelMean);  // view 0 is the image itself
      double mean = 0;
      for (float v : z) mean += (double(v) * kLabelStd + kLabelMean) / 8;
      tta_.push_back(mean);
      labels_.push_back(ds->label(i));
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string eval(const std::string& args) {
    return app("eval_halo") + " --device cpu --weights " + weights_ + " " + args;
  }
  static inline TempDir* dir_ = nullptr;
  static inline std::string data_, weights_;
  static inline std::vector<double> plain_, tta_, labels_;
};

}  // namespace

TEST_F(EvalHalo, MetricsAndOutputFilesMatchTheirDefinitions) {
  TempDir out("halo_eval_out");
  const std::string o = out / "nested/results";  // --out creates the folders
  CmdResult r = run_cmd(eval("--data " + data_ + " --out " + o));
  ASSERT_EQ(r.code, 0) << r.output;

  // predictions.csv: every image, in order, with its label and the model's prediction.
  const Csv csv = read_csv(o + "/predictions.csv");
  ASSERT_EQ(csv.rows.size(), labels_.size());
  for (std::size_t i = 0; i < csv.rows.size(); ++i) EXPECT_EQ(csv.rows[i][0], std::to_string(i));
  EXPECT_TRUE(close_rel(csv.column("label"), labels_, 1e-8, "labels"));
  EXPECT_TRUE(close_rel(csv.column("prediction"), plain_, 1e-5, "predictions"));

  // metrics.json: the definitions applied to the labels and the predictions computed here.
  const Metrics m = metrics(labels_, plain_);
  const nlohmann::json j = nlohmann::json::parse(slurp(o + "/metrics.json"));
  EXPECT_EQ(j.at("n").get<int>(), 12);
  EXPECT_EQ(j.at("tta").get<bool>(), false);
  EXPECT_EQ(j.at("model").get<std::string>(), "resnet18");
  // Predictions agree to ~1e-6 relative; the errors are O(prediction), so 1e-4 bounds the metrics.
  const std::vector<double> got = {
      j.at("mse").get<double>(),   j.at("rmse").get<double>(),
      j.at("nrmse").get<double>(), j.at("r2").get<double>(),
      j.at("mae").get<double>(),   j.at("predict_the_mean_mse").get<double>()};
  EXPECT_TRUE(close_rel(got, std::vector<double>{m.mse, m.rmse, m.nrmse, m.r2, m.mae, m.var}, 1e-4,
                        "metrics.json"));
  // ... and exactly (to the csv's 9 digits) from predictions.csv.
  const Metrics mc = metrics(csv.column("label"), csv.column("prediction"));
  EXPECT_TRUE(
      close_rel(got, std::vector<double>{mc.mse, mc.rmse, mc.nrmse, mc.r2, mc.mae, mc.var}, 1e-6));
  // The printed line, to its printed precision.
  EXPECT_NEAR(number_after(r.output, "MSE "), m.mse, 1e-3 * m.mse) << r.output;
  EXPECT_NEAR(number_after(r.output, "NRMSE "), m.nrmse, 1e-4 + 1e-4 * std::abs(m.nrmse))
      << r.output;
  EXPECT_NEAR(number_after(r.output, "R2 "), m.r2, 1e-4 + 1e-4 * std::abs(m.r2)) << r.output;
  EXPECT_NEAR(number_after(r.output, "MAE "), m.mae, 1e-3 * m.mae) << r.output;

  // scatter.png: a PNG file.
  const std::string png = slurp(o + "/scatter.png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_F(EvalHalo, IndicesEvaluateOnlyTheListedImagesInTheirOrder) {
  TempDir out("halo_eval_idx");
  std::ofstream(out / "list.txt") << "7\n# a comment\n2\n5\n";
  CmdResult r = run_cmd(
      eval("--data " + data_ + " --indices " + (out / "list.txt") + " --out " + out.path.string()));
  ASSERT_EQ(r.code, 0) << r.output;
  const Csv csv = read_csv(out / "predictions.csv");
  EXPECT_EQ(csv.text_column("name"), (std::vector<std::string>{"7", "2", "5"}));
  EXPECT_TRUE(close_rel(csv.column("prediction"),
                        std::vector<double>{plain_[7], plain_[2], plain_[5]}, 1e-5));
  const Metrics m =
      metrics({labels_[7], labels_[2], labels_[5]}, {plain_[7], plain_[2], plain_[5]});
  const nlohmann::json j = nlohmann::json::parse(slurp(out / "metrics.json"));
  EXPECT_EQ(j.at("n").get<int>(), 3);
  EXPECT_TRUE(close_rel(std::vector<double>{j.at("mse").get<double>(), j.at("mae").get<double>()},
                        std::vector<double>{m.mse, m.mae}, 1e-4));

  // An index beyond the data: refused, naming the list and the line.
  std::ofstream(out / "bad.txt") << "1\n12\n";
  r = run_cmd(eval("--data " + data_ + " --indices " + (out / "bad.txt")));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, (out / "bad.txt") + ":2: index 12 out of range")) << r.output;
}

TEST_F(EvalHalo, TtaIsTheMeanOverTheEightSymmetries) {
  TempDir out("halo_eval_tta");
  CmdResult r = run_cmd(eval("--data " + data_ + " --tta --out " + out.path.string()));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "(8-symmetry average)")) << r.output;
  const std::vector<double> got = read_csv(out / "predictions.csv").column("prediction");
  EXPECT_TRUE(close_rel(got, tta_, 1e-5, "8-symmetry mean"));
  // The test can tell: the single-view predictions are far from the mean.
  EXPECT_FALSE(close_rel(plain_, tta_, 1e-3))
      << "the 8 views give nearly the same output; TTA is not tested";
  const nlohmann::json j = nlohmann::json::parse(slurp(out / "metrics.json"));
  EXPECT_EQ(j.at("tta").get<bool>(), true);
  EXPECT_NEAR(j.at("mse").get<double>(), metrics(labels_, tta_).mse,
              1e-4 * metrics(labels_, tta_).mse);
}

TEST_F(EvalHalo, PredictPrintsTheModelsOutputForNpyFiles) {
  TempDir out("halo_eval_npy");
  auto ds = data::open_dataset(data_);
  std::vector<std::string> files;
  for (std::size_t i : {3, 8}) {
    std::vector<float> img(ds->pixels());
    ds->read_image(i, img.data());
    std::vector<int64_t> counts(img.begin(), img.end());  // the simulator's counts are integers
    const std::string f = out / ("image_" + std::to_string(i) + ".npy");
    data::write_deeplense_file(
        f, data::NpyArray::from_raw(data::DType::Int64, {32, 32}, counts.data()), ds->label(i));
    files.push_back(f);
  }
  for (bool tta : {false, true}) {
    SCOPED_TRACE(tta ? "--tta" : "one view");
    CmdResult r =
        run_cmd(eval(std::string(tta ? "--tta " : "") + "--predict " + files[0] + " " + files[1]));
    ASSERT_EQ(r.code, 0) << r.output;
    const std::vector<double>& ref = tta ? tta_ : plain_;
    for (std::size_t k = 0; k < 2; ++k) {
      const std::size_t i = k == 0 ? 3 : 8;
      const std::vector<std::string> line = lines_with(r.output, files[k]);
      ASSERT_EQ(line.size(), 1u) << r.output;
      EXPECT_NEAR(number_after(line[0], "predicted "), ref[i], 2e-6)
          << line[0];  // printed with 6 decimals
      EXPECT_NEAR(number_after(line[0], "label "), labels_[i], 1e-6) << line[0];
    }
  }
  // Neither --data nor --predict: refused with what to give.
  CmdResult r = run_cmd(eval(""));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "give either --data")) << r.output;
}

// Weights trained with --crop: eval_halo cuts the same central block from larger images before the
// model sees them (for --data and --predict), so its predictions on 36x36 images equal those of the
// uncropped weights on the 32x32 centres written out here; --crop 0 overrides it (and is refused,
// the model having been trained on 32x32), and a crop the images cannot give is refused.
TEST_F(EvalHalo, TheCropRecordedInTheWeightsIsApplied) {
  TempDir out("halo_eval_crop");
  const std::string cropped_weights = out / "crop.h5";
  save_state_dict(load_state_dict_file(weights_), cropped_weights,
                  {{"halo_model", "resnet18"},
                   {"halo_label_mean", "0.04"},
                   {"halo_label_std", "0.02"},
                   {"halo_image_norm", "log1p-standardize"},
                   {"halo_image_size", "32x32"},
                   {"halo_image_crop", "32"}});
  const std::string big = out / "big.h5";
  apps::write_simulated_hdf5(big, "model1", 3, 36, 9, 1, /*progress=*/false);
  auto ds = data::open_dataset(big);
  std::vector<std::string> big_files, centre_files;
  for (std::size_t i = 0; i < ds->size(); ++i) {
    std::vector<float> img(ds->pixels());
    ds->read_image(i, img.data());
    std::vector<int64_t> all(img.begin(), img.end()), centre;
    for (int r = 2; r < 34; ++r) centre.insert(centre.end(), all.begin() + r * 36 + 2, all.begin() + r * 36 + 34);
    big_files.push_back(out / ("big_" + std::to_string(i) + ".npy"));
    centre_files.push_back(out / ("centre_" + std::to_string(i) + ".npy"));
    data::write_deeplense_file(big_files.back(), data::NpyArray::from_raw(data::DType::Int64, {36, 36}, all.data()),
                               ds->label(i));
    data::write_deeplense_file(centre_files.back(),
                               data::NpyArray::from_raw(data::DType::Int64, {32, 32}, centre.data()), ds->label(i));
  }
  auto predictions = [](const CmdResult& r, const std::vector<std::string>& files) {
    std::vector<double> p;
    for (const std::string& f : files) {
      const std::vector<std::string> line = lines_with(r.output, f + "  predicted");
      EXPECT_EQ(line.size(), 1u) << r.output;
      p.push_back(line.empty() ? NAN : number_after(line[0], "predicted "));
    }
    return p;
  };
  std::string files_big, files_centre;
  for (std::size_t i = 0; i < big_files.size(); ++i) {
    files_big += " " + big_files[i];
    files_centre += " " + centre_files[i];
  }
  CmdResult ref = run_cmd(eval("--predict" + files_centre));
  ASSERT_EQ(ref.code, 0) << ref.output;
  const std::string with_crop = app("eval_halo") + " --device cpu --weights " + cropped_weights;
  CmdResult got = run_cmd(with_crop + " --predict" + files_big);
  ASSERT_EQ(got.code, 0) << got.output;
  EXPECT_TRUE(close_abs(predictions(got, big_files), predictions(ref, centre_files), 0.0, "--predict"));

  // --data: the same numbers through predictions.csv (9 digits, against the 6 printed above).
  got = run_cmd(with_crop + " --data " + big + " --out " + (out / "res"));
  ASSERT_EQ(got.code, 0) << got.output;
  EXPECT_TRUE(close_abs(read_csv(out / "res/predictions.csv").column("prediction"), predictions(ref, centre_files),
                        6e-7, "--data"));
  EXPECT_EQ(nlohmann::json::parse(slurp(out / "res/metrics.json")).at("crop").get<int>(), 32);

  got = run_cmd(with_crop + " --crop 0 --data " + big);
  EXPECT_NE(got.code, 0);
  EXPECT_TRUE(contains(got.output, "has 36x36 images, but " + cropped_weights + " was trained on 32x32"))
      << got.output;
  got = run_cmd(with_crop + " --crop 33 --data " + big);
  EXPECT_NE(got.code, 0);
  EXPECT_TRUE(contains(got.output, "off centre by half a pixel")) << got.output;
}
