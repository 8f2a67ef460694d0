// Which device the CUDA tests run on, for every test binary: a real GPU, the emulated CUDA device
// of a -DHALO_CUDA=EMULATED build (kernels/cuda_emulator), or none. Each CUDA test records the
// device it ran on as a GoogleTest property ("device": "gpu" or "emulated"), which
// scripts/test_summary.py counts; tests of cuDNN/cuBLAS skip on the emulated device, saying why;
// on the emulated device a computation can be run under two thread orders and compared bit for
// bit (a missing __syncthreads() shows up as a difference).
#pragma once
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/cuda_memory.h"

#ifdef HALO_CUDA_EMULATED
#include "kernels/cuda_emulator/emulator.h"
#endif

namespace halo::test {

constexpr bool on_emulated_device() {
#ifdef HALO_CUDA_EMULATED
  return true;
#else
  return false;
#endif
}

// The digests of the device results a test copies to the host (DeviceBuffer::download and the
// engine tests' tensor reads call log_download) while a run_under_two_thread_orders body runs.
struct DownloadLog {
  bool on = false;
  std::vector<std::uint64_t> digests;
};
inline DownloadLog& download_log() {
  static DownloadLog log;
  return log;
}
inline void log_download(const void* data, std::size_t bytes) {
  DownloadLog& log = download_log();
  if (!log.on) return;
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  log.digests.push_back(h ^ bytes);
}

// Runs a test body once on a GPU. On the emulated device runs it under the forward and then the
// reverse thread order and checks that every result it copied to the host has the same bits both
// times: a missing __syncthreads() or a race between threads shows up as a difference.
template <class F>
void run_under_two_thread_orders(F&& body) {
#ifdef HALO_CUDA_EMULATED
  namespace emu = halo::cuda_emulator;
  const emu::ThreadOrder saved = emu::thread_order();
  DownloadLog& log = download_log();
  std::vector<std::uint64_t> first;
  for (auto order : {emu::ThreadOrder::forward, emu::ThreadOrder::reverse}) {
    emu::set_thread_order(order);
    log.digests.clear();
    log.on = true;
    body();
    log.on = false;
    if (order == emu::ThreadOrder::forward) first = log.digests;
  }
  emu::set_thread_order(saved);
  EXPECT_FALSE(first.empty()) << "the body copied no results to the host";
  EXPECT_TRUE(first == log.digests)
      << "the emulated device gave different bits under the forward and the reverse thread "
         "order: a missing __syncthreads() or a race between threads";
  log.digests.clear();
#else
  body();
#endif
}

}  // namespace halo::test

// In a test's body or SetUp: skips unless a CUDA device (a GPU or the emulated one) is usable,
// and records which one the test runs on.
#define HALO_REQUIRE_CUDA_DEVICE()                                                            \
  do {                                                                                        \
    std::string halo_why_;                                                                    \
    if (!::halo::cuda::gpu_available(&halo_why_))                                             \
      GTEST_SKIP() << "no usable GPU, CUDA test skipped: " << halo_why_;                      \
    ::testing::Test::RecordProperty("device",                                                 \
                                    ::halo::test::on_emulated_device() ? "emulated" : "gpu"); \
  } while (0)

// In a test's body: skips a test of cuDNN/cuBLAS on the emulated device.
#define HALO_REQUIRE_VENDOR_LIBRARIES()                                                     \
  do {                                                                                      \
    if (::halo::test::on_emulated_device())                                                 \
      GTEST_SKIP() << "needs cuDNN/cuBLAS, which only a real GPU has (this build runs the " \
                      "hand-written kernels on the emulated CUDA device)";                  \
  } while (0)
