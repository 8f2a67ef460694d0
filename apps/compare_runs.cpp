// compare_runs: puts several train_halo runs side by side — their validation curves in one figure
// and their test metrics in one table (Markdown and CSV), beside predicting the training mean.
//   compare_runs runs/experiment/* --out runs/experiment
// Each run folder needs metrics.csv; test_metrics.json (written when a run finishes) adds its row
// to the table.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/support/plot.h"

namespace fs = std::filesystem;

namespace {

struct Run {
  std::string name;
  std::vector<double> epoch, val_mse, val_nrmse, val_r2;
  bool finished = false;
  nlohmann::json test;  // test_metrics.json, if present
};

Run read_run(const fs::path& dir) {
  Run r;
  r.name = dir.filename().string();
  if (r.name.empty()) r.name = dir.parent_path().filename().string();
  const fs::path csv = dir / "metrics.csv";
  std::ifstream f(csv);
  if (!f)
    throw std::invalid_argument(csv.string() + ": not found (is " + dir.string() +
                                " a train_halo run folder?)");
  std::string line;
  std::getline(f, line);
  if (line.rfind("epoch,train_mse,val_mse,val_nrmse,val_r2", 0) != 0)
    throw std::invalid_argument(
        csv.string() +
        ": expected the header 'epoch,train_mse,val_mse,val_nrmse,val_r2,...', got '" + line + "'");
  int row = 1;
  while (std::getline(f, line)) {
    ++row;
    if (line.empty()) continue;
    std::vector<double> v;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) {
      try {
        v.push_back(std::stod(cell));
      } catch (const std::exception&) {
        throw std::invalid_argument(
            fmt::format("{}: row {}: '{}' is not a number", csv.string(), row, cell));
      }
    }
    if (v.size() < 5)
      throw std::invalid_argument(
          fmt::format("{}: row {} has {} columns, expected 7", csv.string(), row, v.size()));
    r.epoch.push_back(v[0]);
    r.val_mse.push_back(v[2]);
    r.val_nrmse.push_back(v[3]);
    r.val_r2.push_back(v[4]);
  }
  if (r.epoch.empty()) throw std::invalid_argument(csv.string() + ": no epochs recorded yet");
  const fs::path tj = dir / "test_metrics.json";
  if (fs::exists(tj)) {
    std::ifstream t(tj);
    try {
      r.test = nlohmann::json::parse(t);
      r.finished = r.test.contains("test") && r.test.contains("predict_the_mean");
    } catch (const std::exception& e) {
      throw std::invalid_argument(tj.string() + ": not valid JSON: " + e.what());
    }
  }
  return r;
}

std::string sci(double v) {
  return std::isfinite(v) ? fmt::format("{:.3e}", v) : "-";
}
std::string fixed(double v, int digits) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : "-";
}
double get(const nlohmann::json& j, const char* group, const char* key) {
  if (!j.contains(group) || !j[group].contains(key) || !j[group][key].is_number()) return NAN;
  return j[group][key].get<double>();
}

void write_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp);
    if (!(f << text).flush()) throw std::runtime_error(tmp.string() + ": cannot write");
  }
  fs::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Compare train_halo runs: validation curves in one figure, test metrics in one table"};
  std::vector<std::string> dirs;
  std::string out = ".", title = "validation MSE per epoch";
  app.add_option("runs", dirs, "run folders (each with metrics.csv)")->required();
  app.add_option("--out", out, "folder for val_mse.png, val_nrmse.png, results.md and results.csv");
  app.add_option("--title", title, "title of the MSE figure");
  CLI11_PARSE(app, argc, argv);
  try {
    std::vector<Run> runs;
    for (const std::string& d : dirs) runs.push_back(read_run(d));
    fs::create_directories(out);

    // The baseline: predicting the training mean on the test split (the same split for runs made
    // with the same data and seed; the first finished run's value is drawn).
    double mean_mse = NAN, mean_nrmse = NAN;
    for (const Run& r : runs)
      if (r.finished && std::isnan(mean_mse)) {
        mean_mse = get(r.test, "predict_the_mean", "mse");
        mean_nrmse = get(r.test, "predict_the_mean", "nrmse");
      }

    std::vector<halo::plot::Series> mse, nrmse;
    for (const Run& r : runs) {
      mse.emplace_back(r.name, r.epoch, r.val_mse, std::nullopt, true, true);
      nrmse.emplace_back(r.name, r.epoch, r.val_nrmse, std::nullopt, true, true);
    }
    halo::plot::ChartOptions o;
    o.title = title;
    o.xlabel = "epoch";
    o.ylabel = "validation MSE";
    o.log_y = true;
    o.width = 1000;
    o.height = 560;
    o.legend_outside = true;  // one entry per run: inside, it would cover some run's curve
    if (std::isfinite(mean_mse)) {
      o.hline = mean_mse;
      o.hline_label = "predict the mean (test)";
    }
    halo::plot::line_chart((fs::path(out) / "val_mse.png").string(), mse, o);
    o.title = "validation NRMSE (RMSE / mean label) per epoch";
    o.ylabel = "validation NRMSE";
    o.log_y = false;
    o.hline = std::isfinite(mean_nrmse) ? std::optional<double>(mean_nrmse) : std::nullopt;
    halo::plot::line_chart((fs::path(out) / "val_nrmse.png").string(), nrmse, o);

    std::string md =
        "| run | model | recipe | epochs (best) | test MSE | test NRMSE | R² | MSE, 8 symmetries | "
        "R², 8 symmetries |\n"
        "|---|---|---|---|---|---|---|---|---|\n";
    std::string csv =
        "run,model,recipe,epochs_run,best_epoch,test_mse,test_nrmse,test_r2,tta8_mse,tta8_r2\n";
    if (std::isfinite(mean_mse))
      md += fmt::format("| predict the mean | | | | {} | {} | 0.00 | | |\n", sci(mean_mse),
                        fixed(mean_nrmse, 3));
    for (const Run& r : runs) {
      if (!r.finished) {
        md += fmt::format("| {} | | | {} (not finished) | | | | | |\n", r.name, r.epoch.size());
        continue;
      }
      const std::string model = r.test.value("model", ""), recipe = r.test.value("recipe", "");
      const int epochs = r.test.value("epochs_run", 0), best = r.test.value("best_epoch", 0);
      const double m = get(r.test, "test", "mse"), n = get(r.test, "test", "nrmse"),
                   r2 = get(r.test, "test", "r2");
      const double tm = get(r.test, "test_tta8", "mse"), tr2 = get(r.test, "test_tta8", "r2");
      md += fmt::format("| {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} |\n", r.name, model,
                        recipe, epochs, best, sci(m), fixed(n, 3), fixed(r2, 2), sci(tm),
                        fixed(tr2, 2));
      csv += fmt::format("{},{},{},{},{},{:.6e},{:.6f},{:.6f},{:.6e},{:.6f}\n", r.name, model,
                         recipe, epochs, best, m, n, r2, tm, tr2);
    }
    write_atomic(fs::path(out) / "results.md", md);
    write_atomic(fs::path(out) / "results.csv", csv);
    std::printf("%s\nwrote %s/{val_mse.png, val_nrmse.png, results.md, results.csv}\n", md.c_str(),
                out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "compare_runs: %s\n", e.what());
    return 1;
  }
}
