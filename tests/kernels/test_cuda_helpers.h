// Helpers of the CUDA parity tests (tests/kernels/test_cuda_*.cpp): a fixture that skips, with
// the runtime's own message, when no usable device is present (a GPU, or the emulated device of a
// -DHALO_CUDA=EMULATED build) and turns TF32 off; the skip of the cuDNN/cuBLAS tests on the
// emulated device; running a computation under two thread orders of the emulator; a small RAII
// device buffer with host<->device copies; random inputs; the norm-relative error.
#pragma once
#ifdef HALO_HAVE_CUDA

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/cuda_memory.h"
#include "kernels/cuda/check.h"
#include "kernels/cudnn/settings.h"
#include "tests/common/device.h"

namespace halo::test::cuda {

using halo::test::on_emulated_device;
using halo::test::run_under_two_thread_orders;

// The models' layer shapes are taken on this image size: the real one on a GPU; smaller on the
// emulated device (which runs every thread as a fiber), where every layer type, tile size and
// launcher branch (split-K, depthwise, float4 and tail) still runs.
#ifdef HALO_CUDA_EMULATED
constexpr int kModelImageSize = 40;
#else
constexpr int kModelImageSize = 150;
#endif

// The parity tolerance of issue 4: max|got - ref| / max|ref| <= 1e-5 with TF32 off.
constexpr double kTol = 1e-5;

// Base fixture: GTEST_SKIP in SetUp skips the test body and reports the reason.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HALO_REQUIRE_CUDA_DEVICE();
    kernels::cudnn::set_tf32(false);
    kernels::cudnn::set_conv_exact_algorithms(true);
    kernels::cudnn::set_conv_algo_search(kernels::cudnn::ConvAlgoSearch::heuristic);
  }
  void TearDown() override {
    kernels::cudnn::reset_tf32_defaults();
    kernels::cudnn::set_conv_exact_algorithms(false);
    kernels::cudnn::set_conv_backend(kernels::cudnn::default_backend());
    kernels::cudnn::set_batch_norm_backend(kernels::cudnn::default_backend());
    kernels::cudnn::set_gemm_backend(kernels::cudnn::default_backend());
  }
};

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_) HALO_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n_ * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      if (p_) cudaFree(p_);
      p_ = o.p_, n_ = o.n_;
      o.p_ = nullptr, o.n_ = 0;
    }
    return *this;
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  // The copy runs on the legacy default stream; the synchronisation after it makes the data
  // visible to work on any stream, the non-blocking ones included (which do not wait for the
  // legacy stream).
  void upload(const std::vector<T>& host) {
    if (host.size() != n_) throw std::invalid_argument("DeviceBuffer::upload: size mismatch");
    if (n_) HALO_CUDA_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
    HALO_CUDA_CHECK(cudaDeviceSynchronize());
  }
  // Waits for all queued work, then copies back.
  std::vector<T> download() const {
    HALO_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> host(n_);
    if (n_) HALO_CUDA_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    halo::test::log_download(host.data(), n_ * sizeof(T));
    return host;
  }
  // Every byte 0xFF: NaN for floats, -1 for ints. Outputs are poisoned before each call so a
  // kernel that skips an element (or accumulates instead of overwriting) cannot pass.
  // Synchronised for the same reason as upload().
  void poison() {
    if (n_) HALO_CUDA_CHECK(cudaMemset(p_, 0xFF, n_ * sizeof(T)));
    HALO_CUDA_CHECK(cudaDeviceSynchronize());
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};
using DevF = DeviceBuffer<float>;

inline std::vector<float> random_floats(std::size_t n, unsigned seed, float lo = -1.f,
                                        float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// max_i |got_i - ref_i| / max_i |ref_i| (absolute error when ref is all zero); NaN anywhere
// gives +inf so that a poisoned (unwritten) output always fails.
inline double rel_error(const std::vector<float>& got, const std::vector<double>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(ref[i])) return INFINITY;
    num = std::max(num, std::abs(double(got[i]) - ref[i]));
    den = std::max(den, std::abs(ref[i]));
  }
  return den > 0 ? num / den : num;
}
inline double rel_error(const std::vector<float>& got, const std::vector<float>& ref) {
  return rel_error(got, to_double(ref));
}

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

inline void sync() {
  HALO_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace halo::test::cuda

#endif  // HALO_HAVE_CUDA
