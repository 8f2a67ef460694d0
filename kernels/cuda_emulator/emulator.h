// The emulated CUDA device's own controls (kernels/cuda_emulator), for tests and for people
// stepping through a kernel: the order in which a block's threads are run, the number of OS
// threads that run blocks, and counters of what has been executed. Everything else about the
// emulated device is the CUDA runtime API of include/cuda_runtime.h.
#pragma once
#include <cstdint>
#include <string>

namespace halo::cuda_emulator {

// The order in which the threads of a block are resumed, each time the block runs until every
// thread waits at a barrier or a warp exchange (or has finished). A correct kernel gives the same
// bits under every order; a missing __syncthreads() shows up as a difference. Set by
// HALO_EMU_THREAD_ORDER=forward|reverse|shuffle[:seed] in the environment, or here.
enum class ThreadOrder { forward, reverse, shuffled };
void set_thread_order(ThreadOrder order, std::uint64_t seed = 1);
ThreadOrder thread_order();
std::string thread_order_name();

// OS threads over which the blocks of one launch are spread (one block per OS thread at a time).
// Default: OpenMP's thread count; HALO_EMU_THREADS in the environment or this call overrides it.
// 1 makes a launch run its blocks in order on the calling thread (for a debugger).
void set_block_threads(int threads);
int block_threads();

// Streaming multiprocessors the emulated device reports (launch sizes depend on it): 4, or
// HALO_EMU_SMS in the environment.
int multiprocessor_count();

struct Stats {
  std::uint64_t launches = 0;        // kernels executed
  std::uint64_t blocks = 0;          // thread blocks executed
  std::uint64_t threads = 0;         // GPU threads executed
  std::uint64_t barriers = 0;        // __syncthreads() completed (per block)
  std::uint64_t warp_exchanges = 0;  // shuffles / __syncwarp completed (per warp)
};
Stats stats();

}  // namespace halo::cuda_emulator
