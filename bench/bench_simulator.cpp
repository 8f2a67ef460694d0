// Data-side throughput: the simulator (model1, 150x150) on 1 and 2 threads, and the loader reading
// batches from a DeepLense .npy folder and from an HDF5 file (in memory and lazily), all in images/s.
// Compare with a training step: a ResNet-18 step on this machine takes ~50-100 ms per image
// (bench_models), i.e. it consumes 10-20 images/s.
//   build/bench/bench_simulator [--benchmark_min_time=1] ; HALO_BENCH_IMAGES (default 2000) sets the
//   size of the data set the loader benchmarks read.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "apps/support/simulated_data.h"
#include "data/deeplense.h"
#include "data/hdf5_dataset.h"
#include "data/lens/simulator.h"
#include "data/loader.h"

namespace fs = std::filesystem;
using namespace halo;

namespace {
void BM_SimulateModel1(benchmark::State& state) {
  data::lens::Simulator sim(data::lens::preset_config("model1"));
  const int threads = static_cast<int>(state.range(0));
  const int batch = 8 * threads;
  std::vector<data::lens::SimImage> out;
  int64_t next = 0;
  for (auto _ : state) {
    sim.simulate_batch(1, next, batch, threads, out);
    next += batch;
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["images/s"] = benchmark::Counter(double(next), benchmark::Counter::kIsRate);
  state.counters["images/s/core"] = benchmark::Counter(double(next) / threads, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimulateModel1)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

struct Files {
  fs::path dir, h5, npy;
  int count;
  Files() {
    count = std::getenv("HALO_BENCH_IMAGES") ? std::atoi(std::getenv("HALO_BENCH_IMAGES")) : 2000;
    dir = fs::temp_directory_path() / ("halo_bench_data_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    h5 = dir / "model1.h5";
    npy = dir / "lens_data";
    apps::write_simulated_hdf5(h5.string(), "model1", count, 150, 3, 0);
    auto ds = data::open_hdf5_dataset(h5.string(), {data::CacheMode::Lazy});
    fs::create_directories(npy);
    data::Hdf5DatasetReader r(h5.string());
    for (int i = 0; i < count; ++i) {
      data::NpyArray img;
      img.dtype = data::DType::Int64;
      img.shape = {150, 150};
      const std::vector<int64_t> px = r.read_image_int64(i);
      img.bytes.resize(px.size() * 8);
      std::memcpy(img.bytes.data(), px.data(), img.bytes.size());
      data::write_deeplense_file((npy / data::deeplense_file_name_for(3, i)).string(), img, ds->label(i));
    }
  }
  ~Files() { fs::remove_all(dir); }
};
Files& files() {
  static Files f;
  return f;
}

void run_loader(benchmark::State& state, std::shared_ptr<data::Dataset> ds) {
  std::vector<size_t> idx(ds->size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  data::LoaderOptions o;
  o.batch_size = 64;
  o.augment = true;
  data::Loader loader(ds, idx, o);
  int64_t images = 0;
  uint64_t epoch = 0;
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    while (auto b = loader.next()) images += int64_t(b->size);
  }
  state.counters["images/s"] = benchmark::Counter(double(images), benchmark::Counter::kIsRate);
}

void BM_LoaderHdf5Memory(benchmark::State& s) { run_loader(s, data::open_hdf5_dataset(files().h5.string(), {data::CacheMode::Memory})); }
void BM_LoaderHdf5Lazy(benchmark::State& s) { run_loader(s, data::open_hdf5_dataset(files().h5.string(), {data::CacheMode::Lazy})); }
void BM_LoaderNpyMemory(benchmark::State& s) { run_loader(s, data::open_npy_folder(files().npy.string(), {data::CacheMode::Memory})); }
void BM_LoaderNpyLazy(benchmark::State& s) { run_loader(s, data::open_npy_folder(files().npy.string(), {data::CacheMode::Lazy})); }
BENCHMARK(BM_LoaderHdf5Memory)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_LoaderHdf5Lazy)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_LoaderNpyMemory)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_LoaderNpyLazy)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(2);
}  // namespace

BENCHMARK_MAIN();
