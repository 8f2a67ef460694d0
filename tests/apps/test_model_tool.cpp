// model_tool's subcommands and halo_demo, checked on what they produce: the summary's parameter and
// MAC counts against the model's own tensors, init's state dicts against the registry, run's output
// against an in-process forward, profile's per-layer table; halo_demo's loss falls and its saved
// weights are the trained ones.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "data/synthetic.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/serialize.h"
#include "models/registry.h"
#include "models/tiny_cnn.h"
#include "tests/apps/cli_util.h"
#include "tests/common/compare.h"
#include "tests/common/temp_dir.h"

using namespace halo;
using namespace halo::test;
namespace fs = std::filesystem;

namespace {

// 11170753 -> "11,170,753", as the summary prints counts.
std::string with_commas(int64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

void expect_same(const StateDict& got, const StateDict& want, const std::string& what) {
  ASSERT_EQ(got.keys(), want.keys()) << what;
  for (const auto& [k, t] : want.items()) {
    if (t.dtype() == DType::i64) {
      EXPECT_EQ(got.at(k).data_i64()[0], t.data_i64()[0]) << what << " " << k;
      continue;
    }
    EXPECT_EQ(got.at(k).to_vector(), t.to_vector()) << what << " " << k;
  }
}

}  // namespace

// summary: the text table and --json, with counts checked against the model's tensors: parameters
// per layer are the numel of its state-dict parameters; a convolution's MACs per image are
// H_out * W_out * numel(weight), a linear layer's numel(weight).
TEST(ModelTool, SummaryCountsParametersAndMacs) {
  HALO_REQUIRE_APP("model_tool");
  TempDir dir("halo_mt_summary");
  CmdResult r =
      run_cmd(app("model_tool") + " summary --model resnet18 --size 64 --json " + (dir / "s.json"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto model = models::make_model("resnet18");
  int64_t params = 0;
  std::map<std::string, int64_t> numel;
  for (const auto& [k, p] : model->named_parameters()) {
    params += p.numel();
    numel[k] = p.numel();
  }
  EXPECT_TRUE(contains(r.output, "resnet18, input [1, 1, 64, 64]")) << r.output;
  EXPECT_TRUE(contains(r.output, "parameters " + with_commas(params) + " in " +
                                     std::to_string(numel.size()) + " tensors"))
      << r.output;
  EXPECT_EQ(lines_with(r.output, "layer1.0.conv1 ").size(), 1u) << r.output;

  const nlohmann::json j = nlohmann::json::parse(slurp(dir / "s.json"));
  EXPECT_EQ(j.at("model"), "resnet18");
  EXPECT_EQ(j.at("parameters").get<int64_t>(), params);
  EXPECT_EQ(j.at("output_shape"), nlohmann::json({1, 1}));
  int64_t macs = 0;
  int convs = 0;
  for (const auto& l : j.at("layers")) {
    const std::string name = l.at("name"), type = l.at("type");
    int64_t own = 0;
    for (const auto& [k, n] : numel)
      if (k.rfind(name + ".", 0) == 0) own += n;
    EXPECT_EQ(l.at("parameters").get<int64_t>(), own) << name;
    if (type == "Conv2d") {
      const auto shape = l.at("output_shape").get<std::vector<int64_t>>();
      ASSERT_EQ(shape.size(), 4u);
      EXPECT_EQ(l.at("macs_per_image").get<int64_t>(),
                shape[2] * shape[3] * numel.at(name + ".weight"))
          << name;
      macs += l.at("macs_per_image").get<int64_t>();
      ++convs;
    } else if (type == "Linear") {
      EXPECT_EQ(l.at("macs_per_image").get<int64_t>(), numel.at(name + ".weight")) << name;
      macs += l.at("macs_per_image").get<int64_t>();
    }
  }
  EXPECT_EQ(convs, 20);  // resnet18: the stem, 16 in the blocks, 3 downsampling 1x1
  EXPECT_EQ(j.at("macs_per_image").get<int64_t>(), macs);
  // The input size is honoured: the stem halves 64 to 32.
  EXPECT_EQ(j.at("layers").at(0).at("output_shape"), nlohmann::json({1, 64, 32, 32}));

  r = run_cmd(app("model_tool") + " summary --model resnet99");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "resnet18")) << r.output;  // lists the valid names
}

// init: the registry's initialisation for a seed, bit for bit; --reference the formula of
// models/registry.h; --perturb the seeded weights with reference norms and biases.
TEST(ModelTool, InitWritesTheRegistrysWeights) {
  HALO_REQUIRE_APP("model_tool");
  TempDir dir("halo_mt_init");
  const std::string mt = app("model_tool") + " init --model resnet18 ";
  for (const char* extra : {"--seed 7 --out a.h5", "--seed 8 --out b.h5",
                            "--seed 7 --reference --out ref.h5", "--seed 7 --perturb --out p.h5"}) {
    CmdResult r = run_cmd("cd " + dir.path.string() + " && " + mt + extra);
    ASSERT_EQ(r.code, 0) << extra << "\n" << r.output;
  }
  nn::manual_seed(7);
  auto seeded = models::make_model("resnet18");
  expect_same(load_state_dict_file(dir / "a.h5"), seeded->state_dict(), "--seed 7");
  EXPECT_NE(load_state_dict_file(dir / "b.h5").at("conv1.weight").to_vector(),
            seeded->state_dict().at("conv1.weight").to_vector())
      << "--seed 8 gave seed 7's weights";

  const StateDict ref = load_state_dict_file(dir / "ref.h5");
  for (const auto& [k, t] : seeded->state_dict().items()) {
    if (t.dtype() == DType::i64) {
      EXPECT_EQ(ref.at(k).data_i64()[0], 0) << k;
      continue;
    }
    EXPECT_EQ(ref.at(k).to_vector(), models::reference_tensor(k, t.shape()).to_vector())
        << "--reference " << k;
  }
  const StateDict p = load_state_dict_file(dir / "p.h5");
  for (const auto& [k, t] : seeded->state_dict().items()) {
    if (t.dtype() == DType::i64) continue;
    const std::vector<float> want =
        t.dim() == 1 ? models::reference_tensor(k, t.shape()).to_vector() : t.to_vector();
    EXPECT_EQ(p.at(k).to_vector(), want) << "--perturb " << k;
  }
  CmdResult r = run_cmd(mt + "--seed 1 --reference --perturb --out " + (dir / "x.h5"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "excludes")) << r.output;
}

// run: HDF5 weights and input in, the eval-mode output out, equal to the same forward in-process.
TEST(ModelTool, RunGivesTheEvalModeOutput) {
  HALO_REQUIRE_APP("model_tool");
  TempDir dir("halo_mt_run");
  nn::manual_seed(5);
  auto model = models::make_model("resnet18");
  models::perturb_norms_and_biases(*model);
  save_state_dict(model->state_dict(), dir / "w.h5");
  std::mt19937_64 rng(9);
  const Tensor x = Tensor::randn({3, 1, 32, 32}, rng);
  StateDict in;
  in.set("images", x);
  write_tensors_h5(dir / "in.h5", in);
  CmdResult r = run_cmd(app("model_tool") + " run --model resnet18 --weights " + (dir / "w.h5") +
                        " --input " + (dir / "in.h5") + " --dataset images --output " +
                        (dir / "out.h5") + " --output-dataset pred");
  ASSERT_EQ(r.code, 0) << r.output;
  model->eval();
  NoGradGuard no_grad;
  const Tensor want = (*model)(x);
  EXPECT_TRUE(close_rel(read_tensor_h5(dir / "out.h5", "pred"), want, 1e-6, "model_tool run"));

  // An input that is not [N, 1, H, W]: refused with the shape it has and the one expected.
  in.set("images", Tensor::randn({3, 32, 32}, rng));
  write_tensors_h5(dir / "bad.h5", in);
  r = run_cmd(app("model_tool") + " run --model resnet18 --weights " + (dir / "w.h5") +
              " --input " + (dir / "bad.h5") + " --dataset images --output " + (dir / "o2.h5"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "[3, 32, 32], expected [N, 1, H, W]")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "o2.h5"));
}

// profile: one timed row per layer with its output shape, the whole forward and backward, and the
// split by layer kind adding up to 100 %.
TEST(ModelTool, ProfileTimesEveryLayer) {
  HALO_REQUIRE_APP("model_tool");
  for (bool eval : {false, true}) {
    SCOPED_TRACE(eval ? "--eval" : "training mode");
    CmdResult r =
        run_cmd(app("model_tool") + " profile --model resnet18 --batch 2 --size 32 --repeats 1" +
                (eval ? " --eval" : ""));
    ASSERT_EQ(r.code, 0) << r.output;
    const auto conv1 = lines_with(r.output, "conv1 ");
    ASSERT_FALSE(conv1.empty()) << r.output;
    EXPECT_TRUE(contains(conv1[0], "[2, 64, 16, 16]")) << conv1[0];
    EXPECT_EQ(lines_with(r.output, "layer4.1.conv2 ").size(), 1u) << r.output;
    EXPECT_TRUE(
        contains(r.output, eval ? ", eval, mean of 1 passes" : ", training mode, mean of 1 passes"))
        << r.output;
    EXPECT_EQ(contains(r.output, "backward ~"), !eval) << r.output;
    const std::size_t kinds = r.output.find("forward time by layer kind");
    ASSERT_NE(kinds, std::string::npos) << r.output;
    double total = 0;
    for (const std::string& l : lines_with(r.output.substr(kinds), "%")) {
      const std::size_t ms = l.find(" ms ");
      ASSERT_NE(ms, std::string::npos) << l;
      total += std::strtod(l.c_str() + ms + 4, nullptr);
    }
    EXPECT_NEAR(total, 100.0, 0.5) << r.output;
  }
}

// halo_demo: the training loss falls, the held-out MSE is far below predicting the mean (1.0), and
// --save writes the trained weights (they give the printed held-out MSE).
TEST(HaloDemo, LossFallsAndSavedWeightsAreTheTrainedOnes) {
  HALO_REQUIRE_APP("halo_demo");
  TempDir dir("halo_demo");
  CmdResult r = run_cmd(app("halo_demo") + " --steps 60 --batch 16 --size 16 --seed 1 --save " +
                        (dir / "demo.h5"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto steps = lines_with(r.output, "train MSE ");
  ASSERT_GE(steps.size(), 5u) << r.output;
  const double first = number_after(steps.front(), "train MSE "),
               last = number_after(steps.back(), "train MSE ");
  EXPECT_LT(last, 0.25 * first) << r.output;
  const double held_out = number_after(r.output, "held-out MSE ");
  EXPECT_LT(held_out, 0.1) << r.output;

  models::TinyCnn model(8);
  load_module(model, dir / "demo.h5");
  model.eval();
  NoGradGuard no_grad;
  const data::BlobBatch b =
      data::make_blob_batch(256, 16, 1 + 1000, 0);  // halo_demo's held-out batch
  const float mse = mse_loss(model(Tensor::from_vector(b.images, {256, 1, 16, 16})),
                             Tensor::from_vector(b.labels, {256, 1}))
                        .item();
  EXPECT_NEAR(mse, held_out, 1e-5 + 1e-3 * held_out);  // printed with 5 decimals
}
