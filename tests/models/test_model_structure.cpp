// The three models' structure against timm: parameter counts, state-dict keys with shapes, dtypes
// and order (tests/fixtures/keys_<model>.txt, timm's own listing), multiply-accumulates at 150 and
// 64 pixels, the registry's error for an unknown name, the summary JSON, timm's initialisation,
// and the HDF5 state-dict round trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/serialize.h"
#include "model_test_util.h"
#include "models/convnext.h"
#include "models/registry.h"
#include "models/resnet.h"
#include "models/summary.h"

using namespace halo;
namespace fs = std::filesystem;

namespace {

struct Expected {
  std::string name;
  int64_t params;
  int64_t macs150, macs64;
};
const Expected kExpected[] = {
    {"resnet18", 11170753, 839265344, 141623808},
    {"resnet26", 13941953, 1094545984, 184616960},
    {"convnext_pico", 8531137, 547140736, 111030784},
};

struct KeyLine {
  std::string key, shape, dtype, kind;
};
std::vector<KeyLine> read_keys(const std::string& model) {
  const std::string path = test::fixture_path("keys_" + model + ".txt");
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open");
  std::vector<KeyLine> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    std::istringstream ss(line);
    KeyLine k;
    std::getline(ss, k.key, '\t');
    std::getline(ss, k.shape, '\t');
    std::getline(ss, k.dtype, '\t');
    std::getline(ss, k.kind, '\t');
    out.push_back(k);
  }
  return out;
}

class ModelStructure : public ::testing::TestWithParam<Expected> {
 protected:
  // Built once per name: these tests only read the model.
  nn::Module& model() const {
    static std::map<std::string, std::shared_ptr<nn::Module>> cache;
    auto& m = cache[GetParam().name];
    if (!m) m = models::make_model(GetParam().name);
    return *m;
  }
};

TEST_P(ModelStructure, ParameterCount) {
  EXPECT_EQ(model().num_parameters(), GetParam().params);
}

TEST_P(ModelStructure, StateDictKeysShapesAndOrderAreTimms) {
  const auto expected = read_keys(GetParam().name);
  const StateDict sd = model().state_dict();
  std::set<std::string> params;
  for (auto& [k, t] : model().named_parameters()) params.insert(k);
  ASSERT_EQ(sd.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& [key, t] = sd.items()[i];
    SCOPED_TRACE("key #" + std::to_string(i) + " " + expected[i].key);
    EXPECT_EQ(key, expected[i].key);
    EXPECT_EQ(to_string(t.shape()), expected[i].shape);
    EXPECT_EQ(to_string(t.dtype()), expected[i].dtype);
    EXPECT_EQ(params.count(key) ? "param" : "buffer", expected[i].kind);
  }
}

TEST_P(ModelStructure, MacsPerImageAt150And64) {
  const auto s150 = models::summarize(model(), GetParam().name, 150);
  EXPECT_EQ(s150.macs, GetParam().macs150);
  EXPECT_EQ(s150.params, GetParam().params);
  EXPECT_EQ(s150.output_shape, (Shape{1, 1}));
  const auto s64 = models::summarize(model(), GetParam().name, 64);
  EXPECT_EQ(s64.macs, GetParam().macs64);
}

INSTANTIATE_TEST_SUITE_P(Timm, ModelStructure, ::testing::ValuesIn(kExpected),
                         [](const auto& info) { return info.param.name; });

TEST(ModelRegistry, UnknownNameListsValidNames) {
  try {
    models::make_model("resnet50");
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("resnet50"), std::string::npos) << msg;
    for (const auto& n : models::model_names()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  }
}

TEST(ModelSummary, SpatialSizesAndJson) {
  auto m = models::make_model("resnet18");
  const auto s = models::summarize(*m, "resnet18", 150);
  // Odd sizes floor: 150 -> 75 (stem) -> 38 (maxpool) -> 19 -> 10 -> 5.
  std::map<std::string, Shape> shapes;
  for (const auto& l : s.layers) shapes[l.name] = l.output_shape;
  EXPECT_EQ(shapes["conv1"], (Shape{1, 64, 75, 75}));
  EXPECT_EQ(shapes["maxpool"], (Shape{1, 64, 38, 38}));
  EXPECT_EQ(shapes["layer2"], (Shape{1, 128, 19, 19}));
  EXPECT_EQ(shapes["layer3"], (Shape{1, 256, 10, 10}));
  EXPECT_EQ(shapes["layer4"], (Shape{1, 512, 5, 5}));
  EXPECT_NE(s.to_text().find("839,265,344"), std::string::npos);

  const fs::path dir = fs::temp_directory_path() / ("halo_summary_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "model.json").string();
  models::write_summary_json(s, path);
  std::ifstream f(path);
  const auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j["model"], "resnet18");
  EXPECT_EQ(j["parameters"].get<int64_t>(), 11170753);
  EXPECT_EQ(j["macs_per_image"].get<int64_t>(), 839265344);
  EXPECT_EQ(j["layers"].size(), s.layers.size());
  EXPECT_EQ(j["layers"][0]["name"], "conv1");
  fs::remove_all(dir);

  auto c = models::make_model("convnext_pico");
  const auto sc = models::summarize(*c, "convnext_pico", 150);
  std::map<std::string, Shape> cs;
  for (const auto& l : sc.layers) cs[l.name] = l.output_shape;
  // The 4x4 patch stem and the unpadded 2x2/s2 downsamples drop odd edges: 37 -> 18 -> 9 -> 4.
  EXPECT_EQ(cs["stem"], (Shape{1, 64, 37, 37}));
  EXPECT_EQ(cs["stages.1"], (Shape{1, 128, 18, 18}));
  EXPECT_EQ(cs["stages.2"], (Shape{1, 256, 9, 9}));
  EXPECT_EQ(cs["stages.3"], (Shape{1, 512, 4, 4}));
  EXPECT_EQ(cs["head.global_pool"], (Shape{1, 512, 1, 1}));
}

// Sample statistics of a tensor's values.
struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};
Stats stats(const Tensor& t) {
  const auto v = t.to_vector();
  Stats s;
  s.min = s.max = v.empty() ? 0 : v[0];
  for (float x : v)
    s.mean += x, s.min = std::min<double>(s.min, x), s.max = std::max<double>(s.max, x);
  s.mean /= double(v.size());
  for (float x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / double(v.size()));
  return s;
}

TEST(ModelInit, ResNetIsTimms) {
  nn::manual_seed(7);
  auto m = models::resnet26();
  const StateDict sd = m->state_dict();
  // Kaiming normal, fan_out: std sqrt(2 / (C_out k k)).
  const Stats stem = stats(sd.at("conv1.weight"));
  EXPECT_NEAR(stem.std, std::sqrt(2.0 / (64 * 49)), 0.05 * std::sqrt(2.0 / (64 * 49)));
  const Stats mid = stats(sd.at("layer3.0.conv2.weight"));  // 256 x 256 x 3 x 3
  EXPECT_NEAR(mid.std, std::sqrt(2.0 / (256 * 9)), 0.01 * std::sqrt(2.0 / (256 * 9)));
  EXPECT_NEAR(mid.mean, 0.0, 0.01 * mid.std);
  // zero_init_last: the last BN of every residual branch has weight 0; others 1.
  for (auto& [k, t] : sd.items()) {
    if (k.find("bn3.weight") != std::string::npos) {
      EXPECT_EQ(stats(t).max, 0.0) << k;
      EXPECT_EQ(stats(t).min, 0.0) << k;
    } else if (k.find("bn") != std::string::npos && k.ends_with(".weight")) {
      EXPECT_EQ(stats(t).min, 1.0) << k;
    } else if (k.ends_with("downsample.1.weight")) {
      EXPECT_EQ(stats(t).min, 1.0) << k;
    }
    if (k.ends_with("running_var")) EXPECT_EQ(stats(t).min, 1.0) << k;
    if (k.ends_with("running_mean") || k.ends_with("bn1.bias")) EXPECT_EQ(stats(t).max, 0.0) << k;
  }
  // fc: PyTorch's Linear default, U(-1/sqrt(2048), 1/sqrt(2048)) for weight and bias.
  const Stats fc = stats(sd.at("fc.weight"));
  EXPECT_LE(fc.max, 1.0 / std::sqrt(2048.0));
  EXPECT_GE(fc.min, -1.0 / std::sqrt(2048.0));
  EXPECT_NEAR(fc.std, 1.0 / std::sqrt(3.0 * 2048), 0.1 / std::sqrt(3.0 * 2048));

  auto r18 = models::resnet18();
  for (auto& [k, t] : r18->state_dict().items())
    if (k.ends_with("bn2.weight")) EXPECT_EQ(stats(t).max, 0.0) << k;
}

TEST(ModelInit, ConvNeXtIsTimms) {
  nn::manual_seed(7);
  auto m = models::convnext_pico();
  for (auto& [k, t] : m->state_dict().items()) {
    const Stats s = stats(t);
    if (k.ends_with("gamma")) {
      EXPECT_FLOAT_EQ(s.min, 1e-6f) << k;
      EXPECT_FLOAT_EQ(s.max, 1e-6f) << k;
    } else if (t.dim() >= 2) {  // conv and linear weights: trunc normal std 0.02
      if (t.numel() >= 16384) EXPECT_NEAR(s.std, 0.02, 0.001) << k;
      EXPECT_LT(s.max, 0.2) << k;
    } else if (k.ends_with(".bias")) {
      EXPECT_EQ(s.min, 0.0) << k;
      EXPECT_EQ(s.max, 0.0) << k;
    } else {  // LayerNorm weights
      EXPECT_EQ(s.min, 1.0) << k;
      EXPECT_EQ(s.max, 1.0) << k;
    }
  }
}

TEST(ModelInit, SeedMakesInitReproducible) {
  nn::manual_seed(3);
  auto a = models::make_model("convnext_pico");
  nn::manual_seed(3);
  auto b = models::make_model("convnext_pico");
  EXPECT_EQ(a->state_dict().at("stages.2.blocks.0.mlp.fc1.weight").to_vector(),
            b->state_dict().at("stages.2.blocks.0.mlp.fc1.weight").to_vector());
}

// The formula of models/registry.h, pinned to values computed independently by
// tools/timm_interop.py (reference_uniform / reference_array), so that the two implementations
// cannot drift apart unnoticed.
TEST(ReferenceValues, MatchThePythonImplementation) {
  EXPECT_EQ(models::reference_uniform("conv1.weight", 0), 0.09014993906021118);
  EXPECT_EQ(models::reference_uniform("conv1.weight", 1), 0.4903234839439392);
  EXPECT_EQ(models::reference_uniform("stages.0.blocks.0.gamma", 63), -0.3632550835609436);
  const Tensor w = models::reference_tensor("conv1.weight", {64, 1, 7, 7});
  EXPECT_EQ(w.data()[0], static_cast<float>(std::sqrt(3.0 / 49) * 0.09014993906021118));
  const Tensor rv = models::reference_tensor("bn1.running_var", {64});
  EXPECT_EQ(rv.data()[5],
            static_cast<float>(1.0 + 0.5 * models::reference_uniform("bn1.running_var", 5)));
}

TEST(ModelStateDict, Hdf5RoundTripGivesTheSameOutput) {
  const fs::path dir = fs::temp_directory_path() / ("halo_rt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const std::string name : {"resnet18", "convnext_pico"}) {
    nn::manual_seed(11);
    auto a = models::make_model(name);
    models::perturb_norms_and_biases(*a);
    const std::string path = (dir / (name + ".h5")).string();
    save_state_dict(a->state_dict(), path);
    nn::manual_seed(12);
    auto b = models::make_model(name);
    load_module(*b, path);
    a->eval();
    b->eval();
    NoGradGuard no_grad;
    std::mt19937_64 rng(5);
    Tensor x = Tensor::randn({1, 1, 32, 32}, rng);
    EXPECT_EQ(a->forward(x).to_vector(), b->forward(x).to_vector()) << name;
  }
  fs::remove_all(dir);
}

}  // namespace
