// Golden-value tests of halo::Adam against torch.optim.Adam / AdamW over several steps, including a
// parameter whose gradient is absent at some steps (it is skipped and its step count does not
// advance). Fixtures: tests/fixtures/adam_golden.h5, from `/usr/bin/python3 tools/make_fixtures.py`.
//
// Tolerances: PyTorch ran in float32 as Halo does, so the two differ only by the order of a few
// float32 operations per step. Parameters are O(1) and move by ~lr per step, so after 5 steps
//   kParam 1e-6 (relative to max|p|): a few ulps of p. A wrong bias correction, decay or moment
//     changes p by a sizeable fraction of lr (>= 1e-4 here) and fails by orders of magnitude.
//   kMoment 1e-6 for exp_avg / exp_avg_sq (relative to max|m|, max|v|): a handful of roundings
//     (u = 2^-24 ~ 6e-8 each) of b*m + (1-b)*g per step, over 5 steps.
// Both through close_rel (tests/common/compare.h), which also fails on NaN/Inf on either side.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/optim.h"
#include "engine/tensor.h"
#include "tests/common/fixtures.h"

namespace {

using halo::Tensor;
using halo::test::close_rel;
using halo::test::H5Fixture;

constexpr double kParam = 1e-6;
constexpr double kMoment = 1e-6;

std::vector<std::string> split_names(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream ss(csv);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

void check_adam(const std::string& group, bool expect_decoupled) {
  static const H5Fixture f("adam_golden.h5");
  halo::kernels::AdamConfig cfg;
  cfg.lr = f.attr_double(group, "lr");
  cfg.beta1 = f.attr_double(group, "beta1");
  cfg.beta2 = f.attr_double(group, "beta2");
  cfg.eps = f.attr_double(group, "eps");
  cfg.weight_decay = f.attr_double(group, "weight_decay");
  cfg.decoupled = f.attr_int(group, "decoupled") != 0;
  ASSERT_EQ(cfg.decoupled, expect_decoupled) << group;
  const int steps = int(f.attr_int(group, "steps"));
  const std::vector<std::string> names = split_names(f.attr_string(group, "params"));
  ASSERT_FALSE(names.empty());

  std::vector<std::pair<std::string, Tensor>> params;
  for (const std::string& n : names) {
    Tensor p = f.tensor(group + "/" + n + "/init");
    p.set_requires_grad(true);
    params.emplace_back(n, p);
  }
  halo::Adam opt(params, cfg);

  int absent = 0;
  for (int t = 1; t <= steps; ++t) {
    opt.zero_grad();
    for (auto& [n, p] : params) {
      const std::string key = group + "/" + n + "/grad_" + std::to_string(t);
      if (f.has(key))
        p.set_grad(f.tensor(key));
      else
        ++absent;
    }
    opt.step();
    for (auto& [n, p] : params)
      EXPECT_TRUE(close_rel(p, f.tensor(group + "/" + n + "/after_" + std::to_string(t)), kParam,
                            group + ": " + n + " after step " + std::to_string(t)));
  }
  EXPECT_GT(absent, 0) << group << ": the fixture should leave some gradient out";

  // The optimizer state after the last step: moments and per-parameter step counts.
  const halo::StateDict state = opt.state();
  for (const std::string& n : names) {
    EXPECT_TRUE(close_rel(state.at(n + ".exp_avg"), f.tensor(group + "/" + n + "/exp_avg"), kMoment,
                          group + ": " + n + ".exp_avg"));
    EXPECT_TRUE(close_rel(state.at(n + ".exp_avg_sq"), f.tensor(group + "/" + n + "/exp_avg_sq"),
                          kMoment, group + ": " + n + ".exp_avg_sq"));
    const Tensor step = state.at(n + ".step");
    ASSERT_EQ(step.dtype(), halo::DType::i64) << n << ".step";
    EXPECT_EQ(step.data_i64()[0], f.attr_int(group + "/" + n, "step")) << group << ": " << n << ".step";
  }
}

TEST(GoldenAdam, Default) { check_adam("adam_default", false); }         // lr 1e-3
TEST(GoldenAdam, LrBetasEps) { check_adam("adam_lr_betas", false); }     // lr 0.05, (0.8, 0.99), 1e-6
TEST(GoldenAdam, WeightDecay) { check_adam("adam_weight_decay", false); }  // coupled L2, 0.1
TEST(GoldenAdam, AdamW) { check_adam("adamw", true); }                   // decoupled, 0.1

}  // namespace
