// Halo against timm on the committed fixtures (tests/fixtures/model_<name>.h5, made by
// `tools/timm_interop.py fixture`; the weights come from the reference formula both sides
// implement, see model_test_util.h). Eval-mode outputs must match timm's to 1e-5 relative,
// training-mode parameter gradients to 1e-4 relative (3e-4 for ResNet-26, see grad_tol). Cases:
// batch 2 at 64x64, batch 2 at 37x37 (odd sizes floor at every stride) and batch 1 at 150x150
// (the training size; gradients there for ConvNeXt only, see below). Every comparison goes through
// tests/common/compare.h (NaN or Inf on either side fails); the measured differences are printed.
// Measured values below: 1 and 2 threads (OMP_NUM_THREADS), and a -DHALO_NATIVE=ON build (FMA).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/serialize.h"
#include "model_test_util.h"
#include "models/registry.h"
#include "tests/common/compare.h"

using namespace halo;

namespace {

// The references are timm in float64 from the same float32 inputs and weights, so every tolerance
// bounds Halo's own float32 error (u = 2^-24 ~ 6e-8 per rounding), relative to the magnitude of
// what is compared.
//
// Eval-mode output and BatchNorm running statistics, relative to max|ref| (close_rel): 26 layers
// of sums of up to 4608 products (3x3x512) and fixed affine norms; measured <= 2.2e-6 (output)
// and <= 2.3e-6 (statistics), so 1e-5 keeps a >= 4x margin while a wrong layer gives O(1).
constexpr double kEvalTol = 1e-5;
// Training-mode output and loss: they normalise with batch statistics over as few as 8 values per
// channel (layer4 at 64x64, batch 2), which amplifies rounding (timm's own float32 run differs
// from its float64 one by 7e-6 there); measured <= 2.7e-5.
constexpr double kTrainTol = 1e-4;
// Parameter gradients, per parameter: |norm - ref| / ref, |probe - ref probe| / ref norm (see
// below) and whole gradients max|g - ref| / max|ref|. Their float32 noise floor was measured, not
// guessed: moving every input pixel by one ulp (a float32 rounding of the data, random sign) moves
// these measures by up to 1.9e-5 (ResNet-18), 5.3e-6 (ConvNeXt-pico) and 8.4e-5 (ResNet-26 at
// 64x64: 26 layers of training-mode BatchNorm over few values, and its fixture input comes within
// 7.8e-6 of a ReLU or max-pool kink; tools/timm_interop.py found no seed with more margin).
// Halo's distance from float64 sits at that floor: worst ResNet-26 probe 6.0e-5 at 1 thread and
// 6.1e-5 at 2 (64x64, layer1.0.bn2.bias), 4.1e-5 / 3.8e-5 (64x64) and 3.7e-5 / 5.8e-5 (37x37) in
// the native build; ResNet-18 <= 1.7e-5, ConvNeXt-pico <= 4.8e-6. So 1e-4 left ResNet-26 only
// 1.6x, moving with the thread count and instruction set. Each model gets 3.5-5x its measured
// floor, never less than the old 1e-4; a wrong backward fails by orders of magnitude (a missing or
// doubled term is O(1) relative). A kink flip (see TrainingStepGradientsMatchTimm) is no rounding
// error and is handled apart.
double grad_tol(const std::string& model) {
  return model == "resnet26" ? 3e-4 : 1e-4;
}

// One-ulp neighbours of the input tried when the gradients at the input fail in a model with
// kinks (see TrainingStepGradientsMatchTimm).
constexpr int kNeighbours = 8;

// What check_gradients found: the failures (empty: every check passed) and the worst values.
struct GradientCheck {
  std::vector<std::string> failures;
  std::size_t count = 0;
  int full_count = 0;
  double worst_norm = 0, worst_probe = 0, worst_full = 0;
  std::string worst_norm_key, worst_probe_key, worst_full_key;
};

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
  // Every parameter's gradient against timm's: norm and a random projection (probe). The probe
  // sum_i g_i u_i (u ~ U(-1,1) fixed per key) sees every element: an error e in g moves it by
  // ~|e| / sqrt(3), so |probe - ref| / ||g_ref|| estimates the relative L2 error of the whole
  // gradient, which the fixture is too small to store for every parameter. Then the whole
  // gradients of the few parameters the fixture stores. Failures are collected, not reported:
  // the caller decides (see the kink fallback in TrainingStepGradientsMatchTimm).
  GradientCheck check_gradients(nn::Module& m, double tol) const {
    GradientCheck c;
    const auto params = m.named_parameters();
    c.count = params.size();
    const std::vector<float> norms = read("grad_norm").to_vector();
    const std::vector<float> probes = read("grad_probe").to_vector();
    if (params.size() != norms.size() || params.size() != probes.size()) {
      c.failures.push_back("the fixture has " + std::to_string(norms.size()) +
                           " gradient norms, the model " + std::to_string(params.size()) +
                           " parameters");
      return c;
    }
    auto add = [&](const ::testing::AssertionResult& r) {
      if (!r) c.failures.push_back(r.message());
    };
    for (std::size_t p = 0; p < params.size(); ++p) {
      const auto& [key, t] = params[p];
      const Tensor g = t.grad();
      if (!g.defined()) {
        c.failures.push_back("no gradient reached " + key);
        continue;
      }
      const auto v = g.to_vector();
      double n2 = 0, probe = 0;
      for (std::size_t i = 0; i < v.size(); ++i) {
        n2 += double(v[i]) * v[i];
        probe += double(v[i]) * models::reference_uniform(key + "#probe", int64_t(i));
      }
      const double ref_norm = norms[p];
      const std::vector<double> norm{std::sqrt(n2)}, norm_ref{ref_norm};
      add(test::close_rel(norm, norm_ref, tol, key + ": gradient norm"));
      // |probe - ref| <= tol ||g_ref||: the probe's scale is the gradient's norm, not the probe
      // itself (which may be ~0 by cancellation).
      add(test::close_abs(std::vector<double>{probe}, std::vector<double>{probes[p]},
                          tol * ref_norm,
                          key + ": gradient probe (norm " + std::to_string(ref_norm) + ")"));
      const double dn = test::rel_error(norm, norm_ref);
      const double dp = std::abs(probe - probes[p]) / std::max(ref_norm, 1e-30);
      if (!(dn <= c.worst_norm)) c.worst_norm = dn, c.worst_norm_key = key;  // NaN counts too
      if (!(dp <= c.worst_probe)) c.worst_probe = dp, c.worst_probe_key = key;
    }
    for (const auto& [key, t] : params) {
      if (!has("grad/" + key)) continue;  // not stored for this case
      const Tensor ref = read("grad/" + key);
      ++c.full_count;
      add(test::close_rel(t.grad(), ref, tol, key + ": whole gradient"));
      const double rel = test::rel_error(t.grad(), ref);
      if (!(rel <= c.worst_full)) c.worst_full = rel, c.worst_full_key = key;
    }
    return c;
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
  const test::Comparison c = test::compare(y.to_vector(), ref.to_vector());
  std::printf("[ timm ] %s %s eval output: max abs diff %.3e, relative %.3e\n",
              GetParam().model.c_str(), GetParam().name.c_str(), c.max_abs_diff, c.rel());
  EXPECT_TRUE(test::close_rel(y, ref, kEvalTol, "eval output"));
}

TEST_P(TimmFixture, TrainingStepGradientsMatchTimm) {
  auto m = reference_model();
  m->train();
  const Tensor x = read("input");
  const Tensor target = read("target");
  const Tensor y = m->forward(x);
  const Tensor loss = mse_loss(y, target);
  loss.backward();

  const Tensor train_ref = read("train_output");
  const double out_rel = test::rel_error(y, train_ref);
  EXPECT_TRUE(test::close_rel(y, train_ref, kTrainTol, "training-mode output"));
  const double loss_ref = read("loss").item();
  const double loss_rel =
      test::rel_error(std::vector<double>{loss.item()}, std::vector<double>{loss_ref});
  EXPECT_TRUE(test::close_rel(std::vector<double>{loss.item()}, std::vector<double>{loss_ref},
                              kTrainTol, "loss"));

  // BatchNorm running statistics after the training-mode forward (unbiased variance, momentum).
  double worst_bn = 0;
  const StateDict sd = m->state_dict();
  for (const std::string bn : {"bn1", "layer4.1.bn2", "layer4.1.bn3"})
    for (const std::string stat : {".running_mean", ".running_var"}) {
      if (!sd.contains(bn + stat) || !has("bn/" + bn + stat)) continue;
      const Tensor ref = read("bn/" + bn + stat);
      EXPECT_TRUE(test::close_rel(sd.at(bn + stat), ref, kEvalTol, bn + stat));
      worst_bn = std::max(worst_bn, test::rel_error(sd.at(bn + stat), ref));
    }

  const double margin = read("kink_margin").item();  // -1: the model has no kinks
  if (!has("grad_norm")) {
    // ResNets at 1x150x150: ~1e6 ReLU inputs, so some lie within float32 rounding of a kink and
    // even timm float32 vs timm float64 gradients differ by ~1e-2 there; the script stores no
    // gradients for such a case (see kink_margin in tools/timm_interop.py). Gradients are
    // checked on the s64 and s37 cases, whose inputs keep every kink at a distance. Only a model
    // with kinks may lack them, and the test then reports itself skipped, saying why.
    ASSERT_GE(margin, 0.0) << "the fixture stores no gradients for a model without kinks";
    std::printf(
        "[ timm ] %s %s train: output %.2e, loss %.2e, BN stats %.2e (no gradients in this "
        "case: ReLU kinks)\n",
        GetParam().model.c_str(), GetParam().name.c_str(), out_rel, loss_rel, worst_bn);
    char why[320];
    std::snprintf(why, sizeof why,
                  "output, loss and BatchNorm statistics checked; gradients not: the fixture has "
                  "none for this case because a ReLU input or max-pool gap lies %.1e from its "
                  "kink, within float32 rounding (tools/timm_interop.py kink_margin)",
                  margin);
    GTEST_SKIP() << why;
  }
  const double tol = grad_tol(GetParam().model);
  GradientCheck at_x = check_gradients(*m, tol);
  GradientCheck accepted = at_x;
  std::string note;
  if (!at_x.failures.empty() && margin >= 0) {
    // A ReLU input or max-pool gap lies within float32 error of its kink (the fixture's
    // kink_margin is measured in float64). The reference is the gradient at x, on one side of the
    // kink; a float32 run can land on the other side, and its gradients then differ by ~1e-2
    // whatever the implementation (measured: ResNet-26 at 37x37 in a -DHALO_NATIVE=ON build at 1
    // thread, probe error 2e-2). Float32 cannot tell x from its one-ulp neighbours, so accept the
    // first of a few neighbours x' (every pixel moved by one ulp, random sign, fixed seed) at
    // which Halo's gradients pass every check above at the same tolerance. A wrong backward fails
    // at every neighbour; the output, loss and statistics checks stay at x.
    std::mt19937 gen(20240607);
    const std::vector<float> xv = x.to_vector();
    for (int k = 1; k <= kNeighbours; ++k) {
      std::vector<float> nv = xv;
      for (float& e : nv) e = std::nextafter(e, (gen() & 1) ? INFINITY : -INFINITY);
      auto mk = reference_model();
      mk->train();
      mse_loss(mk->forward(Tensor::from_vector(nv, x.shape())), target).backward();
      GradientCheck gk = check_gradients(*mk, tol);
      if (gk.failures.empty()) {
        char buf[300];
        std::snprintf(buf, sizeof buf,
                      " [at x the gradients differ by up to %.2e (probe, %s): a kink flip; they "
                      "pass at one-ulp neighbour %d]",
                      at_x.worst_probe, at_x.worst_probe_key.c_str(), k);
        note = buf;
        accepted = gk;
        break;
      }
    }
  }
  if (note.empty())
    for (const std::string& f : at_x.failures) ADD_FAILURE() << f;
  if (note.empty() && !at_x.failures.empty() && margin >= 0)
    ADD_FAILURE() << "nor do they pass at any of " << kNeighbours
                  << " one-ulp neighbours of the input, so this is not a kink flip";
  EXPECT_GE(accepted.full_count, 3);

  std::printf(
      "[ timm ] %s %s train: output %.2e, loss %.2e; all %zu grads: norm %.2e (%s), probe %.2e "
      "(%s); %d whole grads %.2e (%s); BN stats %.2e; gradient tolerance %.0e, kink margin "
      "%.1e%s\n",
      GetParam().model.c_str(), GetParam().name.c_str(), out_rel, loss_rel, accepted.count,
      accepted.worst_norm, accepted.worst_norm_key.c_str(), accepted.worst_probe,
      accepted.worst_probe_key.c_str(), accepted.full_count, accepted.worst_full,
      accepted.worst_full_key.c_str(), worst_bn, tol, margin, note.c_str());
}

INSTANTIATE_TEST_SUITE_P(Models, TimmFixture, ::testing::ValuesIn(kCases), case_label);

}  // namespace
