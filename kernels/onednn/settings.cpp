// The CPU convolution switch of settings.h: one atomic, no oneDNN calls, so a build without oneDNN
// shares it (available() comes from conv.cpp or, without oneDNN, unavailable.cpp).
#include "kernels/onednn/settings.h"

#include <atomic>
#include <stdexcept>
#include <string>

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
  if (k != CpuConvKernels::halo && !available())
    throw std::runtime_error(std::string("CPU convolution kernels '") + to_string(k) +
                             "': Halo was built without oneDNN (install libdnnl-dev and rebuild, "
                             "or use halo)");
  g_kernels = k;
}

CpuConvKernels cpu_conv_kernels() {
  return g_kernels;
}

const char* to_string(CpuConvKernels k) {
  switch (k) {
    case CpuConvKernels::halo:
      return "halo";
    case CpuConvKernels::onednn:
      return "onednn";
    case CpuConvKernels::fastest:
      return "fastest";
  }
  return "?";
}

CpuConvKernels parse_cpu_conv_kernels(const std::string& name) {
  if (name == "halo") return CpuConvKernels::halo;
  if (name == "onednn") return CpuConvKernels::onednn;
  if (name == "fastest") return CpuConvKernels::fastest;
  throw std::invalid_argument("CPU convolution kernels '" + name +
                              "': expected halo, onednn or fastest");
}

}  // namespace halo::kernels::onednn
