// Hand-written CUDA mean squared error (kernels/loss.h). The forward writes the loss to a device
// scalar (no host synchronisation: the host reads it only when it reports the loss); the
// reduction is one block with double accumulators in a fixed order, so it is deterministic.
#include "kernels/cuda/common.h"
#include "kernels/loss.h"

namespace halo::kernels::cuda {

namespace {
constexpr int kThreads = 1024;

// One block: each thread sums a strided share of (p - t)^2 in double, then a block reduction.
// The regression head has one output per image, so n is the batch size; one block is plenty.
__global__ void mse_forward_kernel(std::size_t n, const float* __restrict__ pred,
                                   const float* __restrict__ target, float* __restrict__ loss) {
  double acc[1] = {0.0};
  for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double d = double(pred[i]) - double(target[i]);
    acc[0] += d * d;
  }
  block_sum<1>(acc);
  if (threadIdx.x == 0) *loss = float(acc[0] / double(n));
}

// dpred = (2/n (p - t)) dloss, the order of the CPU reference (and PyTorch).
__global__ void mse_backward_kernel(std::size_t n, float norm, const float* __restrict__ pred,
                                    const float* __restrict__ target,
                                    const float* __restrict__ dloss, float* __restrict__ dpred) {
  const float g = dloss ? *dloss : 1.f;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    dpred[i] = norm * (pred[i] - target[i]) * g;
}
}  // namespace

// 3n FLOPs; traffic: pred and target read (8n bytes), 4 bytes written.
void mse_forward(std::size_t n, const float* pred, const float* target, float* loss, void* stream) {
  if (n == 0) throw std::invalid_argument("kernels/cuda/loss.cu: mse_forward: n must be >= 1");
  HALO_LAUNCH(1, kThreads, as_stream(stream), mse_forward_kernel)(n, pred, target, loss);
}

// 3n FLOPs; traffic: pred and target read, dpred written (12n bytes).
void mse_backward(std::size_t n, const float* pred, const float* target, const float* dloss,
                  float* dpred, void* stream) {
  if (n == 0) return;
  const float norm = float(2.0 / double(n));
  HALO_LAUNCH(grid_for(n, 256), 256, as_stream(stream), mse_backward_kernel)
  (n, norm, pred, target, dloss, dpred);
}

}  // namespace halo::kernels::cuda
