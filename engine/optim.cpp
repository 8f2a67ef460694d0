// Adam (see optim.h): per-parameter moment buffers and step counts; the arithmetic is one call of
// kernels::cpu::adam_step per parameter tensor on the CPU, one fused kernels::cuda::adam_step
// launch for all parameters on the GPU.
#include "engine/optim.h"

#include <map>
#include <stdexcept>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/common.h"

namespace halo {

Adam::Adam(std::vector<std::pair<std::string, Tensor>> named_params, kernels::AdamConfig config)
    : config_(config) {
  if (!(config.lr >= 0) || !(config.eps >= 0) || !(config.beta1 >= 0 && config.beta1 < 1) ||
      !(config.beta2 >= 0 && config.beta2 < 1) || !(config.weight_decay >= 0))
    throw std::invalid_argument("Adam: need lr >= 0, eps >= 0, 0 <= beta < 1, weight_decay >= 0");
  for (auto& [name, p] : named_params) {
    if (!p.requires_grad()) continue;
    Slot s;
    s.name = name;
    s.param = p;
    s.exp_avg = Tensor::zeros(p.shape(), p.device());
    s.exp_avg_sq = Tensor::zeros(p.shape(), p.device());
    slots_.push_back(std::move(s));
  }
}

void Adam::step() {
  // GPU parameters: one fused launch (kernels::cuda::adam_step) per distinct step count, which in
  // a normal training run means one launch for the whole model.
  std::map<long long, std::vector<kernels::cuda::AdamTensor>> gpu;
  for (Slot& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    if (g.device() != s.param.device())
      throw std::invalid_argument("Adam: gradient of '" + s.name + "' is on " +
                                  to_string(g.device()) + ", the parameter on " +
                                  to_string(s.param.device()));
    ++s.step;
    if (s.param.device() == Device::cuda) {
      gpu[s.step].push_back({s.param.data(), g.data(), s.exp_avg.data(), s.exp_avg_sq.data(),
                             static_cast<std::size_t>(s.param.numel())});
    } else {
      kernels::cpu::adam_step<float>(s.param.numel(), config_, s.step, s.param.data(), g.data(),
                                     s.exp_avg.data(), s.exp_avg_sq.data());
    }
  }
#if HALO_HAVE_CUDA
  for (auto& [step, list] : gpu)
    kernels::cuda::adam_step(list.data(), static_cast<int>(list.size()), config_, step,
                             ops_detail::gpu_stream());
#else
  if (!gpu.empty()) ops_detail::not_built_with_cuda();
#endif
}

void Adam::zero_grad() {
  for (Slot& s : slots_) s.param.zero_grad();
}

StateDict Adam::state() const {
  StateDict sd;
  for (const Slot& s : slots_) {
    sd.set(s.name + ".exp_avg", s.exp_avg);
    sd.set(s.name + ".exp_avg_sq", s.exp_avg_sq);
    sd.set(s.name + ".step", Tensor::scalar_i64(s.step));
  }
  return sd;
}

void Adam::load_state(const StateDict& sd) {
  // Validate all keys first so that a bad file changes nothing.
  for (const Slot& s : slots_) {
    for (const char* suffix : {".exp_avg", ".exp_avg_sq"}) {
      const std::string key = s.name + suffix;
      if (!sd.contains(key)) throw std::invalid_argument("Adam state: missing key '" + key + "'");
      const Tensor& t = sd.at(key);
      if (t.dtype() != DType::f32 || t.shape() != s.param.shape())
        throw std::invalid_argument("Adam state: key '" + key + "' is " + t.str() +
                                    ", expected float32 " + to_string(s.param.shape()));
    }
    const std::string key = s.name + ".step";
    if (!sd.contains(key)) throw std::invalid_argument("Adam state: missing key '" + key + "'");
    if (sd.at(key).dtype() != DType::i64 || sd.at(key).numel() != 1)
      throw std::invalid_argument("Adam state: key '" + key + "' must be an int64 scalar");
  }
  for (Slot& s : slots_) {
    s.exp_avg.copy_from(sd.at(s.name + ".exp_avg"));
    s.exp_avg_sq.copy_from(sd.at(s.name + ".exp_avg_sq"));
    s.step = sd.at(s.name + ".step").data_i64()[0];
  }
}

}  // namespace halo
