// model_tool: the three models from the command line, for checking Halo against PyTorch on weights
// and inputs of one's own (tools/timm_interop.py does the PyTorch side).
//   model_tool summary --model NAME [--size 150] [--json model.json]
//   model_tool init    --model NAME --seed S --out W.h5 [--perturb | --reference]
//   model_tool run     --model NAME --weights W.h5 --input IN.h5 [--dataset input] --output OUT.h5
//   model_tool profile --model NAME [--batch 16] [--size 150] [--repeats 3] [--eval]
//                      (forward time per layer, and forward + backward of the whole step)
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/serialize.h"
#include "models/registry.h"
#include "models/summary.h"

using namespace halo;

namespace {
std::string names_list() {
  std::string s;
  for (const auto& n : models::model_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Halo's models: summaries, initial weights, and HDF5-in/HDF5-out evaluation"};
  app.require_subcommand(1);
  std::string model_name;
  const std::string model_help = "model name (" + names_list() + ")";

  auto* summary = app.add_subcommand("summary", "print layers, output shapes, parameters and MACs");
  int size = 150, in_chans = 1;
  std::string json_path;
  summary->add_option("--model", model_name, model_help)->required();
  summary->add_option("--size", size, "input height and width")->check(CLI::Range(1, 4096));
  summary->add_option("--in-chans", in_chans, "input channels")->check(CLI::Range(1, 64));
  summary->add_option("--json", json_path, "also write the summary as JSON to this file");

  auto* init = app.add_subcommand("init", "write a freshly initialised model's state dict (HDF5)");
  uint64_t seed = 0;
  std::string out_path;
  bool perturb = false, reference = false;
  init->add_option("--model", model_name, model_help)->required();
  init->add_option("--seed", seed, "seed of the initialisation")->required();
  init->add_option("--out", out_path, "state dict file to write")->required();
  auto* perturb_flag = init->add_flag(
      "--perturb", perturb,
      "set norm scales/shifts, biases, running stats and layer scale to the reference formula "
      "(models/registry.h), so that a check is not blind to the residual branches");
  init->add_flag("--reference", reference, "set every tensor to the reference formula (no seed)")
      ->excludes(perturb_flag);

  auto* run = app.add_subcommand("run", "eval-mode forward of an HDF5 input through HDF5 weights");
  std::string weights, input, dataset = "input", output, output_dataset = "output";
  run->add_option("--model", model_name, model_help)->required();
  run->add_option("--weights", weights, "state dict (HDF5), loaded strictly")->required();
  run->add_option("--input", input, "HDF5 file holding the input [N, C, H, W] float32")->required();
  run->add_option("--dataset", dataset, "input dataset name");
  run->add_option("--output", output, "HDF5 file to write the output to")->required();
  run->add_option("--output-dataset", output_dataset, "output dataset name");

  auto* profile = app.add_subcommand("profile", "time each layer's forward, and the backward pass");
  int batch = 16, repeats = 3;
  bool eval_mode = false;
  profile->add_option("--model", model_name, model_help)->required();
  profile->add_option("--batch", batch, "images per batch")->check(CLI::Range(1, 4096));
  profile->add_option("--size", size, "input height and width")->check(CLI::Range(1, 4096));
  profile->add_option("--repeats", repeats, "timed passes (after one warm-up)")
      ->check(CLI::Range(1, 1000));
  profile->add_flag("--eval", eval_mode, "eval mode without gradients (default: training mode)");

  CLI11_PARSE(app, argc, argv);

  try {
    if (*summary) {
      auto model = models::make_model(model_name, in_chans);
      const models::ModelSummary s = models::summarize(*model, model_name, size, in_chans);
      std::fputs(s.to_text().c_str(), stdout);
      if (!json_path.empty()) {
        models::write_summary_json(s, json_path);
        std::printf("summary written to %s\n", json_path.c_str());
      }
    } else if (*init) {
      nn::manual_seed(seed);
      auto model = models::make_model(model_name);
      if (reference) models::set_reference_values(*model);
      if (perturb) models::perturb_norms_and_biases(*model);
      save_state_dict(model->state_dict(), out_path);
      std::printf("%s (%lld parameters) written to %s\n", model_name.c_str(),
                  static_cast<long long>(model->num_parameters()), out_path.c_str());
    } else if (*profile) {
      nn::manual_seed(seed);
      auto model = models::make_model(model_name);
      model->train(!eval_mode);
      std::mt19937_64 rng(1);
      const Tensor x = Tensor::randn({batch, 1, size, size}, rng);
      const Tensor target = Tensor::randn({batch, 1}, rng);
      const auto layers = models::profile_forward(*model, x, repeats, !eval_mode);
      // Whole forward and forward + loss + backward, for the backward's share.
      double fwd_ms = 0, step_ms = 0;
      for (int r = 0; r < repeats; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        Tensor y = model->forward(x);
        auto t1 = std::chrono::steady_clock::now();
        if (!eval_mode) {
          model->zero_grad();
          mse_loss(y, target).backward();
        }
        auto t2 = std::chrono::steady_clock::now();
        fwd_ms += std::chrono::duration<double, std::milli>(t1 - t0).count() / repeats;
        step_ms += std::chrono::duration<double, std::milli>(t2 - t0).count() / repeats;
      }
      std::map<std::string, double> by_kind;
      double leaf_total = 0;
      std::printf("%-40s %-14s %-20s %10s %9s %8s\n", "layer", "type", "output", "GMAC", "ms",
                  "GMAC/s");
      for (const auto& l : layers) {
        const bool leaf = l.type != "Sequential" && l.type.find("Block") == std::string::npos &&
                          l.type.find("Bottleneck") == std::string::npos &&
                          l.type.find("Stage") == std::string::npos && l.type != "Mlp" &&
                          l.type != "NormMlpClassifierHead";
        const double gmac = double(l.macs) * batch / 1e9;
        std::printf("%-40s %-14s %-20s %10.3f %9.2f %8.1f\n",
                    (std::string(2 * (l.depth - 1), ' ') + l.name).c_str(), l.type.c_str(),
                    to_string(l.output_shape).c_str(), gmac, l.ms,
                    l.ms > 0 ? gmac / (l.ms / 1e3) : 0.0);
        if (!leaf) continue;
        std::string kind = l.type;
        if (l.type == "Conv2d")
          kind += " " + l.describe.substr(l.describe.find(", k") + 2, 2) +
                  (l.describe.find("groups") != std::string::npos ? " depthwise" : "");
        by_kind[kind] += l.ms;
        leaf_total += l.ms;
      }
      std::printf("\n%s, batch %d of 1x%dx%d, %s, mean of %d passes:\n", model_name.c_str(), batch,
                  size, size, eval_mode ? "eval" : "training mode", repeats);
      std::printf("forward %.1f ms (%.2f ms/image)", fwd_ms, fwd_ms / batch);
      if (!eval_mode)
        std::printf(", forward + loss + backward %.1f ms (%.2f ms/image), so backward ~%.1f ms",
                    step_ms, step_ms / batch, step_ms - fwd_ms);
      std::printf("\nforward time by layer kind (leaf layers):\n");
      std::vector<std::pair<double, std::string>> sorted;
      for (auto& [k, v] : by_kind) sorted.emplace_back(v, k);
      std::sort(sorted.rbegin(), sorted.rend());
      for (auto& [v, k] : sorted)
        std::printf("  %-24s %9.1f ms  %5.1f%%\n", k.c_str(), v, 100.0 * v / leaf_total);
    } else if (*run) {
      auto model = models::make_model(model_name);
      load_module(*model, weights);
      Tensor x = read_tensor_h5(input, dataset);
      if (x.dim() != 4 || x.size(1) != 1)
        throw std::invalid_argument(input + ": dataset '" + dataset + "' has shape " +
                                    to_string(x.shape()) + ", expected [N, 1, H, W]");
      model->eval();
      NoGradGuard no_grad;
      Tensor y = model->forward(x);
      StateDict out;
      out.set(output_dataset, y);
      write_tensors_h5(output, out);
      std::printf("%s: %s -> %s written to %s:%s\n", model_name.c_str(),
                  to_string(x.shape()).c_str(), to_string(y.shape()).c_str(), output.c_str(),
                  output_dataset.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_tool: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
