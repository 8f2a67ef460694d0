// Tests of the CPU Adam step (kernels/optim.h): several steps against a plain double
// implementation of PyTorch's formula (no weight decay, coupled L2 as torch.optim.Adam, decoupled
// as torch.optim.AdamW) and hand-computed first steps.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/optim.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"

namespace {

using halo::kernels::AdamConfig;
using halo::test::close_abs;
using halo::test::random_vector;
namespace cpu = halo::kernels::cpu;
using Vec = std::vector<double>;

// The textbook update, all in double, with the config's float hyper-parameters widened.
void adam_reference(const AdamConfig& cfg, long long t, Vec& p, const Vec& g, Vec& m, Vec& v) {
  const double lr = cfg.lr, b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.eps, wd = cfg.weight_decay;
  for (std::size_t i = 0; i < p.size(); ++i) {
    double grad = g[i];
    if (cfg.decoupled)
      p[i] *= 1.0 - lr * wd;
    else
      grad += wd * p[i];
    m[i] = b1 * m[i] + (1.0 - b1) * grad;
    v[i] = b2 * v[i] + (1.0 - b2) * grad * grad;
    const double bc1 = 1.0 - std::pow(b1, double(t)), bc2 = 1.0 - std::pow(b2, double(t));
    p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
  }
}

void expect_steps_match_reference(const AdamConfig& cfg, std::size_t n) {
  Vec p = random_vector(n, 1), m(n, 0.0), v(n, 0.0);
  Vec rp = p, rm = m, rv = v;
  for (long long t = 1; t <= 6; ++t) {
    const Vec g = random_vector(n, 100 + unsigned(t));
    cpu::adam_step<double>(n, cfg, t, p.data(), g.data(), m.data(), v.data());
    adam_reference(cfg, t, rp, g, rm, rv);
    // Absolute, both in double (u = 1.1e-16): |p| ~ 1 after a handful of roundings per step
    // (1e-13 over 6 steps); |m| < 1 and |v| < 1 are a few products and sums per step (1e-14).
    const std::string step = "step " + std::to_string(t);
    ASSERT_TRUE(close_abs(p, rp, 1e-13, step + " p"));
    ASSERT_TRUE(close_abs(m, rm, 1e-14, step + " m"));
    ASSERT_TRUE(close_abs(v, rv, 1e-14, step + " v"));
  }
}

AdamConfig config(float wd, bool decoupled) {
  AdamConfig cfg;
  cfg.lr = 0.01f;
  cfg.beta1 = 0.9f;
  cfg.beta2 = 0.99f;
  cfg.eps = 1e-8f;
  cfg.weight_decay = wd;
  cfg.decoupled = decoupled;
  return cfg;
}

TEST(Adam, MatchesReferenceWithoutWeightDecay) {
  expect_steps_match_reference(config(0, false), 64);
}

TEST(Adam, MatchesReferenceCoupledWeightDecay) {
  expect_steps_match_reference(config(0.05f, false), 64);
}

TEST(Adam, MatchesReferenceDecoupledWeightDecay) {
  expect_steps_match_reference(config(0.05f, true), 64);
}

// Above the OpenMP threshold.
TEST(Adam, LargeMatchesReference) {
  expect_steps_match_reference(config(0.05f, true), 70000);
}

// The first step moves every parameter by lr * sign(g) (bias correction undoes the (1-b) factors),
// up to eps: p = 1 - 0.1 = 0.9 for g = 0.5.
TEST(Adam, FirstStepMovesByLearningRate) {
  AdamConfig cfg;
  cfg.lr = 0.1f;
  double p = 1.0, m = 0.0, v = 0.0;
  const double g = 0.5;
  cpu::adam_step<double>(1, cfg, 1, &p, &g, &m, &v);
  EXPECT_NEAR(p, 1.0 - double(cfg.lr), 1e-7);
  EXPECT_NEAR(m, (1.0 - double(cfg.beta1)) * g, 1e-15);
  EXPECT_NEAR(v, (1.0 - double(cfg.beta2)) * g * g, 1e-15);
}

// With g = 0 the two decays differ visibly: decoupled only shrinks p by 1 - lr*wd; coupled turns
// wd*p into a gradient and the first step moves p by lr.
TEST(Adam, CoupledAndDecoupledDecayDiffer) {
  AdamConfig cfg;
  cfg.lr = 0.1f;
  cfg.weight_decay = 0.1f;
  const double g = 0.0;
  double p = 1.0, m = 0.0, v = 0.0;
  cfg.decoupled = true;
  cpu::adam_step<double>(1, cfg, 1, &p, &g, &m, &v);
  EXPECT_NEAR(p, 1.0 - double(cfg.lr) * double(cfg.weight_decay), 1e-12);
  EXPECT_EQ(m, 0.0);
  p = 1.0, m = 0.0, v = 0.0;
  cfg.decoupled = false;
  cpu::adam_step<double>(1, cfg, 1, &p, &g, &m, &v);
  EXPECT_NEAR(p, 1.0 - double(cfg.lr), 1e-7);
}

TEST(Adam, FloatFollowsDoubleReference) {
  const std::size_t n = 128;
  const AdamConfig cfg = config(0.05f, false);
  const Vec p0 = random_vector(n, 7);
  std::vector<float> p(p0.begin(), p0.end()), m(n, 0.f), v(n, 0.f);
  Vec rp(p.begin(), p.end()), rm(n, 0.0), rv(n, 0.0);
  for (long long t = 1; t <= 5; ++t) {
    const Vec gd = random_vector(n, 200 + unsigned(t));
    const std::vector<float> g(gd.begin(), gd.end());
    cpu::adam_step<float>(n, cfg, t, p.data(), g.data(), m.data(), v.data());
    adam_reference(cfg, t, rp, Vec(g.begin(), g.end()), rm, rv);
  }
  // Float against double, absolute: |p| ~ 1 is stored in float (u = 6e-8) after each of 5 steps
  // and the step (~lr = 0.01) has a few float roundings: ~5 u ~ 3e-7; 1e-6.
  EXPECT_TRUE(close_abs(p, rp, 1e-6, "p after 5 float steps"));
}

}  // namespace
