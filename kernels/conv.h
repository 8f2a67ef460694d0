// Convolution kernels on raw NCHW memory: shapes and the CPU, CUDA and cuDNN entry points.
// Forward, backward-data and backward-weight of a 2-D convolution with stride, zero padding and
// groups (groups == channels is the depthwise case ConvNeXt uses). No tensors here: pointers only.
#pragma once

namespace halo::kernels {

// y[n, co, oy, ox] = b[co] + sum_{ci in group(co), ky, kx} w[co, ci, ky, kx] *
//                     x[n, g*cin_g + ci, oy*stride - pad + ky, ox*stride - pad + kx]
// x: [n, c_in, h, w], w: [c_out, c_in/groups, kh, kw], y: [n, c_out, h_out, w_out].
struct Conv2dShape {
  int n = 1, c_in = 1, h = 1, w = 1;  // input
  int c_out = 1, kh = 1, kw = 1;      // filters
  int stride = 1, pad = 0, groups = 1;

  int h_out() const { return (h + 2 * pad - kh) / stride + 1; }
  int w_out() const { return (w + 2 * pad - kw) / stride + 1; }
  int c_in_per_group() const { return c_in / groups; }
  int c_out_per_group() const { return c_out / groups; }
  long long x_size() const { return 1LL * n * c_in * h * w; }
  long long w_size() const { return 1LL * c_out * c_in_per_group() * kh * kw; }
  long long y_size() const { return 1LL * n * c_out * h_out() * w_out(); }
  // Multiply-accumulates of one forward pass (the backward passes cost the same each).
  long long macs() const { return y_size() * c_in_per_group() * kh * kw; }
};

namespace cpu {
// All outputs are overwritten (not accumulated). bias may be nullptr.
template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);
// dx = sum over outputs of dy * w (the transposed convolution of dy).
template <class T>
void conv2d_backward_data(const Conv2dShape& s, const T* dy, const T* w, T* dx);
// dw = sum over batch and output pixels of dy * x.
template <class T>
void conv2d_backward_weight(const Conv2dShape& s, const T* x, const T* dy, T* dw);
// db[co] = sum over batch and output pixels of dy[n, co, :, :].
template <class T>
void conv2d_backward_bias(const Conv2dShape& s, const T* dy, T* db);

// Plain loops straight from the definition above: the reference the fast paths are tested against.
template <class T>
void conv2d_forward_reference(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);
template <class T>
void conv2d_backward_data_reference(const Conv2dShape& s, const T* dy, const T* w, T* dx);
template <class T>
void conv2d_backward_weight_reference(const Conv2dShape& s, const T* x, const T* dy, T* dw);
}  // namespace cpu

}  // namespace halo::kernels

// ---- GPU entry points (built only with CUDA; float32, device pointers, NCHW) ----------------------
// Same contract as the CPU functions above; `stream` is a cudaStream_t (nullptr: default stream),
// and the work is queued on it without synchronising. Hand-written kernels in kernels/cuda/conv.cu
// (implicit GEMM, a dedicated depthwise path), cuDNN in kernels/cudnn/conv.cpp.
namespace halo::kernels::cuda {
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, void* stream);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          void* stream);
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            void* stream);
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db, void* stream);
}  // namespace halo::kernels::cuda

namespace halo::kernels::cudnn {
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, void* stream);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          void* stream);
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            void* stream);
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db, void* stream);

// The implementation chosen at run time by cudnn::set_conv_backend (kernels/cudnn/settings.h).
namespace dispatch {
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, void* stream);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          void* stream);
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            void* stream);
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db, void* stream);
}  // namespace dispatch
}  // namespace halo::kernels::cudnn

// ---- oneDNN entry points (CPU; float32, host pointers, NCHW)
// -------------------------------------- The CPU's vendor path, beside Halo's own cpu:: kernels as
// cuDNN stands beside the hand-written CUDA kernels. Same contract as the cpu:: functions above: x,
// y, dx, dy plain NCHW, w and dw plain [c_out, c_in/groups, kh, kw], all outputs overwritten, bias
// may be nullptr. oneDNN computes in its own blocked layouts; the reorders to and from them happen
// inside each call. Implemented in kernels/onednn/conv.cpp; in a build without oneDNN they throw
// std::runtime_error (check onednn::available() in kernels/onednn/settings.h first). Which one the
// engine runs on the CPU: onednn::set_cpu_conv_kernels in the same header.
namespace halo::kernels::onednn {
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw);
}  // namespace halo::kernels::onednn
