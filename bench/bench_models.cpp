// Google Benchmark of one training step per model on the CPU: forward, MSE loss, backward and an
// Adam step, batch 16 of 1x150x150 (the training setup), with 2 OpenMP threads unless
// OMP_NUM_THREADS says otherwise. GpuTrainStep/<model>/<cudnn|handwritten> times the same step on
// the GPU at batch 64 (the recipes' batch), waiting for the stream after each step; it reports an
// error (and no time) where no GPU is usable. `pytorch_step.py --device cuda` times PyTorch's. Also
// the training-mode forward alone and the eval forward, to split the step; the eval forward at
// batch 64, the batch the eval comparisons use. The CPU benchmarks run once per CPU convolution
// implementation: TrainStep/<model>/halo (Halo's own kernels) and TrainStep/<model>/onednn (oneDNN;
// reports an error where Halo was built without it), likewise TrainForward and EvalForward. Times
// are wall-clock (UseRealTime: the OpenMP threads do the work). Counters: images_per_s,
// time_per_image (seconds in the JSON), and cpu_util (process CPU seconds per wall second; below
// the thread count means the threads waited for a core, i.e. the machine was busy).
// bench/pytorch_step.py times the same step in PyTorch + timm and prints the ratio.
//   bench_models --benchmark_format=json > bench.json && python3 bench/pytorch_step.py --halo
//   bench.json
#include <benchmark/benchmark.h>
#include <omp.h>
#include <time.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>

#include "engine/autograd.h"
#include "engine/cuda_memory.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/cpu/isa.h"
#include "kernels/onednn/settings.h"
#include "models/registry.h"

using namespace halo;

namespace {

constexpr int kBatch = 16;      // training step and training-mode forward
constexpr int kEvalBatch = 64;  // eval forward
constexpr int kSize = 150;
using kernels::onednn::CpuConvKernels;

double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

void set_counters(benchmark::State& state, int batch, double cpu_seconds, double wall_seconds) {
  state.counters["images_per_s"] =
      benchmark::Counter(batch, benchmark::Counter::kIsIterationInvariantRate);
  // kInvert of a rate gives seconds per image (the console prints it as e.g. "98.9ms").
  state.counters["time_per_image"] = benchmark::Counter(
      batch, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["cpu_util"] = wall_seconds > 0 ? cpu_seconds / wall_seconds : 0;
  state.counters["threads"] = omp_get_max_threads();
}

struct Setup {
  std::shared_ptr<nn::Module> model;
  Tensor x, y;
  explicit Setup(const std::string& name, int batch = kBatch) {
    nn::manual_seed(0);
    model = models::make_model(name);
    std::mt19937_64 rng(1);
    x = Tensor::randn({batch, 1, kSize, kSize}, rng);
    y = Tensor::randn({batch, 1}, rng);
  }
};

// Selects the CPU convolutions for one benchmark (restored after it); false, with the benchmark
// marked as an error, where they are not built.
bool select_cpu_kernels(benchmark::State& state, CpuConvKernels k) {
  if (k != CpuConvKernels::halo && !kernels::onednn::available()) {
    state.SkipWithError("Halo was built without oneDNN (install libdnnl-dev and rebuild)");
    return false;
  }
  return true;
}

void BM_TrainStep(benchmark::State& state, const std::string& name, CpuConvKernels k) {
  if (!select_cpu_kernels(state, k)) return;
  kernels::onednn::ScopedCpuConvKernels scope(k);
  Setup s(name);
  s.model->train();
  Adam opt(s.model->named_parameters(), {.lr = 1e-4});
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = mse_loss(s.model->forward(s.x), s.y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.data());
  };
  step();  // warm-up: fills the allocator's cache and creates Adam's state
  step();
  const double cpu0 = process_cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  for (auto _ : state) step();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  set_counters(state, kBatch, process_cpu_seconds() - cpu0, wall);
}

void BM_GpuTrainStep(benchmark::State& state, const std::string& name, bool vendor) {
  std::string why;
  if (!cuda::gpu_available(&why)) {
    state.SkipWithError(("no usable GPU: " + why).c_str());
    return;
  }
  constexpr int kGpuBatch = 64;
  cuda::use_vendor_libraries(vendor);
  cuda::set_tf32_default();  // PyTorch's defaults, as pytorch_step.py --device cuda runs
  nn::manual_seed(0);
  auto model = models::make_model(name);
  model->to(Device::cuda);
  model->train();
  std::mt19937_64 rng(1);
  Tensor x = Tensor::randn({kGpuBatch, 1, kSize, kSize}, rng).to(Device::cuda);
  Tensor y = Tensor::randn({kGpuBatch, 1}, rng).to(Device::cuda);
  Adam opt(model->named_parameters(), {.lr = 1e-4});
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = mse_loss(model->forward(x), y);
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();  // cuDNN plans, the allocator's cache, Adam's state
  cuda::synchronize();
  for (auto _ : state) {
    step();
    cuda::synchronize();
  }
  state.counters["images_per_s"] = benchmark::Counter(kGpuBatch, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["time_per_image"] = benchmark::Counter(
      kGpuBatch, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  cuda::use_vendor_libraries(true);
}

void BM_Forward(benchmark::State& state, const std::string& name, bool training, CpuConvKernels k) {
  if (!select_cpu_kernels(state, k)) return;
  kernels::onednn::ScopedCpuConvKernels scope(k);
  const int batch = training ? kBatch : kEvalBatch;
  Setup s(name, batch);
  s.model->train(training);
  auto fwd = [&] {
    if (training) {
      Tensor out = s.model->forward(s.x);  // records the graph, dropped right away
      benchmark::DoNotOptimize(out.data());
    } else {
      NoGradGuard no_grad;
      Tensor out = s.model->forward(s.x);
      benchmark::DoNotOptimize(out.data());
    }
  };
  fwd();
  const double cpu0 = process_cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  for (auto _ : state) fwd();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  set_counters(state, batch, process_cpu_seconds() - cpu0, wall);
}

}  // namespace

int main(int argc, char** argv) {
  // Two threads (the CI machines' cores) unless the caller chose otherwise.
  if (!std::getenv("OMP_NUM_THREADS")) omp_set_num_threads(2);
  const CpuConvKernels cpu_kernels[] = {CpuConvKernels::halo, CpuConvKernels::onednn,
                                         CpuConvKernels::fastest};
  for (const std::string& name : models::model_names()) {
    for (CpuConvKernels k : cpu_kernels) {
      const std::string suffix = std::string("/") + kernels::onednn::to_string(k);
      benchmark::RegisterBenchmark(("TrainStep/" + name + suffix).c_str(), BM_TrainStep, name, k)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(3.0);
    }
    for (CpuConvKernels k : cpu_kernels) {
      const std::string suffix = std::string("/") + kernels::onednn::to_string(k);
      benchmark::RegisterBenchmark(("TrainForward/" + name + suffix).c_str(), BM_Forward, name,
                                   true, k)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(2.0);
      benchmark::RegisterBenchmark(("EvalForward/" + name + suffix).c_str(), BM_Forward, name,
                                   false, k)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(2.0);
    }
  }
  for (const std::string& name : models::model_names()) {
    for (bool vendor : {true, false}) {
      benchmark::RegisterBenchmark(("GpuTrainStep/" + name + (vendor ? "/cudnn" : "/handwritten")).c_str(),
                                   BM_GpuTrainStep, name, vendor)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(2.0);
    }
  }
  // Which instruction-set variant Halo's CPU kernels run (kernels/cpu/isa.h; HALO_CPU_ISA lowers it).
  benchmark::AddCustomContext("halo_cpu_isa",
                              halo::kernels::cpu::isa_name(halo::kernels::cpu::isa()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
