// Simulating a preset into an HDF5 dataset (see simulated_data.h).
#include "apps/support/simulated_data.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/hdf5_dataset.h"
#include "data/lens/simulator.h"
#include "data/loader.h"

namespace halo::apps {
namespace fs = std::filesystem;

void write_simulated_hdf5(const std::string& path, const std::string& preset, int count, int size, uint64_t seed,
                          int threads, bool progress) {
  // Redrawn in place on a terminal; in a log (stderr not a terminal) one line at the end instead
  // of a carriage-return bar.
  const bool tty = progress && ::isatty(2) != 0;
  const auto t0 = std::chrono::steady_clock::now();
  data::lens::SimConfig cfg = data::lens::preset_config(preset);
  cfg.size = size;
  data::lens::Simulator sim(cfg);
  nlohmann::json attrs = nlohmann::json::object();
  for (const auto& [k, v] : data::lens::config_settings(cfg)) attrs[k] = v;
  attrs["seed"] = seed;
  attrs["count"] = count;
  data::Hdf5DatasetWriter writer(path, size, size, data::lens::param_names(), attrs);
  const int chunk = 256;
  std::vector<data::lens::SimImage> images;
  for (int first = 0; first < count; first += chunk) {
    const int n = std::min(chunk, count - first);
    sim.simulate_batch(seed, first, n, threads, images);
    for (const data::lens::SimImage& im : images)
      writer.append(im.counts.data(), im.label, data::lens::param_values(im.params));
    if (tty) std::fprintf(stderr, "\rsimulating %s: %d / %d images", preset.c_str(), first + n, count);
  }
  writer.finish();
  if (tty) std::fprintf(stderr, "\n");
  if (progress)
    std::fprintf(stderr, "simulated %d %s images in %.1f s\n", count, preset.c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

std::string simulated_dataset(const std::string& cache_dir, const std::string& preset, int count, int size,
                              uint64_t seed, bool progress) {
  fs::create_directories(cache_dir);
  const fs::path path =
      fs::path(cache_dir) / (preset + "_" + std::to_string(count) + "x" + std::to_string(size) + "_seed" +
                             std::to_string(seed) + ".h5");
  if (fs::exists(path)) {
    try {
      data::open_hdf5_dataset(path.string());
    } catch (const std::exception& e) {
      throw std::runtime_error("cached data " + path.string() + " is unreadable (" + e.what() +
                               "); delete it to simulate it again");
    }
    std::printf("using cached simulated data %s\n", path.c_str());
    return path.string();
  }
  std::printf("simulating %d %s images of %dx%d into %s\n", count, preset.c_str(), size, size, path.c_str());
  write_simulated_hdf5(path.string(), preset, count, size, seed, 0, progress);
  return path.string();
}

}  // namespace halo::apps
