// train_halo: trains ResNet-18, ResNet-26 or ConvNeXt-pico to predict the fraction of dark-matter
// mass in subhalos (f_sub) from strong-lensing images, with Adam, MSE and early stopping on the
// validation MSE, and leaves a run folder with metrics, checkpoints, curves and a scatter plot.
// With no --data it simulates the `model1` preset once into a cache and trains on that.
#include <fmt/format.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "apps/support/simulated_data.h"
#include "apps/support/trainer.h"
#include "data/loader.h"
#include "engine/cuda_memory.h"
#include "kernels/onednn/settings.h"
#include "models/registry.h"

using namespace halo;
namespace fs = std::filesystem;

namespace {
// The quick run on the CPU when neither --data nor --sim-count is given (scripts/run.sh with no
// arguments): 6.4 minutes of ResNet-18 on 2 cores, test R^2 0.50-0.61 over three seeds (README,
// "The default run").
constexpr int kQuickCount = 3000, kQuickEpochs = 6, kQuickBatch = 16, kQuickCrop = 96;

void on_signal(int) { train::stop_requested().store(true); }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a model to predict the substructure mass fraction f_sub from lensing images"};
  train::Config cfg;
  std::string data_path, recipe = "default", norm = "log1p-standardize", cache_dir = "cache";
  std::string train_list, val_list, test_list;
  int epochs = 0, batch = 0, patience = 0, sim_count = 0, sim_size = 150, threads = 0, crop = -1;
  double lr = 0, weight_decay = -1;
  bool no_tta = false, quiet = false, no_tf32 = false;
  // The emulated CUDA device (a -DHALO_CUDA=EMULATED build) has only the hand-written kernels.
  std::string gpu_kernels = cuda::emulated_device() ? "handwritten" : "cudnn";
  std::string cpu_kernels = kernels::onednn::to_string(kernels::onednn::default_cpu_conv_kernels());
  app.add_option("--model", cfg.model, "resnet18 | resnet26 | convnext_pico")
      ->check(CLI::IsMember(models::model_names()));
  app.add_option("--data", data_path,
                 "a DeepLense .npy folder or an HDF5 file from simulate_lenses; omitted: simulate the model1 "
                 "preset into --cache");
  app.add_option("--recipe", recipe, "default (from scratch: lr 1e-3, warm-up, cosine) | seed (the original "
                                     "task's: constant lr 1e-6, batch 64)")
      ->check(CLI::IsMember({"default", "seed"}));
  app.add_option("--device", cfg.device, "cpu | cuda (default: cuda if a GPU is present, else cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--gpu-kernels", gpu_kernels,
                 "on the GPU: cudnn (cuDNN convolution and batch norm, cuBLAS GEMM; the default) | handwritten "
                 "(Halo's own CUDA kernels; the only choice on the emulated device)")
      ->check(CLI::IsMember({"cudnn", "handwritten"}));
  app.add_option("--cpu-kernels", cpu_kernels,
                 "on the CPU: onednn (oneDNN convolutions, depthwise ones Halo's; the default where built "
                 "with oneDNN) | halo (Halo's own CPU kernels, the reference) | fastest (per layer and "
                 "pass the faster of the two, timed on first use; not bit-reproducible across processes)")
      ->check(CLI::Validator([](std::string& v) { return train::check_cpu_kernels(v); },
                             "halo|onednn|fastest"));
  app.add_flag("--no-tf32", no_tf32, "on the GPU: no TF32 tensor cores (default: as PyTorch, TF32 for convolutions)");
  app.add_option("--epochs", epochs, "maximum epochs (recipe's value if omitted)")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch, "images per step (recipe's value if omitted)")->check(CLI::Range(2, 65536));
  app.add_option("--lr", lr, "peak learning rate (recipe's value if omitted)")->check(CLI::PositiveNumber);
  app.add_option("--weight-decay", weight_decay, "decoupled (AdamW) weight decay")->check(CLI::NonNegativeNumber);
  app.add_option("--patience", patience, "early stopping: epochs without a better validation MSE")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", cfg.seed, "seed for the weights, the split and the data order");
  app.add_option("--run-dir", cfg.run_dir, "output folder (default runs/<model>)");
  app.add_option("--init", cfg.init, "start from this HDF5 state dict (e.g. exported from PyTorch)")
      ->check(CLI::ExistingFile);
  app.add_flag("--resume", cfg.resume, "continue the run in --run-dir from its checkpoint.h5");
  app.add_option("--crop", crop,
                 "train on the central NxN pixels of each image, e.g. 96: a 150x150 model1 image keeps its "
                 "whole ring and every subhalo, at 0.41x the pixels (default 0, the whole image; 96 for the "
                 "quick run, without --data and --sim-count, on the CPU)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--norm", norm, "image normalisation: log1p-standardize | standardize | none");
  app.add_option("--sim-count", sim_count,
                 fmt::format("images to simulate when --data is omitted; omitted too: the quick run, {} images on the CPU "
                             "with {} epochs, batch {} and --crop {} unless given (20000 on a GPU)",
                             kQuickCount, kQuickEpochs, kQuickBatch, kQuickCrop))
      ->check(CLI::Range(20, 10000000));
  app.add_option("--sim-size", sim_size, "image size to simulate when --data is omitted")->check(CLI::Range(16, 1024));
  app.add_option("--cache", cache_dir, "folder for simulated data");
  app.add_option("--threads", threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--max-batches", cfg.max_batches_per_epoch, "stop each epoch after this many batches (debugging)");
  app.add_flag("--no-tta", no_tta, "skip the test evaluation averaged over the 8 symmetries");
  app.add_flag("--quiet", quiet, "no progress bar");
  app.add_option("--train-list", train_list,
                 "names of the training samples, one per line (default: an 80/10/10 split by --seed)");
  app.add_option("--val-list", val_list, "names of the validation samples");
  app.add_option("--test-list", test_list, "names of the test samples");
  CLI11_PARSE(app, argc, argv);

  try {
    if (threads > 0) {
      // The OpenMP runtime read OMP_NUM_THREADS when it was loaded, before main: setting the variable
      // now only reaches child processes, so set this thread's team size too.
      setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
      omp_set_num_threads(threads);
    }
    // The default is a real GPU; the emulated device is used only when asked for.
    if (app.count("--device") == 0)
      cfg.device = cuda::gpu_available() && !cuda::emulated_device() ? "cuda" : "cpu";
    if (cfg.device == "cuda") {
      train::parse_device(cfg.device);  // no usable GPU: say so before simulating any data
      train::configure_gpu(gpu_kernels, !no_tf32);
    }
    train::configure_cpu(cpu_kernels);
    std::printf("%s\n", train::describe_kernels(cfg.device, gpu_kernels).c_str());
    cfg.recipe = train::make_recipe(recipe);
    if (epochs) cfg.recipe.epochs = epochs;
    if (batch) cfg.recipe.batch_size = batch;
    if (lr > 0) cfg.recipe.lr = lr;
    if (weight_decay >= 0) cfg.recipe.weight_decay = weight_decay;
    if (patience) cfg.recipe.patience = patience;
    cfg.norm = data::parse_image_norm(norm);
    cfg.tta = !no_tta;
    cfg.progress = !quiet;
    if (app.count("--run-dir") == 0) cfg.run_dir = "runs/" + cfg.model;
    if (!cfg.resume && fs::exists(fs::path(cfg.run_dir) / "checkpoint.h5"))
      throw std::invalid_argument(cfg.run_dir + " already holds a run (checkpoint.h5): use --resume to continue it, "
                                                "or another --run-dir");

    if (data_path.empty()) {
      // Neither --data nor --sim-count on a CPU (or the emulated device): the quick run of
      // scripts/run.sh, a few minutes that visibly learn. Its epochs, batch and crop apply unless given.
      // With --sim-count the recipe's own values hold (an experiment, as scripts/experiment.sh runs).
      // On a GPU: the full 20,000-image set of the original task.
      const bool cpu = cfg.device == "cpu" || cuda::emulated_device();
      const bool quick = cpu && sim_count == 0;
      if (!sim_count) sim_count = cpu ? kQuickCount : 20000;
      if (quick && !epochs) cfg.recipe.epochs = kQuickEpochs;
      if (quick && !batch) cfg.recipe.batch_size = kQuickBatch;
      // The crop keeps model1's ring at its 150x150 size; another --sim-size keeps its whole image.
      if (quick && crop < 0 && app.count("--sim-size") == 0) crop = kQuickCrop;
      data_path = apps::simulated_dataset(cache_dir, "model1", sim_count, sim_size, 20260101, !quiet);
    } else if (!fs::exists(data_path)) {
      throw std::invalid_argument("--data " + data_path + ": no such file or folder");
    }
    cfg.crop = std::max(crop, 0);
    std::shared_ptr<data::Dataset> ds = data::open_dataset(data_path);
    // (The crop is checked here too, before the run folder is made; train::run cuts it.)
    std::printf("data: %s\n", (cfg.crop > 0 ? data::center_crop(ds, cfg.crop) : ds)->describe().c_str());
    data::Split split = (train_list.empty() && val_list.empty() && test_list.empty())
                            ? data::make_split(ds->size(), cfg.seed)
                            : data::split_from_lists(*ds, train_list, val_list, test_list);

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    train::Result r = train::run(cfg, ds, split);
    switch (r.outcome) {
      case train::Outcome::interrupted:
        std::printf("%s\n", r.message.c_str());
        return 130;
      case train::Outcome::diverged:
        std::fprintf(stderr, "train_halo: %s\n", r.message.c_str());
        return 3;
      default:
        break;
    }
    std::printf("%s after %zu epochs; best validation MSE %.4e at epoch %d\n",
                r.outcome == train::Outcome::early_stopped ? "early stop" : "done", r.history.size(), r.best_val_mse,
                r.best_epoch);
    if (r.test.n && r.test_tta.n)
      std::printf("test: MSE %.4e  NRMSE %.4f  R2 %.4f   (8-symmetry average: MSE %.4e, R2 %.4f; predicting the "
                  "mean: MSE %.4e)\n",
                  r.test.mse, r.test.nrmse, r.test.r2, r.test_tta.mse, r.test_tta.r2, r.predict_mean.mse);
    else if (r.test.n)  // --no-tta: no 8-symmetry numbers to show
      std::printf("test: MSE %.4e  NRMSE %.4f  R2 %.4f   (predicting the mean: MSE %.4e)\n", r.test.mse,
                  r.test.nrmse, r.test.r2, r.predict_mean.mse);
    std::printf("run folder: %s (metrics.csv, best.h5, checkpoint.h5, model.json, mse.png, nrmse.png, "
                "scatter_test.png, test_metrics.json)\n",
                cfg.run_dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_halo: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
