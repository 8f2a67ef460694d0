// simulate_lenses: makes a look-alike strong-lensing data set with the simulator of data/lens/ and
// writes it in the DeepLense .npy folder layout or as one HDF5 file, with a progress line and an
// optional PNG grid of the first images with their labels. Output goes to a temporary name and is
// renamed into place at the end; an existing non-empty output is kept unless --force.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "apps/support/plot.h"
#include "data/deeplense.h"
#include "data/hdf5_dataset.h"
#include "data/npy.h"

#include "data/lens/simulator.h"

namespace fs = std::filesystem;
using namespace halo;

namespace {

struct Options {
  std::string preset = "model1";
  size_t count = 1000;
  int size = 0;                 // 0 = the preset's
  double pixel_scale = 0.0;     // 0 = the preset's
  std::string subhalo_profile;  // empty = the preset's
  uint64_t seed = 0;
  int threads = 0;  // 0 = all cores
  std::string format = "npy";
  std::string out;
  bool force = false;
  std::string preview;
  int preview_count = 16;
  bool quiet = false;
};

// One simulated image as the writers need it.
struct Generated {
  std::vector<int64_t> counts;  // size * size, row-major
  double label = 0.0;
  std::vector<double> params;  // one value per Generator::param_names()
};

// ---- the simulator, behind a small adapter --------------------------------------------------

namespace lens = halo::data::lens;

lens::SubhaloProfile parse_profile(const std::string& s) {
  if (s == "point" || s == "point_mass") return lens::SubhaloProfile::point_mass;
  if (s == "nfw" || s == "tnfw") return lens::SubhaloProfile::tnfw;
  throw std::invalid_argument(
      fmt::format("--subhalo-profile must be point or nfw (truncated NFW), not '{}'", s));
}

// A setting's text as a JSON number when it is one (so HDF5 attributes get numeric types).
nlohmann::json setting_value(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (!text.empty() && end == text.c_str() + text.size() && std::isfinite(v)) {
    const bool integral = text.find_first_of(".eEnN") == std::string::npos && std::fabs(v) < 9e15;
    return integral ? nlohmann::json(static_cast<int64_t>(v)) : nlohmann::json(v);
  }
  return text;
}

class Generator {
 public:
  explicit Generator(const Options& o) {
    lens::SimConfig config = lens::preset_config(o.preset);
    if (o.size > 0) config.size = o.size;
    if (o.pixel_scale > 0) config.pixel_scale = o.pixel_scale;
    if (!o.subhalo_profile.empty()) config.subhalo_profile = parse_profile(o.subhalo_profile);
    sim_ = std::make_unique<lens::Simulator>(config);
  }
  int size() const { return sim_->config().size; }
  // Every generator setting, for the HDF5 attributes and the .settings.json beside a folder.
  nlohmann::json settings() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [key, value] : lens::config_settings(sim_->config()))
      j[key] = setting_value(value);
    return j;
  }
  std::vector<std::string> param_names() const { return lens::param_names(); }
  void generate(uint64_t seed, uint64_t first, size_t n, int threads,
                std::vector<Generated>& out) const {
    sim_->simulate_batch(seed, static_cast<int64_t>(first), static_cast<int64_t>(n), threads,
                         imgs_);
    out.resize(imgs_.size());
    for (size_t i = 0; i < imgs_.size(); ++i) {
      out[i].counts = std::move(imgs_[i].counts);
      out[i].label = imgs_[i].label;
      out[i].params = lens::param_values(imgs_[i].params);
    }
  }

 private:
  std::unique_ptr<lens::Simulator> sim_;
  mutable std::vector<lens::SimImage> imgs_;
};

// ---- progress -------------------------------------------------------------------------------

std::string clock_str(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  const long t = std::lround(s);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{}:{:02}", t / 60, t % 60);
}

// "[#######-------]  45.0%  9000/20000  612 img/s  0:14 elapsed  ETA 0:18" on stderr: redrawn in
// place on a terminal, one line per 10 % otherwise (logs stay short).
class Progress {
 public:
  Progress(size_t total, bool quiet) : total_(total), quiet_(quiet), tty_(::isatty(2) != 0) {}
  void update(size_t done) {
    if (quiet_) return;
    const double el = elapsed();
    const bool last = done >= total_;
    if (tty_) {
      if (!last && el - last_draw_ < 0.1) return;
    } else {
      const size_t decile = total_ ? done * 10 / total_ : 10;
      if (!last && decile == last_decile_) return;
      last_decile_ = decile;
    }
    last_draw_ = el;
    const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const double rate = el > 0 ? static_cast<double>(done) / el : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : NAN;
    const int width = 30, filled = static_cast<int>(frac * width);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(width - filled), '-');
    std::fprintf(stderr, "%s[%s] %5.1f%%  %zu/%zu  %.0f img/s  %s elapsed  ETA %s%s",
                 tty_ ? "\r" : "", bar.c_str(), 100 * frac, done, total_, rate,
                 clock_str(el).c_str(), last ? "0:00" : clock_str(eta).c_str(),
                 tty_ && !last ? "" : "\n");
    std::fflush(stderr);
  }
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  size_t total_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double last_draw_ = -1.0;
  size_t last_decile_ = SIZE_MAX;
};

// ---- output ---------------------------------------------------------------------------------

bool exists_non_empty(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return false;
  if (fs::is_directory(p, ec)) return fs::directory_iterator(p, ec) != fs::directory_iterator();
  return !fs::is_regular_file(p, ec) || fs::file_size(p, ec) > 0;
}

std::string csv_number(double v) {
  return fmt::format("{}", v);
}  // shortest round-trip form

// A PNG grid of the first images: the counts scaled linearly from the image's minimum to its
// maximum, grey, with the label under each panel, as the task's "Dark Halo Mass" figures show them
// (imshow's automatic scaling: a bright ring, a dark centre, a faint noisy background).
void write_preview(const std::string& path, const std::vector<Generated>& imgs, int size,
                   const std::string& title) {
  if (imgs.empty()) return;
  const int n = static_cast<int>(imgs.size());
  const int cols = std::min(n, n <= 4 ? n : n <= 9 ? 3 : n <= 16 ? 4 : 5);
  const int rows = (n + cols - 1) / cols;
  const int zoom = std::max(1, 300 / size), tile = size * zoom, pad = 12, label_h = 22,
            title_h = 34;
  plot::Canvas c(pad + cols * (tile + pad), title_h + rows * (tile + label_h + pad), plot::kWhite);
  c.text(c.width() / 2.0, 10, title, plot::kBlack, 2.0, plot::HAlign::kCenter, plot::VAlign::kTop);
  for (int k = 0; k < n; ++k) {
    const Generated& g = imgs[static_cast<size_t>(k)];
    double lo = INFINITY, hi = -INFINITY;
    std::vector<double> v(g.counts.size());
    for (size_t i = 0; i < v.size(); ++i) {
      v[i] = static_cast<double>(g.counts[i]);
      lo = std::min(lo, v[i]);
      hi = std::max(hi, v[i]);
    }
    const double span = hi > lo ? hi - lo : 1.0;
    const int x0 = pad + (k % cols) * (tile + pad),
              y0 = title_h + (k / cols) * (tile + label_h + pad);
    for (int i = 0; i < size; ++i)
      for (int j = 0; j < size; ++j) {
        const auto grey = static_cast<uint8_t>(
            std::lround(255.0 * (v[static_cast<size_t>(i * size + j)] - lo) / span));
        c.fill_rect(x0 + j * zoom, y0 + i * zoom, x0 + (j + 1) * zoom, y0 + (i + 1) * zoom,
                    plot::Color{grey, grey, grey});
      }
    c.text(x0 + tile / 2.0, y0 + tile + 4, fmt::format("f_sub = {:.4f}", g.label), plot::kBlack,
           2.0, plot::HAlign::kCenter, plot::VAlign::kTop);
  }
  plot::write_png(path, c);
}

int run(const Options& o) {
  if (o.format != "npy" && o.format != "hdf5")
    throw std::invalid_argument(fmt::format("--format must be npy or hdf5, not '{}'", o.format));
  const fs::path out = o.out;
  const std::string params_csv = o.out + ".params.csv", settings_json = o.out + ".settings.json";
  for (const fs::path& p : o.format == "npy" ? std::vector<fs::path>{out, params_csv, settings_json}
                                             : std::vector<fs::path>{out})
    if (exists_non_empty(p) && !o.force)
      throw std::runtime_error(
          fmt::format("{}: already exists and is not empty; refusing to overwrite it (use --force)",
                      p.string()));
  // Missing parent folders are created, as train_halo --run-dir does.
  if (!out.parent_path().empty() && !fs::is_directory(out.parent_path())) {
    std::error_code ec;
    fs::create_directories(out.parent_path(), ec);
    if (ec || !fs::is_directory(out.parent_path()))
      throw std::runtime_error(fmt::format("{}: cannot create the folder ({})",
                                           out.parent_path().string(),
                                           ec ? ec.message() : "a file has that name"));
  }

  const Generator gen(o);
  const int size = gen.size();
  const std::vector<std::string> names = gen.param_names();
  nlohmann::json settings = gen.settings();
  settings["count"] = o.count;
  settings["seed"] = o.seed;
  settings["generator"] = "halo simulate_lenses";
  const int threads = o.threads > 0
                          ? o.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (!o.quiet)
    std::fprintf(
        stderr,
        "simulate_lenses: %zu images of %dx%d, preset %s, seed %llu, %d threads -> %s (%s)\n",
        o.count, size, size, o.preset.c_str(), static_cast<unsigned long long>(o.seed), threads,
        o.out.c_str(), o.format.c_str());

  std::vector<Generated> preview;
  Progress progress(o.count, o.quiet);
  const size_t chunk = static_cast<size_t>(std::max(64, 16 * threads));
  std::vector<Generated> batch;

  if (o.format == "hdf5") {
    data::Hdf5DatasetWriter writer(o.out, size, size, names, settings);
    for (size_t first = 0; first < o.count; first += chunk) {
      const size_t n = std::min(chunk, o.count - first);
      gen.generate(o.seed, first, n, threads, batch);
      for (const Generated& g : batch) {
        writer.append(g.counts.data(), g.label, g.params);
        if (preview.size() < static_cast<size_t>(o.preview_count)) preview.push_back(g);
      }
      progress.update(first + n);
    }
    writer.finish();
  } else {
    // The folder is built under a temporary name and renamed at the end; its settings and the
    // per-image parameters go beside it (<out>.settings.json, <out>.params.csv) so the folder
    // holds only .npy files, as the real one does (some loaders glob "lens_data/*").
    const std::string tmp = data::temp_path_for(o.out);
    fs::create_directories(tmp);
    try {
      std::string csv = "file,label";
      for (const auto& nm : names) csv += "," + nm;
      csv += "\n";
      for (size_t first = 0; first < o.count; first += chunk) {
        const size_t n = std::min(chunk, o.count - first);
        gen.generate(o.seed, first, n, threads, batch);
        std::vector<std::string> files(n);
        std::exception_ptr err;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4)
        for (long long k = 0; k < static_cast<long long>(n); ++k) {
          try {
            const Generated& g = batch[static_cast<size_t>(k)];
            files[static_cast<size_t>(k)] =
                data::deeplense_file_name_for(o.seed, first + static_cast<size_t>(k));
            data::NpyArray img =
                data::NpyArray::from_raw(data::DType::Int64, {size, size}, g.counts.data());
            data::write_deeplense_file((fs::path(tmp) / files[static_cast<size_t>(k)]).string(),
                                       img, g.label);
          } catch (...) {
#pragma omp critical
            err = std::current_exception();
          }
        }
        if (err) std::rethrow_exception(err);
        for (size_t k = 0; k < n; ++k) {
          csv += files[k] + "," + csv_number(batch[k].label);
          for (double v : batch[k].params) csv += "," + csv_number(v);
          csv += "\n";
          if (preview.size() < static_cast<size_t>(o.preview_count)) preview.push_back(batch[k]);
        }
        progress.update(first + n);
      }
      const std::string js = settings.dump(2) + "\n";
      data::write_file_atomic(
          settings_json,
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(js.data()), js.size()));
      data::write_file_atomic(
          params_csv,
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(csv.data()), csv.size()));
      // Swap the new folder in; an old one (empty, or --force) is removed only after that.
      std::error_code ec;
      std::string old;
      if (fs::exists(out, ec)) {
        old = data::temp_path_for(o.out) + ".old";
        fs::rename(out, old);
      }
      fs::rename(tmp, out);
      if (!old.empty()) fs::remove_all(old, ec);
    } catch (...) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      throw;
    }
  }
  if (!o.preview.empty() && o.preview_count > 0) {
    write_preview(
        o.preview, preview, size,
        fmt::format("simulate_lenses --preset {}: the first {} images", o.preset, preview.size()));
    if (!o.quiet) std::fprintf(stderr, "simulate_lenses: preview %s\n", o.preview.c_str());
  }
  if (!o.quiet)
    std::fprintf(stderr, "simulate_lenses: wrote %zu images to %s in %.1f s\n", o.count,
                 o.out.c_str(), progress.elapsed());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Simulate strong-lensing images and write them as a DeepLense .npy folder or an HDF5 file"};
  Options o;
  app.add_option("--preset", o.preset,
                 "simulator preset: model1 (the DeepLense Test III recipe) or varied")
      ->check(CLI::IsMember({"model1", "varied"}));
  app.add_option("--count", o.count, "number of images")
      ->check(CLI::Range(size_t{1}, size_t{100000000}));
  app.add_option("--size", o.size, "image size in pixels (default: the preset's, 150)")
      ->check(CLI::Range(8, 4096));
  app.add_option("--pixel-scale", o.pixel_scale, "arcsec per pixel (default: the preset's, 0.05)")
      ->check(CLI::PositiveNumber);
  app.add_option("--subhalo-profile", o.subhalo_profile,
                 "point (as DeepLense) or nfw (truncated NFW)");
  app.add_option("--seed", o.seed, "random seed: the same seed gives the same files");
  app.add_option("--threads", o.threads, "simulation threads (default: all cores)")
      ->check(CLI::Range(0, 4096));
  app.add_option("--format", o.format, "npy (DeepLense folder layout) or hdf5 (one file)")
      ->check(CLI::IsMember({"npy", "hdf5"}));
  app.add_option("--out", o.out, "output folder (npy) or file (hdf5)")->required();
  app.add_flag("--force", o.force, "replace an existing non-empty output");
  app.add_option("--preview", o.preview,
                 "also write a PNG grid of the first images with their labels");
  app.add_option("--preview-count", o.preview_count, "images in the preview grid")
      ->check(CLI::Range(1, 64));
  app.add_flag("--quiet", o.quiet, "no progress output");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "simulate_lenses: error: %s\n", e.what());
    return 1;
  }
}
