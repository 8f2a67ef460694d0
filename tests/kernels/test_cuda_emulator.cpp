// The emulated CUDA device (kernels/cuda_emulator) catches what a GPU would not forgive: each test
// below runs a deliberately broken kernel and checks that the emulator reports it (or, for a read
// past an allocation, that the sanitizer build does), beside the correct kernel, which passes.
// Built only with -DHALO_CUDA=EMULATED; the real-GPU build and the CPU-only build list it skipped.
#include <gtest/gtest.h>

#ifdef HALO_CUDA_EMULATED

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda/common.h"
#include "kernels/cuda_emulator/emulator.h"

namespace {

namespace emu = halo::cuda_emulator;
using halo::kernels::cuda::block_sum;

// ---- kernels ----------------------------------------------------------------------------------

// Correct: every thread stores its value, a barrier, then thread 0 sums the block in order.
__global__ void sum_with_barrier(const float* x, float* out) {
  HALO_SHARED(float, vals, [256]);
  vals[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.f;
    for (unsigned i = 0; i < blockDim.x; ++i) s += vals[i];
    out[blockIdx.x] = s;
  }
}

// Broken: the barrier between the stores and thread 0's reads is missing.
__global__ void sum_missing_barrier(const float* x, float* out) {
  HALO_SHARED(float, vals, [256]);
  vals[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
  if (threadIdx.x == 0) {
    float s = 0.f;
    for (unsigned i = 0; i < blockDim.x; ++i) s += vals[i];
    out[blockIdx.x] = s;
  }
}

// Broken: only half of the block reaches the barrier.
__global__ void divergent_barrier(float* out) {
  if (threadIdx.x < blockDim.x / 2) __syncthreads();
  out[threadIdx.x] = 1.f;
}

// Broken: thread 0 leaves before the barrier the others wait at.
__global__ void exit_before_barrier(float* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1.f;
}

// Broken when blockDim.x is not a multiple of 32: a full-mask shuffle in the last, partial warp.
__global__ void full_mask_shuffle(const float* x, float* out) {
  float v = x[threadIdx.x];
  v = halo::kernels::cuda::warp_sum(v);
  out[threadIdx.x] = v;
}

// Correct: block_sum of common.h (warp shuffles, shared partials, two barriers).
__global__ void block_sum_kernel(const float* x, int n, float* out) {
  float acc[1] = {0.f};
  for (int i = int(threadIdx.x); i < n; i += int(blockDim.x)) acc[0] += x[i];
  block_sum<1>(acc);
  if (threadIdx.x == 0) out[0] = acc[0];
}

// Broken: reads one element past the end of `x` (n elements).
__global__ void read_past_end(const float* x, int n, float* out) {
  out[0] = x[n];
}

// Reads shared memory that no thread wrote.
__global__ void read_unwritten_shared(float* out) {
  HALO_SHARED(float, vals, [64]);
  out[threadIdx.x] = vals[threadIdx.x];
}

// ---- helpers ----------------------------------------------------------------------------------

std::vector<float> iota_floats(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.25f * float(i % 97) - 3.f + 1e-3f * float(i);
  return v;
}

struct Buffer {
  float* p = nullptr;
  std::size_t n = 0;
  explicit Buffer(std::size_t count) : n(count) {
    HALO_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(float)));
  }
  explicit Buffer(const std::vector<float>& host) : Buffer(host.size()) {
    HALO_CUDA_CHECK(cudaMemcpy(p, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~Buffer() { cudaFree(p); }
  std::vector<float> get() const {
    std::vector<float> h(n);
    HALO_CUDA_CHECK(cudaDeviceSynchronize());
    HALO_CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
  }
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs `launch`, waits for it, and returns its fault's message ("" if none). As on a GPU, the
// error is also the runtime's last error until cudaGetLastError() reads it: checked and cleared.
template <class F>
std::string fault_of(F&& launch) {
  std::string msg;
  try {
    launch();
    const cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) msg = cudaGetErrorString(e);
  } catch (const std::exception& e) {
    msg = e.what();
  }
  if (!msg.empty()) EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  return msg;
}

class CudaEmulator : public ::testing::Test {
 protected:
  void SetUp() override { RecordProperty("device", "emulated"); }
  void TearDown() override { emu::set_thread_order(emu::ThreadOrder::forward); }
};

// ---- the tests --------------------------------------------------------------------------------

TEST_F(CudaEmulator, CorrectKernelIsBitIdenticalUnderEveryThreadOrder) {
  const std::vector<float> x = iota_floats(4 * 256);
  Buffer dx(x), out(4), out_bs(1);
  std::vector<std::vector<float>> results, block_sums;
  for (auto order :
       {emu::ThreadOrder::forward, emu::ThreadOrder::reverse, emu::ThreadOrder::shuffled}) {
    emu::set_thread_order(order, 7);
    HALO_LAUNCH(4, 256, nullptr, sum_with_barrier)(dx.p, out.p);
    HALO_LAUNCH(1, 96, nullptr, block_sum_kernel)(dx.p, int(x.size()), out_bs.p);
    results.push_back(out.get());
    block_sums.push_back(out_bs.get());
  }
  for (std::size_t b = 0; b < 4; ++b) {
    double ref = 0;
    for (std::size_t i = 0; i < 256; ++i) ref += x[b * 256 + i];
    EXPECT_NEAR(results[0][b], ref, 1e-3 * std::abs(ref) + 1e-3) << "block " << b;
  }
  EXPECT_TRUE(std::isfinite(block_sums[0][0]));
  for (std::size_t k = 1; k < results.size(); ++k) {
    EXPECT_TRUE(same_bits(results[0], results[k])) << "order " << k;
    EXPECT_TRUE(same_bits(block_sums[0], block_sums[k])) << "order " << k;
  }
}

TEST_F(CudaEmulator, MissingBarrierGivesDifferentResultsUnderTwoOrders) {
  const std::vector<float> x = iota_floats(2 * 256);
  Buffer dx(x), out(2);
  emu::set_thread_order(emu::ThreadOrder::forward);
  HALO_LAUNCH(2, 256, nullptr, sum_missing_barrier)(dx.p, out.p);
  const std::vector<float> forward = out.get();
  emu::set_thread_order(emu::ThreadOrder::reverse);
  HALO_LAUNCH(2, 256, nullptr, sum_missing_barrier)(dx.p, out.p);
  const std::vector<float> reverse = out.get();
  // Forward: thread 0 runs first and reads 255 slots nobody has written yet (NaN); reverse: every
  // other thread has stored before it. Either way the two orders disagree.
  EXPECT_FALSE(same_bits(forward, reverse));
  EXPECT_TRUE(std::isnan(forward[0])) << forward[0];
  EXPECT_TRUE(std::isfinite(reverse[0])) << reverse[0];
}

TEST_F(CudaEmulator, DivergentBarrierIsReportedWithKernelAndBlock) {
  Buffer out(64);
  const std::string msg = fault_of([&] {
    HALO_LAUNCH(dim3(3, 2), 64, nullptr, divergent_barrier)
    (out.p);
  });
  EXPECT_NE(msg.find("barrier divergence"), std::string::npos) << msg;
  EXPECT_NE(msg.find("divergent_barrier"), std::string::npos) << msg;
  EXPECT_NE(msg.find(") block ("), std::string::npos) << msg;
  EXPECT_NE(msg.find("have finished"), std::string::npos) << msg;
  // The device stays usable (on a GPU this fault would be sticky and end the process's context).
  const std::vector<float> x = iota_floats(256);
  Buffer dx(x), sum(1);
  HALO_LAUNCH(1, 256, nullptr, sum_with_barrier)(dx.p, sum.p);
  EXPECT_TRUE(std::isfinite(sum.get()[0]));
}

TEST_F(CudaEmulator, ThreadLeavingBeforeABarrierIsReported) {
  Buffer out(32);
  const std::string msg = fault_of([&] {
    HALO_LAUNCH(1, 32, nullptr, exit_before_barrier)
    (out.p);
  });
  EXPECT_NE(msg.find("barrier divergence"), std::string::npos) << msg;
  EXPECT_NE(msg.find("exit_before_barrier"), std::string::npos) << msg;
  EXPECT_NE(msg.find("threads 0 have finished"), std::string::npos) << msg;
}

TEST_F(CudaEmulator, ShuffleInAPartialWarpIsReported) {
  const std::vector<float> x = iota_floats(64);
  Buffer dx(x), out(64);
  // 64 threads: two full warps, fine.
  EXPECT_EQ(fault_of([&] { HALO_LAUNCH(1, 64, nullptr, full_mask_shuffle)(dx.p, out.p); }), "");
  // 48 threads: the second warp has 16 lanes, the mask names 32.
  const std::string msg = fault_of([&] {
    HALO_LAUNCH(1, 48, nullptr, full_mask_shuffle)
    (dx.p, out.p);
  });
  EXPECT_NE(msg.find("partial warp"), std::string::npos) << msg;
  EXPECT_NE(msg.find("full_mask_shuffle"), std::string::npos) << msg;
}

TEST_F(CudaEmulator, SharedMemoryStartsAsNaNInEveryBlock) {
  Buffer out(64);
  HALO_LAUNCH(1, 64, nullptr, read_unwritten_shared)(out.p);
  for (float v : out.get()) EXPECT_TRUE(std::isnan(v)) << v;
}

TEST_F(CudaEmulator, CopiesPastAnAllocationAreRefused) {
  Buffer a(16);
  std::vector<float> host(17, 1.f);
  EXPECT_EQ(cudaMemcpy(a.p, host.data(), 17 * sizeof(float), cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  // A host pointer where device memory is expected.
  EXPECT_EQ(cudaMemcpy(host.data(), host.data() + 8, 4, cudaMemcpyDeviceToHost),
            cudaErrorInvalidValue);
  cudaGetLastError();
}

TEST_F(CudaEmulator, ReadPastAnAllocationIsCaughtBySanitizer) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto read_one_past_the_end = [] {
    Buffer x(std::vector<float>(10, 1.f)), out(1);
    HALO_LAUNCH(1, 1, nullptr, read_past_end)(x.p, 10, out.p);
    cudaDeviceSynchronize();
  };
  EXPECT_DEATH(read_one_past_the_end(), "heap-buffer-overflow");
#else
  GTEST_SKIP() << "a read past a device allocation is caught by AddressSanitizer: run the "
                  "sanitizer build (-DHALO_CUDA=EMULATED -DHALO_SANITIZE=ON)";
#endif
}

TEST_F(CudaEmulator, NonBlockingStreamDoesNotWaitForTheLegacyStream) {
  // The race of issue 11: an upload with cudaMemcpy (legacy stream) followed by a kernel on a
  // non-blocking stream without synchronising. The emulator runs the kernel first.
  const std::vector<float> x = iota_floats(256);
  Buffer dx(256), out(1);
  cudaStream_t s = nullptr;
  HALO_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  HALO_CUDA_CHECK(cudaMemcpy(dx.p, x.data(), 256 * sizeof(float), cudaMemcpyHostToDevice));
  HALO_LAUNCH(1, 256, s, sum_with_barrier)(dx.p, out.p);
  HALO_CUDA_CHECK(cudaStreamSynchronize(s));
  float racy = 0;
  HALO_CUDA_CHECK(cudaMemcpy(&racy, out.p, sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT_TRUE(std::isnan(racy)) << "the kernel saw the upload: the race went unnoticed";
  // With the synchronisation the kernel sees the data.
  HALO_CUDA_CHECK(cudaMemcpy(dx.p, x.data(), 256 * sizeof(float), cudaMemcpyHostToDevice));
  HALO_CUDA_CHECK(cudaDeviceSynchronize());
  HALO_LAUNCH(1, 256, s, sum_with_barrier)(dx.p, out.p);
  HALO_CUDA_CHECK(cudaStreamSynchronize(s));
  float ok = 0;
  HALO_CUDA_CHECK(cudaMemcpy(&ok, out.p, sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT_TRUE(std::isfinite(ok));
  HALO_CUDA_CHECK(cudaStreamDestroy(s));
}

TEST_F(CudaEmulator, SynchronisingInsideAGlobalCaptureInvalidatesIt) {
  cudaStream_t s = nullptr;
  HALO_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  Buffer out(32);
  HALO_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  HALO_LAUNCH(1, 32, s, read_unwritten_shared)(out.p);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 16), cudaErrorStreamCaptureUnsupported);
  cudaGraph_t g = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(g, nullptr);
  cudaGetLastError();
  HALO_CUDA_CHECK(cudaStreamDestroy(s));
}

TEST_F(CudaEmulator, DebugSyncNamesTheFaultingKernelAtItsLaunch) {
  // Without HALO_CUDA_DEBUG_SYNC the fault surfaces at the next synchronisation, with the
  // kernel's name in the message; check_launch with the switch on names the launch site too.
  Buffer out(64);
  HALO_LAUNCH(1, 64, nullptr, divergent_barrier)(out.p);  // queued, not yet run
  const cudaError_t e = cudaDeviceSynchronize();
  ASSERT_EQ(e, cudaErrorLaunchFailure);
  const std::string msg = cudaGetErrorString(e);
  EXPECT_NE(msg.find("divergent_barrier"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test_cuda_emulator.cpp"), std::string::npos) << msg;
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  // With HALO_CUDA_DEBUG_SYNC=1 check_launch synchronises after the launch and throws at once,
  // naming the kernel and where it was launched.
  setenv("HALO_CUDA_DEBUG_SYNC", "1", 1);
  std::string thrown;
  try {
    halo::kernels::cuda::check_launch("divergent_barrier", "here.cu", 7, nullptr);
    HALO_LAUNCH(1, 64, nullptr, divergent_barrier)(out.p);
  } catch (const std::exception& ex) {
    thrown = ex.what();
  }
  unsetenv("HALO_CUDA_DEBUG_SYNC");
  cudaGetLastError();
  EXPECT_NE(thrown.find("CUDA kernel divergent_barrier launched at"), std::string::npos) << thrown;
  EXPECT_NE(thrown.find("barrier divergence"), std::string::npos) << thrown;
}

}  // namespace

#else

TEST(CudaEmulator, BuiltWithoutTheEmulatedDevice) {
  GTEST_SKIP() << "the emulated CUDA device's own tests run in a -DHALO_CUDA=EMULATED build";
}

#endif  // HALO_CUDA_EMULATED
