// make_model() and the reference-value formula (see registry.h).
#include "models/registry.h"

#include <cmath>
#include <stdexcept>

#include "engine/autograd.h"
#include "models/convnext.h"
#include "models/resnet.h"

namespace halo::models {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"resnet18", "resnet26", "convnext_pico"};
  return names;
}

std::shared_ptr<nn::Module> make_model(const std::string& name, int in_chans, int num_classes) {
  if (name == "resnet18") return resnet18(in_chans, num_classes);
  if (name == "resnet26") return resnet26(in_chans, num_classes);
  if (name == "convnext_pico") return convnext_pico(in_chans, num_classes);
  std::string valid;
  for (const auto& n : model_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown model '" + name + "'; valid names: " + valid);
}

// ---- reference values -------------------------------------------------------------------------
namespace {
uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

double uniform_from_hash(uint64_t h, int64_t i) {
  uint64_t z = h + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  const double two24 = 16777216.0;
  return (2.0 * static_cast<double>(z >> 40) + 1.0 - two24) / two24;
}

void set_tensor(const std::string& key, Tensor& t) {
  if (t.dtype() == DType::i64) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data_i64()[i] = 0;
    return;
  }
  Tensor v = reference_tensor(key, t.shape());
  if (t.device() == Device::cpu)
    t.copy_from(v);
  else
    t.copy_from(v.to(t.device()));
}
}  // namespace

double reference_uniform(const std::string& key, int64_t i) {
  return uniform_from_hash(fnv1a64(key), i);
}

Tensor reference_tensor(const std::string& key, const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  const uint64_t h = fnv1a64(key);
  const int64_t n = t.numel();
  float* p = t.data();
  double scale = 1.0, offset = 0.0;
  if (shape.size() >= 2) {
    const int64_t fan_in = n / shape[0];
    scale = std::sqrt(3.0 / static_cast<double>(fan_in));
  } else if (ends_with(key, "running_mean")) {
    scale = 0.2;
  } else if (ends_with(key, "running_var")) {
    offset = 1.0, scale = 0.5;
  } else if (ends_with(key, "gamma")) {
    offset = 0.5, scale = 0.4;
  } else if (ends_with(key, "weight")) {
    offset = 1.0, scale = 0.3;
  } else {
    scale = 0.2;  // biases
  }
  for (int64_t i = 0; i < n; ++i)
    p[i] = static_cast<float>(offset + scale * uniform_from_hash(h, i));
  return t;
}

void set_reference_values(nn::Module& m) {
  NoGradGuard no_grad;
  for (auto& [key, t] : m.state_dict().items()) set_tensor(key, t);
}

void perturb_norms_and_biases(nn::Module& m) {
  NoGradGuard no_grad;
  for (auto& [key, t] : m.state_dict().items())
    if (t.dim() == 1) set_tensor(key, t);
}

}  // namespace halo::models
