// Per-device state of the hand-written kernels: the SM count (for launch sizes) and the grow-only
// scratch buffer of two-pass reductions (see common.h).
#include <cstdlib>
#include <mutex>

#include "kernels/cuda/common.h"

namespace halo::kernels::cuda {

namespace {
constexpr int kMaxDevices = 64;

struct Scratch {
  float* ptr = nullptr;
  std::size_t floats = 0;
};

std::mutex& state_mutex() {
  static std::mutex m;
  return m;
}

int current_device() {
  int dev = 0;
  HALO_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices)
    throw std::runtime_error("halo cuda: device index out of range");
  return dev;
}
}  // namespace

int sm_count() {
  static int counts[kMaxDevices] = {};
  const int dev = current_device();
  std::lock_guard<std::mutex> lock(state_mutex());
  if (counts[dev] == 0) {
    int n = 0;
    HALO_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    counts[dev] = n > 0 ? n : 1;
  }
  return counts[dev];
}

void check_launch(const char* kernel, const char* file, int line, cudaStream_t stream) {
  const auto fail = [&](cudaError_t err, const char* when) {
    throw std::runtime_error(std::string("CUDA kernel ") + kernel + " launched at " + file + ":" +
                             std::to_string(line) + " " + when + ": " + cudaGetErrorName(err) +
                             " (" + cudaGetErrorString(err) + ")");
  };
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) fail(err, "did not start");
  // Read at every launch (a few hundred nanoseconds beside a launch's microseconds), so a test or
  // a debugger session can switch it on and off.
  const char* debug = std::getenv("HALO_CUDA_DEBUG_SYNC");
  if (debug && *debug && std::string(debug) != "0") {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream, &capture) == cudaSuccess &&
        capture != cudaStreamCaptureStatusNone)
      return;  // a captured launch runs later, with the graph
    if (const cudaError_t err = cudaStreamSynchronize(stream); err != cudaSuccess)
      fail(err, "failed");
  }
}

float* scratch(std::size_t floats) {
  static Scratch buffers[kMaxDevices];  // never freed: kernels may run until the process exits
  const int dev = current_device();
  std::lock_guard<std::mutex> lock(state_mutex());
  Scratch& s = buffers[dev];
  if (floats == 0) floats = 1;
  if (s.floats < floats) {
    // Queued kernels may still read the old buffer: wait for them before giving it back. This
    // happens only when a larger size is first needed, never in a steady-state step.
    if (s.ptr) {
      HALO_CUDA_CHECK(cudaDeviceSynchronize());
      HALO_CUDA_CHECK(cudaFree(s.ptr));
      s.ptr = nullptr;
      s.floats = 0;
    }
    const std::size_t want = floats + floats / 4;  // a little headroom against creeping growth
    HALO_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&s.ptr), want * sizeof(float)));
    s.floats = want;
  }
  return s.ptr;
}

}  // namespace halo::kernels::cuda
