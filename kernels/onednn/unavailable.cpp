// Stands in for kernels/onednn/conv.cpp in a build without oneDNN (HALO_ONEDNN=OFF, or AUTO where
// libdnnl-dev is missing): available() is false and every oneDNN convolution says how to get it,
// so a caller that skipped the available() check gets a clear error instead of a link failure.
#include <stdexcept>
#include <string>

#include "kernels/conv.h"
#include "kernels/onednn/settings.h"

namespace halo::kernels::onednn {

bool available() {
  return false;
}

namespace {
[[noreturn]] void unavailable(const char* fn) {
  throw std::runtime_error(std::string("kernels::onednn::") + fn +
                           ": Halo was built without oneDNN (install libdnnl-dev and rebuild; "
                           "HALO_ONEDNN=AUTO finds it)");
}
}  // namespace

void conv2d_forward(const Conv2dShape&, const float*, const float*, const float*, float*) {
  unavailable("conv2d_forward");
}
void conv2d_backward_data(const Conv2dShape&, const float*, const float*, float*) {
  unavailable("conv2d_backward_data");
}
void conv2d_backward_weight(const Conv2dShape&, const float*, const float*, float*) {
  unavailable("conv2d_backward_weight");
}

}  // namespace halo::kernels::onednn
