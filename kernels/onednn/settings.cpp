// The CPU convolution switch of settings.h: one atomic, no oneDNN calls, so a build without oneDNN
// shares it (available() comes from conv.cpp or, without oneDNN, unavailable.cpp).
#include "kernels/onednn/settings.h"

#include <atomic>
#include <stdexcept>

namespace halo::kernels::onednn {

namespace {
#ifdef HALO_HAVE_ONEDNN
constexpr CpuConvKernels kDefault = CpuConvKernels::onednn;
#else
constexpr CpuConvKernels kDefault = CpuConvKernels::halo;
#endif
std::atomic<CpuConvKernels> g_kernels{kDefault};
}  // namespace

CpuConvKernels default_cpu_conv_kernels() {
  return kDefault;
}

void set_cpu_conv_kernels(CpuConvKernels k) {
  if (k == CpuConvKernels::onednn && !available())
    throw std::runtime_error(
        "CPU convolution kernels 'onednn': Halo was built without oneDNN (install libdnnl-dev and "
        "rebuild, or use halo)");
  g_kernels = k;
}

CpuConvKernels cpu_conv_kernels() {
  return g_kernels;
}

const char* to_string(CpuConvKernels k) {
  return k == CpuConvKernels::onednn ? "onednn" : "halo";
}

CpuConvKernels parse_cpu_conv_kernels(const std::string& name) {
  if (name == "halo") return CpuConvKernels::halo;
  if (name == "onednn") return CpuConvKernels::onednn;
  throw std::invalid_argument("CPU convolution kernels '" + name + "': expected halo or onednn");
}

}  // namespace halo::kernels::onednn
