// Helpers for the model tests: fixture paths and whether PyTorch + timm can be run for the interop
// tests. Comparisons go through tests/common/compare.h (close_rel), which replaced the
// rel_max_diff that lived here: its std::max over differences dropped NaN, so an all-NaN model
// output passed (tests/engine/test_compare.cpp keeps the demonstration).
//
// The timm fixtures (tests/fixtures/model_<name>.h5, made by `tools/timm_interop.py fixture`)
// store no weights: both sides set every state-dict entry from the same formula,
// models::set_reference_values() here and set_reference_values() in the script:
//   u(key, i) = splitmix64-finalised (FNV-1a-64(key) + (i + 1) * 0x9E3779B97F4A7C15), top 24 bits
//               mapped to the odd multiples of 2^-24 in (-1, 1)
//   conv/linear weights u * sqrt(3 / fan_in); running_mean 0.2 u; running_var 1 + 0.5 u;
//   gamma 0.5 + 0.4 u; other 1-D weights 1 + 0.3 u; biases 0.2 u; num_batches_tracked 0
// (full statement in models/registry.h). The fixture then holds, per case ("s64": batch 2 of
// 1x64x64; "s37": batch 2 of 1x37x37; "s150": batch 1 of 1x150x150), the input, timm's eval
// output, the training-mode output, loss and parameter gradients (norm and a probe
// sum_i g_i u(key + "#probe", i) for every parameter, whole gradients for a few), and some BN
// running statistics after the training step, all computed by timm in float64. ResNet gradients
// are stored only for inputs whose ReLU inputs all stay clear of zero (not possible at 150x150,
// see the script's kink_margin), since a float32 run that lands on the other side of a ReLU
// kink has gradients ~1e-2 away from float64's whatever the implementation.
#pragma once
#include <cstdlib>
#include <string>

#include "engine/serialize.h"
#include "engine/tensor.h"

namespace halo::test {

inline std::string fixture_path(const std::string& file) {
  return std::string(HALO_FIXTURES_DIR) + "/" + file;
}

inline std::string model_fixture(const std::string& model) {
  return fixture_path("model_" + model + ".h5");
}

// Can the interop tests call PyTorch + timm? (Checked once: importing torch takes seconds.)
// HALO_NO_PYTORCH=1 in the environment forces "no" (to exercise the skip path).
inline bool timm_available() {
  static const bool ok =
      !std::getenv("HALO_NO_PYTORCH") &&
      std::system("/usr/bin/python3 -c 'import timm, h5py' > /dev/null 2>&1") == 0;
  return ok;
}

inline std::string python_tool(const std::string& args) {
  return "/usr/bin/python3 " + std::string(HALO_SOURCE_DIR) + "/tools/timm_interop.py " + args;
}

}  // namespace halo::test
