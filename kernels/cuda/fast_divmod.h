// Integer division by a run-time constant with one multiply-high, an add and a shift: the index
// arithmetic of every NCHW kernel (pixel -> (n, c, y, x)) would otherwise spend ~20 instructions
// per integer division. Usable from host code too, so the CPU tests can check it exhaustively.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

// HALO_HD: callable from host and device code (plain inline for the host compiler).
// HALO_UNROLL: `#pragma unroll` for nvcc, nothing for the host compiler (which would warn).
#if defined(__CUDACC__)
#define HALO_HD __host__ __device__ __forceinline__
#define HALO_UNROLL _Pragma("unroll")
#else
#define HALO_HD inline
#define HALO_UNROLL
#endif

namespace halo::kernels::cuda {

// For a divisor d >= 1 choose shift = ceil(log2 d) and magic = floor(2^32 (2^shift - d) / d) + 1.
// Then for 0 <= n < 2^31:  n / d = (umulhi(n, magic) + n) >> shift  (Granlund and Montgomery,
// "Division by invariant integers using multiplication", 1994; the same scheme PyTorch uses).
// The sum umulhi + n stays below 2^32 because umulhi(n, magic) <= n < 2^31.
struct FastDivmod {
  uint32_t divisor = 1, magic = 1, shift = 0;

  FastDivmod() = default;
  explicit FastDivmod(long long d) {
    if (d < 1 || d >= (1LL << 31))
      throw std::invalid_argument("FastDivmod: divisor must be in [1, 2^31), got " +
                                  std::to_string(d));
    divisor = uint32_t(d);
    shift = 0;
    while ((uint64_t(1) << shift) < uint64_t(d)) ++shift;
    const uint64_t m =
        ((uint64_t(1) << 32) * ((uint64_t(1) << shift) - uint64_t(d))) / uint64_t(d) + 1;
    magic = uint32_t(m);  // m < 2^32 because 2^shift - d < d
  }

  // n must be in [0, 2^31).
  HALO_HD uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t t = __umulhi(n, magic);
#else
    const uint32_t t = uint32_t((uint64_t(n) * uint64_t(magic)) >> 32);
#endif
    return (t + n) >> shift;
  }
  HALO_HD void divmod(uint32_t n, uint32_t& q, uint32_t& r) const {
    q = div(n);
    r = n - q * divisor;
  }
};

}  // namespace halo::kernels::cuda
