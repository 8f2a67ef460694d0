// cuDNN and cuBLAS are not emulated: on the emulated CUDA device the hand-written kernels of
// kernels/cuda/ run, and asking for the vendor libraries (--gpu-kernels cudnn, or a test of the
// cuDNN path) fails with this message instead.
#include <stdexcept>
#include <string>

#include "kernels/blas.h"
#include "kernels/conv.h"
#include "kernels/cudnn/settings.h"
#include "kernels/norm.h"

namespace halo::kernels::cudnn {

namespace {
[[noreturn]] void needs_gpu(const char* what) {
  throw std::runtime_error(std::string(what) +
                           ": cuDNN and cuBLAS need a real GPU; this is the emulated CUDA device "
                           "(a -DHALO_CUDA=EMULATED build), which runs Halo's hand-written kernels "
                           "only (--gpu-kernels handwritten)");
}
}  // namespace

void conv2d_forward(const Conv2dShape&, const float*, const float*, const float*, float*, void*) {
  needs_gpu("cuDNN convolution forward");
}
void conv2d_backward_data(const Conv2dShape&, const float*, const float*, float*, void*) {
  needs_gpu("cuDNN convolution backward-data");
}
void conv2d_backward_weight(const Conv2dShape&, const float*, const float*, float*, void*) {
  needs_gpu("cuDNN convolution backward-weight");
}
void conv2d_backward_bias(const Conv2dShape&, const float*, float*, void*) {
  needs_gpu("cuDNN convolution bias gradient");
}
void batch_norm_forward_train(const NormShape&, const float*, const float*, const float*, float,
                              float, float*, float*, float*, float*, float*, void*) {
  needs_gpu("cuDNN batch norm");
}
void batch_norm_forward_eval(const NormShape&, const float*, const float*, const float*,
                             const float*, const float*, float, float*, void*) {
  needs_gpu("cuDNN batch norm");
}
void batch_norm_backward(const NormShape&, const float*, const float*, const float*, const float*,
                         const float*, bool, float*, float*, float*, void*) {
  needs_gpu("cuDNN batch norm backward");
}
void gemm(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*,
          int, void*) {
  needs_gpu("cuBLAS GEMM");
}
void linear_forward(const LinearShape&, const float*, const float*, const float*, float*, void*) {
  needs_gpu("cuBLAS linear forward");
}
void linear_backward(const LinearShape&, const float*, const float*, const float*, float*, float*,
                     float*, void*) {
  needs_gpu("cuBLAS linear backward");
}
void clear_conv_plans() {}

}  // namespace halo::kernels::cudnn
