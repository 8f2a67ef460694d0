// Halo against timm on the committed fixtures (tests/fixtures/model_<name>.h5, made by
// `tools/timm_interop.py fixture`; the weights come from the reference formula both sides
// implement, see model_test_util.h). Eval-mode outputs must match timm's to 1e-5 relative,
// training-mode parameter gradients to 1e-4 relative. Cases: batch 2 at 64x64, batch 2 at 37x37
// (odd sizes floor at every stride) and batch 1 at 150x150 (the training size; gradients there
// for ConvNeXt only, see below). The measured differences are printed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/serialize.h"
#include "model_test_util.h"
#include "models/registry.h"

using namespace halo;

namespace {

constexpr double kEvalTol = 1e-5;  // eval-mode output, relative to its scale
// Training-mode quantities (gradients, and the training-mode output and loss, which normalise
// with batch statistics over as few as 8 values per channel in layer4 at 64x64 batch 2: timm's
// own float32 run differs from its float64 one by 7e-6 there).
constexpr double kGradTol = 1e-4;

struct Case {
  std::string model, name;  // name: "s64" or "s150"
};

std::string case_label(const ::testing::TestParamInfo<Case>& info) {
  return info.param.model + "_" + info.param.name;
}

const Case kCases[] = {
    {"resnet18", "s64"},      {"resnet18", "s37"},      {"resnet18", "s150"},
    {"resnet26", "s64"},      {"resnet26", "s37"},      {"resnet26", "s150"},
    {"convnext_pico", "s64"}, {"convnext_pico", "s37"}, {"convnext_pico", "s150"}};

class TimmFixture : public ::testing::TestWithParam<Case> {
 protected:
  Tensor read(const std::string& dataset) const {
    return read_tensor_h5(test::model_fixture(GetParam().model), GetParam().name + "/" + dataset);
  }
  bool has(const std::string& dataset) const {
    try {
      read(dataset);
      return true;
    } catch (const std::runtime_error&) {
      return false;
    }
  }
  // One model per name for the whole suite (building one draws ~10M random numbers); every test
  // resets all parameters, buffers and gradients to the reference values first.
  std::shared_ptr<nn::Module> reference_model() const {
    static std::map<std::string, std::shared_ptr<nn::Module>> cache;
    auto& m = cache[GetParam().model];
    if (!m) m = models::make_model(GetParam().model);
    models::set_reference_values(*m);
    m->zero_grad();
    return m;
  }
};

TEST_P(TimmFixture, EvalOutputMatchesTimm) {
  auto m = reference_model();
  m->eval();
  const Tensor x = read("input");
  const Tensor ref = read("eval_output");
  NoGradGuard no_grad;
  const Tensor y = m->forward(x);
  ASSERT_EQ(y.shape(), ref.shape());
  double abs_d = 0;
  const double rel = test::rel_max_diff(y, ref, &abs_d);
  std::printf("[ timm ] %s %s eval output: max abs diff %.3e, relative %.3e\n",
              GetParam().model.c_str(), GetParam().name.c_str(), abs_d, rel);
  EXPECT_LE(rel, kEvalTol);
}

TEST_P(TimmFixture, TrainingStepGradientsMatchTimm) {
  auto m = reference_model();
  m->train();
  const Tensor x = read("input");
  const Tensor target = read("target");
  const Tensor y = m->forward(x);
  const Tensor loss = mse_loss(y, target);
  loss.backward();

  const double out_rel = test::rel_max_diff(y, read("train_output"));
  EXPECT_LE(out_rel, kGradTol) << "training-mode output";
  const double loss_ref = read("loss").item();
  EXPECT_NEAR(loss.item(), loss_ref, kGradTol * std::abs(loss_ref)) << "loss";

  // BatchNorm running statistics after the training-mode forward (unbiased variance, momentum).
  double worst_bn = 0;
  const StateDict sd = m->state_dict();
  for (const std::string& bn : {"bn1", "layer4.1.bn2", "layer4.1.bn3"})
    for (const std::string& stat : {".running_mean", ".running_var"}) {
      if (!sd.contains(bn + stat) || !has("bn/" + bn + stat)) continue;
      const double rel = test::rel_max_diff(sd.at(bn + stat), read("bn/" + bn + stat));
      EXPECT_LE(rel, kEvalTol) << bn + stat;
      worst_bn = std::max(worst_bn, rel);
    }

  const auto params = m->named_parameters();
  if (!has("grad_norm")) {
    // ResNets at 1x150x150: ~1e6 ReLU inputs, so some lie within float32 rounding of a kink and
    // even timm float32 vs timm float64 gradients differ by ~1e-2 there; the script stores no
    // gradients for such a case (see kink_margin in tools/timm_interop.py). Gradients are
    // checked on the s64 and s37 cases, whose inputs keep every kink at a distance.
    std::printf(
        "[ timm ] %s %s train: output %.2e, loss %.2e, BN stats %.2e (no gradients in this "
        "case: ReLU kinks)\n",
        GetParam().model.c_str(), GetParam().name.c_str(), out_rel,
        std::abs(loss.item() - loss_ref) / std::abs(loss_ref), worst_bn);
    return;
  }

  // Every parameter: gradient norm and a random projection (probe) against timm's.
  const std::vector<float> norms = read("grad_norm").to_vector();
  const std::vector<float> probes = read("grad_probe").to_vector();
  ASSERT_EQ(params.size(), norms.size());
  double worst_norm = 0, worst_probe = 0;
  std::string worst_norm_key, worst_probe_key;
  for (std::size_t p = 0; p < params.size(); ++p) {
    const auto& [key, t] = params[p];
    const Tensor g = t.grad();
    ASSERT_TRUE(g.defined()) << "no gradient reached " << key;
    const auto v = g.to_vector();
    double n2 = 0, probe = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      n2 += double(v[i]) * v[i];
      probe += double(v[i]) * models::reference_uniform(key + "#probe", int64_t(i));
    }
    const double ref_norm = norms[p];
    const double dn = std::abs(std::sqrt(n2) - ref_norm) / std::max(ref_norm, 1e-30);
    const double dp = std::abs(probe - probes[p]) / std::max(ref_norm, 1e-30);
    EXPECT_LE(dn, kGradTol) << key << ": gradient norm " << std::sqrt(n2) << " vs timm "
                            << ref_norm;
    EXPECT_LE(dp, kGradTol) << key << ": gradient probe " << probe << " vs timm " << probes[p]
                            << " (norm " << ref_norm << ")";
    if (dn > worst_norm) worst_norm = dn, worst_norm_key = key;
    if (dp > worst_probe) worst_probe = dp, worst_probe_key = key;
  }

  // Whole gradients of the few parameters the fixture stores.
  double worst_full = 0;
  std::string worst_full_key;
  int full_count = 0;
  for (const auto& [key, t] : params) {
    if (!has("grad/" + key)) continue;  // not stored for this case
    const Tensor ref = read("grad/" + key);
    ++full_count;
    ASSERT_EQ(t.grad().shape(), ref.shape()) << key;
    const double rel = test::rel_max_diff(t.grad(), ref);
    EXPECT_LE(rel, kGradTol) << key << ": whole gradient";
    if (rel > worst_full) worst_full = rel, worst_full_key = key;
  }
  EXPECT_GE(full_count, 3);

  std::printf(
      "[ timm ] %s %s train: output %.2e, loss %.2e; all %zu grads: norm %.2e (%s), probe %.2e "
      "(%s); "
      "%d whole grads %.2e (%s); BN stats %.2e\n",
      GetParam().model.c_str(), GetParam().name.c_str(), out_rel,
      std::abs(loss.item() - loss_ref) / std::abs(loss_ref), params.size(), worst_norm,
      worst_norm_key.c_str(), worst_probe, worst_probe_key.c_str(), full_count, worst_full,
      worst_full_key.c_str(), worst_bn);
}

INSTANTIATE_TEST_SUITE_P(Models, TimmFixture, ::testing::ValuesIn(kCases), case_label);

}  // namespace
