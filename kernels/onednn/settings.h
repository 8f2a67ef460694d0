// Run-time choice of the CPU convolution implementation: Halo's own kernels (kernels/cpu/conv.cpp,
// the reference and the teaching path) or oneDNN's (kernels/onednn/conv.cpp), as the GPU chooses
// between the hand-written kernels and cuDNN (kernels/cudnn/settings.h). Includable everywhere:
// no oneDNN headers; built whether or not oneDNN is.
#pragma once
#include <string>

namespace halo::kernels::onednn {

// True when Halo was built with oneDNN (HALO_ONEDNN, kernels/CMakeLists.txt); otherwise the
// onednn:: convolutions throw std::runtime_error saying how to get them.
bool available();

// halo: Halo's kernels for every convolution. onednn: oneDNN's, except depthwise convolutions,
// which stay Halo's (engine/ops/conv.cpp says why). fastest: for each shape and pass (forward,
// backward-data, backward-weight), both are timed on first use and the faster one is kept for the
// rest of the process, as PyTorch's cudnn.benchmark does on the GPU; the two agree to float
// rounding (tests/models/test_onednn_models.cpp), but which one ran may differ between processes,
// so a run resumed in a new process is no longer bit for bit the uninterrupted one.
enum class CpuConvKernels { halo, onednn, fastest };

// onednn where it is built, else halo: the deterministic choices (fastest is opt-in because its
// choice depends on timings).
CpuConvKernels default_cpu_conv_kernels();
// Which implementation engine/ops/conv.cpp runs for float32 convolutions on the CPU (forward,
// backward-data, backward-weight; the bias gradient is always Halo's). Choosing onednn in a build
// without it throws std::runtime_error rather than silently running Halo's.
void set_cpu_conv_kernels(CpuConvKernels k);
CpuConvKernels cpu_conv_kernels();

// "halo" / "onednn" / "fastest"; parse throws std::invalid_argument ("... expected halo, onednn
// or fastest").
const char* to_string(CpuConvKernels k);
CpuConvKernels parse_cpu_conv_kernels(const std::string& name);

// Sets the CPU convolution kernels for a scope and restores the previous choice after it (tests,
// benchmarks).
class ScopedCpuConvKernels {
 public:
  explicit ScopedCpuConvKernels(CpuConvKernels k) : saved_(cpu_conv_kernels()) {
    set_cpu_conv_kernels(k);
  }
  ~ScopedCpuConvKernels() { set_cpu_conv_kernels(saved_); }
  ScopedCpuConvKernels(const ScopedCpuConvKernels&) = delete;
  ScopedCpuConvKernels& operator=(const ScopedCpuConvKernels&) = delete;

 private:
  CpuConvKernels saved_;
};

}  // namespace halo::kernels::onednn
