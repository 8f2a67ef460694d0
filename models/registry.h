// The model registry (name -> freshly initialised model) and the deterministic "reference values"
// that the timm comparison fixtures use: a formula both Halo and tools/timm_interop.py implement,
// so that a fixture needs to store no weights.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"

namespace halo::models {

// "resnet18", "resnet26", "convnext_pico".
const std::vector<std::string>& model_names();

// A new model with timm's initialisation drawn from nn::init_rng() (seed it with nn::manual_seed
// first for reproducible weights). An unknown name throws std::invalid_argument listing the
// valid names.
std::shared_ptr<nn::Module> make_model(const std::string& name, int in_chans = 1,
                                       int num_classes = 1);

// ---- reference values (must stay identical to tools/timm_interop.py) -----------------------
//
// u(key, i), for element i (flat, row-major) of the tensor called `key`, is a uniform number in
// (-1, 1) made by integer hashing only, so that C++ and numpy agree bit for bit:
//   h  = FNV-1a 64 of the key's bytes (offset 0xcbf29ce484222325, prime 0x100000001b3)
//   x  = h + (i + 1) * 0x9E3779B97F4A7C15                      (mod 2^64)
//   z  = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//   z ^= z >> 31                                               (splitmix64's finaliser)
//   u  = (2 * (z >> 40) + 1 - 2^24) / 2^24                     (odd multiples of 2^-24)
// The value of each state-dict entry (float64 arithmetic, rounded once to float32):
//   weights with 2 or more dims (conv, linear)   u * sqrt(3 / fan_in), fan_in = numel / shape[0]
//   *.running_mean                               0.2 u
//   *.running_var                                1 + 0.5 u
//   *.gamma (ConvNeXt layer scale)               0.5 + 0.4 u
//   other 1-D *.weight (BN / LayerNorm scales)   1 + 0.3 u
//   other 1-D *.bias (norm, conv, linear)        0.2 u
//   *.num_batches_tracked (int64)                0
// Unlike timm's init this leaves no residual branch zeroed or scaled to 1e-6, so an output check
// sees every layer.
double reference_uniform(const std::string& key, int64_t i);
// The whole tensor for `key` with `shape` (float32), by the table above.
Tensor reference_tensor(const std::string& key, const Shape& shape);
// Sets every parameter and buffer of `m` to its reference value.
void set_reference_values(nn::Module& m);
// Sets only the 1-D tensors (norm scales and shifts, biases, running statistics, layer scale) to
// their reference values and leaves conv/linear weights as they are: a model with its own random
// weights whose output check is no longer blind to the residual branches.
void perturb_norms_and_biases(nn::Module& m);

}  // namespace halo::models
