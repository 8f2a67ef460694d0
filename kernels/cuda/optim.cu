// Hand-written CUDA Adam / AdamW (kernels/optim.h): one launch updates every parameter tensor of
// a model. The kernel reads a small device table of {p, g, m, v, n, first block} and each block
// finds its tensor by binary search over the first-block column, so 62-128 tensors of very
// different sizes cost one launch instead of one each.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "kernels/cuda/common.h"
#include "kernels/optim.h"

namespace halo::kernels::cuda {

namespace {
constexpr int kThreads = 256;
constexpr int kPerBlock = 4 * kThreads;  // elements of one tensor handled by one block

struct DeviceTensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  unsigned long long n;
  unsigned first_block;  // blocks [first_block, next tensor's first_block) update this tensor
  bool operator==(const DeviceTensor& o) const {
    return p == o.p && g == o.g && m == o.m && v == o.v && n == o.n && first_block == o.first_block;
  }
};

// The per-step scalars, formed in double on the host exactly as the CPU reference does and
// rounded to float once.
struct AdamScalars {
  float step_size;  // lr / (1 - beta1^t)
  float bc2_sqrt;   // sqrt(1 - beta2^t)
  float eps, one_minus_b1, beta2, one_minus_b2, wd, decay;
  int coupled, decoupled;
};

// Per element: g' = g + wd p (coupled) | p *= 1 - lr wd (decoupled); m += (1 - b1)(g' - m);
// v = b2 v + (1 - b2) g'^2; p -= step_size * m / (sqrt(v) / bc2_sqrt + eps).
__global__ void __launch_bounds__(kThreads)
    adam_multi_kernel(const DeviceTensor* __restrict__ table, int count, AdamScalars s) {
  int lo = 0, hi = count - 1;  // the last tensor whose first_block <= blockIdx.x
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table[mid].first_block <= blockIdx.x)
      lo = mid;
    else
      hi = mid - 1;
  }
  const DeviceTensor t = table[lo];
  const unsigned long long begin = (unsigned long long)(blockIdx.x - t.first_block) * kPerBlock;
  const unsigned long long end = begin + kPerBlock < t.n ? begin + kPerBlock : t.n;
  for (unsigned long long i = begin + threadIdx.x; i < end; i += blockDim.x) {
    float grad = t.g[i];
    float p = t.p[i];
    if (s.coupled) grad = grad + s.wd * p;
    if (s.decoupled) p = p * s.decay;
    float m = t.m[i];
    m = m + s.one_minus_b1 * (grad - m);
    const float v = t.v[i] * s.beta2 + s.one_minus_b2 * grad * grad;
    const float denom = sqrtf(v) / s.bc2_sqrt + s.eps;
    t.p[i] = p - s.step_size * (m / denom);
    t.m[i] = m;
    t.v[i] = v;
  }
}

// The device copy of the table, per device. It changes whenever a gradient buffer moves, which
// the engine's caching allocator may do at any step, so an update must be cheap and must not
// synchronise: the new table is written into a pinned host buffer and copied with one
// cudaMemcpyAsync on the step's stream (a few kilobytes, asynchronous, and capturable in a CUDA
// graph). Two pinned buffers are used in turn, each reused only after its previous copy has run
// (an event), so the host never overwrites a table the GPU has not read yet.
struct Table {
  std::vector<DeviceTensor> host;
  DeviceTensor* device = nullptr;
  std::size_t capacity = 0;
  DeviceTensor* pinned[2] = {nullptr, nullptr};
  cudaEvent_t copied[2] = {nullptr, nullptr};
  int next = 0;
  unsigned long long uploads = 0;
};
std::mutex table_mutex;
Table tables[64];
}  // namespace

// Work ~15 FLOPs per element; traffic: p, g, m, v read and p, m, v written (28 bytes per
// parameter), the ideal for a memory-bound optimizer step.
void adam_step(const AdamTensor* tensors, int count, const AdamConfig& cfg, long long step,
               void* stream) {
  if (count <= 0) return;
  if (step < 1) throw std::invalid_argument("kernels/cuda/optim.cu: adam_step: step must be >= 1");
  std::vector<DeviceTensor> list(static_cast<std::size_t>(count));
  unsigned long long blocks = 0;
  for (int i = 0; i < count; ++i) {
    const AdamTensor& t = tensors[i];
    list[i] = {t.p, t.g, t.m, t.v, (unsigned long long)t.n, unsigned(blocks)};
    blocks += (t.n + kPerBlock - 1) / kPerBlock;
  }
  if (blocks == 0) return;
  if (blocks >= (1ULL << 31))
    throw std::invalid_argument(
        "kernels/cuda/optim.cu: adam_step: too many parameters for one launch");

  int dev = 0;
  HALO_CUDA_CHECK(cudaGetDevice(&dev));
  const cudaStream_t st = as_stream(stream);
  DeviceTensor* table = nullptr;
  {
    std::lock_guard<std::mutex> lock(table_mutex);
    Table& tb = tables[dev % 64];
    if (tb.host != list) {
      if (tb.capacity < list.size()) {
        // Only when the model grows (in practice once, at the first step).
        if (tb.device) {
          HALO_CUDA_CHECK(cudaDeviceSynchronize());  // a queued step may still read the table
          HALO_CUDA_CHECK(cudaFree(tb.device));
          for (int i = 0; i < 2; ++i) HALO_CUDA_CHECK(cudaFreeHost(tb.pinned[i]));
        }
        tb.device = nullptr;
        tb.capacity = 0;
        const std::size_t bytes = list.size() * sizeof(DeviceTensor);
        HALO_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&tb.device), bytes));
        for (int i = 0; i < 2; ++i) {
          HALO_CUDA_CHECK(
              cudaHostAlloc(reinterpret_cast<void**>(&tb.pinned[i]), bytes, cudaHostAllocDefault));
          if (!tb.copied[i])
            HALO_CUDA_CHECK(cudaEventCreateWithFlags(&tb.copied[i], cudaEventDisableTiming));
        }
        tb.capacity = list.size();
      }
      const int slot = tb.next;
      tb.next ^= 1;
      HALO_CUDA_CHECK(cudaEventSynchronize(tb.copied[slot]));  // its previous copy has run
      std::copy(list.begin(), list.end(), tb.pinned[slot]);
      // Ordered on `stream` after any earlier step that reads the old table.
      HALO_CUDA_CHECK(cudaMemcpyAsync(tb.device, tb.pinned[slot],
                                      list.size() * sizeof(DeviceTensor), cudaMemcpyHostToDevice,
                                      st));
      HALO_CUDA_CHECK(cudaEventRecord(tb.copied[slot], st));
      tb.host = list;
      tb.uploads++;
    }
    table = tb.device;
  }

  const double lr = cfg.lr, b1 = cfg.beta1, b2 = cfg.beta2, wd = cfg.weight_decay;
  AdamScalars s;
  s.step_size = float(lr / (1.0 - std::pow(b1, double(step))));
  s.bc2_sqrt = float(std::sqrt(1.0 - std::pow(b2, double(step))));
  s.eps = float(cfg.eps);
  s.one_minus_b1 = float(1.0 - b1);
  s.beta2 = float(b2);
  s.one_minus_b2 = float(1.0 - b2);
  s.wd = float(wd);
  s.decay = float(1.0 - lr * wd);
  s.coupled = wd != 0.0 && !cfg.decoupled;
  s.decoupled = wd != 0.0 && cfg.decoupled;
  HALO_LAUNCH(unsigned(blocks), kThreads, st, adam_multi_kernel)(table, count, s);
}

}  // namespace halo::kernels::cuda
