// The experiment behind train_halo: recipes (learning-rate schedules), early stopping, metrics in
// the label's original units, checkpoints that can be resumed bit for bit, and the run folder
// (metrics.csv, best.h5, checkpoint.h5, model.json, curves and scatter PNGs, test_metrics.json).
// It sits in apps/ because it joins the engine, the models and the data layer.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/loader.h"
#include "engine/nn.h"

namespace halo::train {

// ---- recipes -----------------------------------------------------------------------------------
// "default": trains from scratch: Adam at lr 1e-3 with a linear warm-up over the first epoch and a
//            cosine decay to lr/100 at the last epoch, D4 augmentation.
// "seed":    the original task's parameters: Adam at a constant lr 1e-6, batch 64, at most 50
//            epochs, no schedule (it fine-tuned pretrained weights).
struct Recipe {
  std::string name = "default";
  double lr = 1e-3;
  double weight_decay = 0.0;
  int warmup_epochs = 1;
  bool cosine = true;
  double final_lr_fraction = 0.01;
  bool augment = true;
  int batch_size = 64;
  int epochs = 30;
  int patience = 5;
};
Recipe make_recipe(const std::string& name);  // throws std::invalid_argument for unknown names
// Learning rate at a fractional epoch t in [0, epochs) (t = epoch + batch / batches_per_epoch).
double learning_rate(const Recipe& r, double t);

// ---- early stopping ---------------------------------------------------------------------------
// Stops when the validation MSE has not improved (strictly below the best) for `patience` epochs.
class EarlyStopping {
 public:
  explicit EarlyStopping(int patience) : patience_(patience) {}
  // Records an epoch's validation loss; returns true when it is a new best.
  bool update(int epoch, double val_loss);
  bool should_stop() const { return bad_epochs_ >= patience_; }
  double best() const { return best_; }
  int best_epoch() const { return best_epoch_; }
  int bad_epochs() const { return bad_epochs_; }
  int patience() const { return patience_; }
  void restore(double best, int best_epoch, int bad_epochs);

 private:
  int patience_;
  double best_ = 1e300;
  int best_epoch_ = -1;
  int bad_epochs_ = 0;
};

// ---- metrics -------------------------------------------------------------------------------------
struct Metrics {
  double mse = 0, rmse = 0, nrmse = 0, mae = 0, r2 = 0;
  double mean_label = 0, var_label = 0;  // var_label is the MSE of predicting the mean
  std::size_t n = 0;
};
// NRMSE = RMSE / mean(truth); R^2 = 1 - MSE / var(truth). Both vectors in original units.
Metrics compute_metrics(const std::vector<double>& truth, const std::vector<double>& pred);

// ---- the run -----------------------------------------------------------------------------------
struct Config {
  std::string model = "resnet18";
  std::string run_dir = "runs/resnet18";
  Recipe recipe;
  uint64_t seed = 0;
  std::string device = "cpu";
  std::string init;     // state dict to start from (e.g. exported from PyTorch)
  bool resume = false;  // continue from run_dir/checkpoint.h5
  data::ImageNorm norm = data::ImageNorm::Log1pStandardize;
  int crop = 0;         // > 0: train and evaluate on the central crop x crop pixels (data::center_crop)
  bool tta = true;      // test metrics averaged over the 8 symmetries as well
  int max_batches_per_epoch = 0;  // 0 = all (a debugging aid)
  int interrupt_after_batches = 0;  // tests: act as if Ctrl-C came after this many batches
  bool progress = true;
};

struct EpochRecord {
  int epoch = 0;
  double train_mse = 0, val_mse = 0, val_nrmse = 0, val_r2 = 0, lr = 0, seconds = 0;
};

enum class Outcome { finished, early_stopped, interrupted, diverged };

struct Result {
  Outcome outcome = Outcome::finished;
  std::vector<EpochRecord> history;
  int best_epoch = -1;
  double best_val_mse = 0;
  Metrics test, test_tta, predict_mean;
  std::string message;
};

// Set from a signal handler: the run stops after the current batch, saves a resumable
// checkpoint and returns Outcome::interrupted.
std::atomic<bool>& stop_requested();

// The smallest image side the models accept (five stride-2 stages: 32 -> 1x1 feature maps).
constexpr int kMinImageSize = 32;

// Trains `cfg.model` on `ds` (centre-cropped first if cfg.crop > 0) with `split` and writes the run
// folder; the weights files record the crop (attribute halo_image_crop) for eval_halo. Throws std::runtime_error or
// std::invalid_argument with a clear message on bad input; files already written stay intact.
Result run(const Config& cfg, std::shared_ptr<const data::Dataset> ds, const data::Split& split);

// ---- devices -------------------------------------------------------------------------------------
// "cpu" or "cuda"; "cuda" without a usable GPU (or in a build without CUDA) throws with the reason.
Device parse_device(const std::string& name);
Device module_device(nn::Module& model);  // where the model's parameters are
// GPU policy from the apps' flags: backend "cudnn" (cuDNN/cuBLAS) or "handwritten" (kernels/cuda/)
// for convolution, batch norm and GEMM; tf32 = PyTorch's default TF32 use, or none.
void configure_gpu(const std::string& backend, bool tf32);
// CPU convolutions from the apps' --cpu-kernels: "halo" (Halo's own kernels/cpu) or "onednn";
// throws std::invalid_argument for another name or for onednn in a build without oneDNN.
void configure_cpu(const std::string& kernels);
// The check behind --cpu-kernels (a CLI11 validator): "" when `kernels` can be used, else why not.
std::string check_cpu_kernels(const std::string& kernels);
// The line the apps print at start: the device and which kernels run there.
std::string describe_kernels(const std::string& device, const std::string& gpu_kernels);

// Predictions (original units) of `model` in eval mode on `indices`, optionally averaged over the
// 8 symmetries of the square.
std::vector<double> predict(nn::Module& model, const data::Dataset& ds, const std::vector<std::size_t>& indices,
                            const data::LabelScaler& scaler, data::ImageNorm norm, bool tta,
                            std::size_t batch_size = 64);

}  // namespace halo::train
