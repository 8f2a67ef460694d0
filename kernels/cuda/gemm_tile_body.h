// The one matrix-multiply engine of the hand-written kernels: a shared-memory, register-blocked
// tile computing C[M x N] = sum_k A[M x K] B[K x N] whose operands are not stored matrices but are
// *gathered* by an Op object. The convolution passes are implicit GEMMs (A or B is the im2col
// view of an image, built on the fly while loading a tile, never written to memory) and the plain
// SGEMM is the same kernel with an Op that reads row-major matrices. Device code: .cu files only.
//
// Tiling (one thread block computes a BM x BN tile of C):
//   for each K slice of BK columns:
//     every thread fetches a few elements of the A slice (BM x BK) and the B slice (BK x BN)
//     from global memory into registers (the *next* slice, while the current one is in use),
//     stores them into shared memory As[BK][BM] and Bs[BK][BN] (A stored k-major, "transposed"),
//     and each thread multiplies an 8-row by 8-column fragment: for each k it reads 8 values of A
//     and 8 of B from shared memory (four float4 loads) and does 64 FMAs into 64 accumulators.
// So each value read from shared memory feeds 8 FMAs and each value read from global memory feeds
// BM (or BN) FMAs. A thread's 8 rows are ty*4 + {0..3} and BM/2 + ty*4 + {0..3} (likewise for the
// columns), so the eight threads of a quarter-warp read 16-byte vectors at consecutive addresses:
// no shared-memory bank conflicts. The padding of each shared row (PAD floats) keeps the transposed
// stores of k-major operands conflict-free as well while keeping rows 16-byte aligned.
//
// Split-K: blockIdx.z = group * splits + split; a block sums only k in [split*k_chunk,
// (split+1)*k_chunk) and hands `split` to the Op's store, which writes a partial result that a
// second kernel sums in a fixed order (deterministic, unlike atomicAdd). Groups (grouped
// convolutions) also ride on blockIdx.z.
//
// The Op interface (all __device__, all const):
//   static constexpr bool a_k_major, b_k_major;  which index of each operand is contiguous in
//                                                memory: consecutive threads then fetch
//                                                consecutive addresses
//   AIdx a_index(int g, int m);       AIdx has a bool `ok` (m < M) plus what a_load needs for row m
//   float a_load(const AIdx&, int k); called only when ok and k < k_end
//   BIdx b_index(int g, int n);       likewise for column n of B
//   float b_load(const BIdx&, int k);
//   CIdx c_index(int g, int n);       column n of C (called only for n < N)
//   void store(int g, int split, int m, const CIdx&, float value);
#pragma once
#include <vector_types.h>  // float4 (host and device)

#include "kernels/cuda/fast_divmod.h"

namespace halo::kernels::cuda {

// min_blocks: resident blocks per SM the register allocation must allow (__launch_bounds__), i.e.
// at most 65536 / (threads * min_blocks) registers per thread: 128 for the large tile, 170 for
// the small one. 64 of them hold the accumulators; the rest hold the fragments, the prefetched
// next slice (BM*BK/threads + BK*BN/threads values) and the Ops' decoded indices (one per
// prefetched element of a k-major operand). BK = 4 fits every Op into those budgets on sm_80 and
// sm_90 (ptxas -v: at most 128 / 151 registers, no stack frame); BK = 8 spilled 16-100 bytes in
// the large tile and 12 in the small one, and min_blocks = 1 at BK = 8 took up to 159 / 181
// registers, i.e. half the resident warps. BK = 4 costs two barriers per 4 k-steps instead of
// per 8, 16-byte row pieces per slice for k-major operands (the rest is in L1 for the next
// slice). Measure with bench_kernels_cuda.
template <int BM_, int BN_, int BK_, int MIN_BLOCKS>
struct TileConfig {
  static constexpr int BM = BM_, BN = BN_, BK = BK_;
  static constexpr int TM = 8, TN = 8;  // per-thread fragment
  static constexpr int threads = (BM / TM) * (BN / TN);
  static constexpr int min_blocks = MIN_BLOCKS;
};

// The block's shared memory: one K-slice of A (stored k-major) and of B, each row padded by PAD
// floats. A warp's k-major store writes BK consecutive k (rows) for 32 / BK consecutive m
// (columns): word k * (BM + PAD) + m lands in bank (k * PAD + m) % 32 when BM % 32 == 0, so
// PAD = 32 / BK spreads the BK rows over disjoint groups of 32 / BK banks (conflict-free), and
// keeps rows 16-byte aligned (PAD a multiple of 4 for BK <= 8).
template <class Cfg>
struct TileSmem {
  static constexpr int PAD = 32 / Cfg::BK;
  static_assert(PAD % 4 == 0, "rows must stay 16-byte aligned for the float4 reads");
  alignas(16) float As[Cfg::BK][Cfg::BM + PAD];
  alignas(16) float Bs[Cfg::BK][Cfg::BN + PAD];
};

using TileLarge = TileConfig<128, 128, 4, 2>;  // 256 threads, 64 outputs each, 2 blocks per SM
using TileSmall = TileConfig<64, 128, 4, 3>;   // 128 threads, for M <= 64 (64 output channels)

// Everything one thread of block (bx, by, bz) does, with `tid` its index in the block, `sm` the
// block's shared memory and `sync()` the block barrier (__syncthreads() on the GPU). Written as a
// __host__ __device__ function so that tests/kernels/test_cuda_host.cpp can run this very code on
// the CPU, one std::thread per GPU thread and a std::barrier for sync().
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Cfg, class Op, class Sync>
HALO_HD void gemm_tile_thread(const Op& op, int M, int N, int K, int splits, int k_chunk, int tid,
                              int bx, int by, int bz, TileSmem<Cfg>& sm, const Sync& sync) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, NT = Cfg::threads;
  constexpr int A_LOADS = BM * BK / NT, B_LOADS = BK * BN / NT;
  static_assert((BM * BK) % NT == 0 && (BK * BN) % NT == 0, "tile loads must divide evenly");
  static_assert(Cfg::TM == 8 && Cfg::TN == 8, "the fragment code below assumes 8 x 8");

  auto& As = sm.As;
  auto& Bs = sm.Bs;
  const int g = bz / splits;
  const int split = bz - g * splits;
  const int m0 = by * BM, n0 = bx * BN;
  const int k_begin = split * k_chunk;
  const int k_end = K < k_begin + k_chunk ? K : k_begin + k_chunk;

  // The tile elements this thread fetches: fixed for the whole K loop, so the (expensive)
  // decoding of the m and n coordinates is done once here. Element i = tid + j*NT of a k-major
  // slice is (row i / BK, k i % BK): the k offset is the same for every j and the row advances by
  // NT/BK. Of an m-major (n-major) slice it is (k i / BM, row i % BM): the row is the same for
  // every j, so one index object serves all j.
  static_assert(NT % BK == 0 && NT % BM == 0 && NT % BN == 0, "index formulas below");
  constexpr int A_IDX = Op::a_k_major ? A_LOADS : 1;
  constexpr int B_IDX = Op::b_k_major ? B_LOADS : 1;
  const int a_k0 = Op::a_k_major ? tid % BK : tid / BM;  // k offset of load j = 0
  const int a_m0 = Op::a_k_major ? tid / BK : tid % BM;  // row of load j = 0
  const int b_k0 = Op::b_k_major ? tid % BK : tid / BN;
  const int b_n0 = Op::b_k_major ? tid / BK : tid % BN;
  constexpr int a_dk = Op::a_k_major ? 0 : NT / BM, a_dm = Op::a_k_major ? NT / BK : 0;
  constexpr int b_dk = Op::b_k_major ? 0 : NT / BN, b_dn = Op::b_k_major ? NT / BK : 0;
  typename Op::AIdx a_idx[A_IDX];
  typename Op::BIdx b_idx[B_IDX];
  HALO_UNROLL
  for (int j = 0; j < A_IDX; ++j) a_idx[j] = op.a_index(g, m0 + a_m0 + j * a_dm);
  HALO_UNROLL
  for (int j = 0; j < B_IDX; ++j) b_idx[j] = op.b_index(g, n0 + b_n0 + j * b_dn);

  float a_reg[A_LOADS], b_reg[B_LOADS];
  auto fetch = [&](int k0) {
    HALO_UNROLL
    for (int j = 0; j < A_LOADS; ++j) {
      const typename Op::AIdx& ai = a_idx[Op::a_k_major ? j : 0];
      const int k = k0 + a_k0 + j * a_dk;
      a_reg[j] = (ai.ok && k < k_end) ? op.a_load(ai, k) : 0.f;
    }
    HALO_UNROLL
    for (int j = 0; j < B_LOADS; ++j) {
      const typename Op::BIdx& bi = b_idx[Op::b_k_major ? j : 0];
      const int k = k0 + b_k0 + j * b_dk;
      b_reg[j] = (bi.ok && k < k_end) ? op.b_load(bi, k) : 0.f;
    }
  };
  auto stash = [&]() {
    HALO_UNROLL
    for (int j = 0; j < A_LOADS; ++j) As[a_k0 + j * a_dk][a_m0 + j * a_dm] = a_reg[j];
    HALO_UNROLL
    for (int j = 0; j < B_LOADS; ++j) Bs[b_k0 + j * b_dk][b_n0 + j * b_dn] = b_reg[j];
  };

  const int tx = tid % (BN / 8), ty = tid / (BN / 8);
  float acc[8][8];
  HALO_UNROLL
  for (int i = 0; i < 8; ++i) HALO_UNROLL
  for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;

  fetch(k_begin);
  stash();
  sync();
  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    const bool more = k0 + BK < k_end;
    if (more) fetch(k0 + BK);  // global loads in flight while we compute on shared memory
    HALO_UNROLL
    for (int kk = 0; kk < BK; ++kk) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[kk][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[kk][BM / 2 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[kk][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[kk][BN / 2 + tx * 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
      HALO_UNROLL
      for (int i = 0; i < 8; ++i) HALO_UNROLL
      for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    sync();
    if (more) {
      stash();
      sync();
    }
  }

  // Epilogue: decode this thread's 8 output columns once, then store row by row.
  typename Op::CIdx c_idx[8];
  bool c_ok[8];
  HALO_UNROLL
  for (int j = 0; j < 8; ++j) {
    const int n = n0 + (j < 4 ? tx * 4 + j : BN / 2 + tx * 4 + (j - 4));
    c_ok[j] = n < N;
    if (c_ok[j]) c_idx[j] = op.c_index(g, n);
  }
  HALO_UNROLL
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + (i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + (i - 4));
    if (m >= M) continue;
    HALO_UNROLL
    for (int j = 0; j < 8; ++j)
      if (c_ok[j]) op.store(g, split, m, c_idx[j], acc[i][j]);
  }
}

}  // namespace halo::kernels::cuda
