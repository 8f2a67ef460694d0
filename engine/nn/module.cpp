// Module bookkeeping: registration, recursive traversal with PyTorch's key names, train/eval,
// state dicts, and StateDict itself.
#include <cmath>
#include <set>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/nn.h"

namespace halo {

// ---- StateDict ------------------------------------------------------------------------------------
void StateDict::set(const std::string& key, const Tensor& t) {
  for (auto& [k, v] : items_)
    if (k == key) {
      v = t;
      return;
    }
  items_.emplace_back(key, t);
}
bool StateDict::contains(const std::string& key) const {
  for (const auto& [k, v] : items_)
    if (k == key) return true;
  return false;
}
const Tensor& StateDict::at(const std::string& key) const& {
  for (const auto& [k, v] : items_)
    if (k == key) return v;
  throw std::out_of_range("state dict has no key '" + key + "'");
}
std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : items_) out.push_back(k);
  return out;
}

namespace nn {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  if (t.defined()) t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}
Tensor Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  if (params)
    for (const auto& [n, t] : params_)
      if (t.defined()) out.emplace_back(prefix + n, t);
  if (buffers)
    for (const auto& [n, t] : buffers_)
      if (t.defined()) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", params, buffers, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, false, out);
  return out;
}
std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, true, out);
  return out;
}
std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}
int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [k, t] : named_parameters()) n += t.numel();
  return n;
}
void Module::zero_grad() {
  for (auto& [k, t] : named_parameters()) t.zero_grad();
}
void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::to(Device device) {
  // Moves storage under the existing handles so that layers' member tensors stay valid.
  for (auto& [k, t] : named_parameters()) {
    if (t.device() == device) continue;
    Tensor moved = t.to(device);
    t.impl()->storage = moved.impl()->storage;
    t.impl()->offset = 0;
    t.zero_grad();
  }
  for (auto& [k, t] : named_buffers()) {
    if (t.device() == device || t.dtype() != DType::f32) continue;  // counters stay on the host
    Tensor moved = t.to(device);
    t.impl()->storage = moved.impl()->storage;
    t.impl()->offset = 0;
  }
}

StateDict Module::state_dict() const {
  StateDict sd;
  std::vector<std::pair<std::string, Tensor>> all;
  collect("", true, true, all);
  // PyTorch's order is per module: parameters, then buffers, then children; collect() with both
  // flags set produces exactly that.
  for (auto& [k, t] : all) sd.set(k, t);
  return sd;
}

void Module::load_state_dict(const StateDict& sd, bool strict) {
  const StateDict mine = state_dict();
  // Check everything first so that a failure changes nothing.
  std::set<std::string> known;
  for (const auto& [key, t] : mine.items()) {
    known.insert(key);
    if (!sd.contains(key)) {
      if (strict)
        throw std::invalid_argument("load_state_dict: missing key '" + key + "' (expected " +
                                    to_string(t.dtype()) + " " + to_string(t.shape()) + ")");
      continue;
    }
    const Tensor& src = sd.at(key);
    if (src.dtype() != t.dtype())
      throw std::invalid_argument("load_state_dict: key '" + key + "' has dtype " +
                                  to_string(src.dtype()) + ", expected " + to_string(t.dtype()));
    if (src.shape() != t.shape())
      throw std::invalid_argument("load_state_dict: key '" + key + "' has shape " +
                                  to_string(src.shape()) + ", expected " + to_string(t.shape()));
  }
  if (strict)
    for (const auto& [key, t] : sd.items())
      if (!known.count(key))
        throw std::invalid_argument("load_state_dict: unexpected key '" + key +
                                    "' (the model has no parameter or buffer of that name)");
  NoGradGuard no_grad;
  for (const auto& [key, t] : mine.items())
    if (sd.contains(key)) {
      Tensor dst = t;
      dst.copy_from(sd.at(key));
    }
}

// ---- initialisation randomness --------------------------------------------------------------------
std::mt19937_64& init_rng() {
  static std::mt19937_64 rng(0x4a4c4f);
  return rng;
}
void manual_seed(uint64_t seed) { init_rng().seed(seed); }

}  // namespace nn
}  // namespace halo
