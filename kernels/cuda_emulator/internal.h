// Internals shared by the two halves of the emulated CUDA device: runtime.cpp (the runtime API,
// streams, memory) queues kernel launches; block_runner.cpp executes them.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <string>

namespace halo::cuda_emulator {

struct LaunchInfo {
  std::string name;  // the kernel as written at the launch site
  std::string site;  // file:line of the launch
  dim3 grid, block;
  std::function<void()> body;  // one GPU thread: calls the kernel with its own parameter copies
};

// Runs every block of the launch; returns "" or the first fault's message.
std::string execute_launch(const LaunchInfo& launch);

// OpenMP's thread count (block_runner.cpp runs blocks on that many OS threads by default).
int max_block_threads();

}  // namespace halo::cuda_emulator
