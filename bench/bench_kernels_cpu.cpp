// Google Benchmark of the CPU kernels: Eigen's own sgemm at 1024^3 (the roofline the convolutions
// are judged against) and the convolution forward / backward-data / backward-weight at the
// ResNet-18 and ConvNeXt-pico shapes of a 150x150 input, batch 16, each with Halo's kernels
// (BM_Conv_<pass>/<shape>) and beside it oneDNN's (BM_OneDnnConv_<pass>/<shape>; an error where
// Halo was built without oneDNN), so the ratio per shape reads off. Reports GFLOP/s (2 * MACs).
// Run with OMP_NUM_THREADS set; times are wall-clock (UseRealTime) because OpenMP threads work.
#include <benchmark/benchmark.h>
#include <time.h>

#include <Eigen/Core>
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/conv.h"
#include "kernels/onednn/settings.h"

namespace {

using halo::kernels::Conv2dShape;
namespace cpu = halo::kernels::cpu;
namespace onednn = halo::kernels::onednn;

std::vector<float> random_floats(long long n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& e : v) e = dist(gen);
  return v;
}

double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// GFLOPS: FLOPs per wall-clock second, the number that matters. GFLOPS_per_core: FLOPs per
// CPU-second summed over all threads of the process; on a machine shared with other work (where a
// thread may wait for a core) it still says how efficiently each core was used, so the ratio of a
// convolution to sgemm is meaningful even when the wall-clock numbers are disturbed.
void set_gflops(benchmark::State& state, double flops_per_iteration, double cpu_seconds) {
  state.counters["GFLOPS"] =
      benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOPS_per_core"] =
      flops_per_iteration * 1e-9 * double(state.iterations()) / std::max(cpu_seconds, 1e-12);
}

// C = A * B with Eigen's column-major float matrices: 2 * m * n * k FLOPs.
void BM_EigenSgemm(benchmark::State& state) {
  const int n = int(state.range(0));
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gflops(state, 2.0 * n * n * n, process_cpu_seconds() - cpu0);
}
// With --benchmark_repetitions, also report the best repetition: on a shared machine the fastest
// run is the one least disturbed by other work.
double max_of(const std::vector<double>& v) {
  return *std::max_element(v.begin(), v.end());
}
double min_of(const std::vector<double>& v) {
  return *std::min_element(v.begin(), v.end());
}

BENCHMARK(BM_EigenSgemm)
    ->Arg(1024)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("max", max_of)
    ->ComputeStatistics("min", min_of);

enum class Pass { kForward, kBackwardData, kBackwardWeight };

struct BenchShape {
  const char* name;
  Conv2dShape s;
};

Conv2dShape shape(int n, int c_in, int h, int w, int c_out, int k, int stride, int pad,
                  int groups) {
  Conv2dShape s;
  s.n = n, s.c_in = c_in, s.h = h, s.w = w, s.c_out = c_out, s.kh = k, s.kw = k;
  s.stride = stride, s.pad = pad, s.groups = groups;
  return s;
}

// ResNet-18 and ConvNeXt-pico at 150x150, batch 16 (see /work/shared/reference/architectures.md).
const BenchShape kShapes[] = {
    {"r18_stem_1to64_k7s2_150", shape(16, 1, 150, 150, 64, 7, 2, 3, 1)},
    {"r18_64_k3_38", shape(16, 64, 38, 38, 64, 3, 1, 1, 1)},
    {"r18_128_k3_19", shape(16, 128, 19, 19, 128, 3, 1, 1, 1)},
    {"r18_256_k3_10", shape(16, 256, 10, 10, 256, 3, 1, 1, 1)},
    {"r18_512_k3_5", shape(16, 512, 5, 5, 512, 3, 1, 1, 1)},
    {"cnx_dw64_k7_37", shape(16, 64, 37, 37, 64, 7, 1, 3, 64)},
    {"cnx_dw128_k7_18", shape(16, 128, 18, 18, 128, 7, 1, 3, 128)},
    {"cnx_dw256_k7_9", shape(16, 256, 9, 9, 256, 7, 1, 3, 256)},
    {"cnx_dw512_k7_4", shape(16, 512, 4, 4, 512, 7, 1, 3, 512)},
    {"cnx_fc1_64to256_k1_37", shape(16, 64, 37, 37, 256, 1, 1, 0, 1)},
    {"cnx_fc2_2048to512_k1_4", shape(16, 2048, 4, 4, 512, 1, 1, 0, 1)},
};

// Halo's kernels (use_onednn = false) or oneDNN's, which plan each shape on their first call: that
// call is made before timing so the plan is not counted.
void BM_Conv(benchmark::State& state, Conv2dShape s, Pass pass, bool use_onednn) {
  if (use_onednn && !onednn::available()) {
    state.SkipWithError("Halo was built without oneDNN (install libdnnl-dev and rebuild)");
    return;
  }
  const auto x = random_floats(s.x_size(), 1), w = random_floats(s.w_size(), 2),
             b = random_floats(s.c_out, 3), dy = random_floats(s.y_size(), 4);
  std::vector<float> y(s.y_size()), dx(s.x_size()), dw(s.w_size());
  auto run = [&] {
    switch (pass) {
      case Pass::kForward:
        if (use_onednn)
          onednn::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
        else
          cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
        benchmark::DoNotOptimize(y.data());
        break;
      case Pass::kBackwardData:
        if (use_onednn)
          onednn::conv2d_backward_data(s, dy.data(), w.data(), dx.data());
        else
          cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data());
        benchmark::DoNotOptimize(dx.data());
        break;
      case Pass::kBackwardWeight:
        if (use_onednn)
          onednn::conv2d_backward_weight(s, x.data(), dy.data(), dw.data());
        else
          cpu::conv2d_backward_weight(s, x.data(), dy.data(), dw.data());
        benchmark::DoNotOptimize(dw.data());
        break;
    }
    benchmark::ClobberMemory();
  };
  run();  // warm-up: oneDNN's plan, Halo's scratch buffers
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) run();
  set_gflops(state, 2.0 * double(s.macs()), process_cpu_seconds() - cpu0);
}

void register_conv_benchmarks() {
  const std::pair<Pass, const char*> passes[] = {{Pass::kForward, "fwd"},
                                                 {Pass::kBackwardData, "bwd_data"},
                                                 {Pass::kBackwardWeight, "bwd_weight"}};
  for (const BenchShape& b : kShapes)
    for (const auto& [pass, pass_name] : passes)
      for (bool use_onednn : {false, true})
        benchmark::RegisterBenchmark(
            (std::string(use_onednn ? "BM_OneDnnConv_" : "BM_Conv_") + pass_name + "/" + b.name)
                .c_str(),
            [s = b.s, pass = pass, use_onednn](benchmark::State& st) {
              BM_Conv(st, s, pass, use_onednn);
            })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->ComputeStatistics("max", max_of)
            ->ComputeStatistics("min", min_of);
}

}  // namespace

int main(int argc, char** argv) {
  register_conv_benchmarks();
  // Which instruction-set variant Halo's CPU kernels run (kernels/cpu/isa.h; HALO_CPU_ISA lowers it).
  benchmark::AddCustomContext("halo_cpu_isa",
                              halo::kernels::cpu::isa_name(halo::kernels::cpu::isa()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
