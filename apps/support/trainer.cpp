// The training run of trainer.h: one epoch loop with validation, early stopping, checkpoints
// (written to a temporary name and renamed), curves, and a test evaluation of the best weights.
#include "apps/support/trainer.h"

#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "apps/support/plot.h"
#include "kernels/cpu/isa.h"
#include "engine/autograd.h"
#include "engine/cuda_memory.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/serialize.h"
#include "kernels/onednn/settings.h"
#include "models/registry.h"
#include "models/summary.h"

namespace halo::train {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---- recipes -------------------------------------------------------------------------------------
Recipe make_recipe(const std::string& name) {
  Recipe r;
  r.name = name;
  if (name == "default") return r;
  if (name == "seed") {
    r.lr = 1e-6;
    r.warmup_epochs = 0;
    r.cosine = false;
    r.augment = true;
    r.batch_size = 64;
    r.epochs = 50;
    return r;
  }
  throw std::invalid_argument("unknown recipe '" + name + "' (expected 'default' or 'seed')");
}

double learning_rate(const Recipe& r, double t) {
  if (r.warmup_epochs > 0 && t < r.warmup_epochs) return r.lr * (t + 1e-3) / r.warmup_epochs;
  if (!r.cosine) return r.lr;
  const double span = std::max(1.0, double(r.epochs - r.warmup_epochs));
  const double progress = std::clamp((t - r.warmup_epochs) / span, 0.0, 1.0);
  const double lo = r.lr * r.final_lr_fraction;
  return lo + 0.5 * (r.lr - lo) * (1 + std::cos(M_PI * progress));
}

// ---- early stopping ---------------------------------------------------------------------------------
bool EarlyStopping::update(int epoch, double val_loss) {
  if (std::isfinite(val_loss) && val_loss < best_) {
    best_ = val_loss;
    best_epoch_ = epoch;
    bad_epochs_ = 0;
    return true;
  }
  ++bad_epochs_;
  return false;
}
void EarlyStopping::restore(double best, int best_epoch, int bad_epochs) {
  best_ = best;
  best_epoch_ = best_epoch;
  bad_epochs_ = bad_epochs;
}

// ---- metrics ----------------------------------------------------------------------------------------
Metrics compute_metrics(const std::vector<double>& truth, const std::vector<double>& pred) {
  if (truth.size() != pred.size() || truth.empty())
    throw std::invalid_argument("compute_metrics: " + std::to_string(truth.size()) + " labels and " +
                                std::to_string(pred.size()) + " predictions");
  Metrics m;
  m.n = truth.size();
  double se = 0, ae = 0, sum = 0;
  for (std::size_t i = 0; i < m.n; ++i) {
    se += (pred[i] - truth[i]) * (pred[i] - truth[i]);
    ae += std::abs(pred[i] - truth[i]);
    sum += truth[i];
  }
  m.mean_label = sum / m.n;
  double var = 0;
  for (double t : truth) var += (t - m.mean_label) * (t - m.mean_label);
  m.var_label = var / m.n;
  m.mse = se / m.n;
  m.rmse = std::sqrt(m.mse);
  m.mae = ae / m.n;
  m.nrmse = m.mean_label != 0 ? m.rmse / m.mean_label : NAN;
  m.r2 = m.var_label > 0 ? 1 - m.mse / m.var_label : NAN;
  return m;
}

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

// ---- devices -------------------------------------------------------------------------------------------
Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name != "cuda") throw std::invalid_argument("--device " + name + ": expected cpu or cuda");
  std::string why;
  if (!cuda::gpu_available(&why)) throw std::invalid_argument("--device cuda: no usable GPU (" + why + ")");
  return Device::cuda;
}

Device module_device(nn::Module& model) {
  const auto params = model.named_parameters();
  return params.empty() ? Device::cpu : params.front().second.device();
}

void configure_gpu(const std::string& backend, bool tf32) {
  if (backend != "cudnn" && backend != "handwritten")
    throw std::invalid_argument("--gpu-kernels " + backend + ": expected cudnn or handwritten");
  cuda::use_vendor_libraries(backend == "cudnn");
  if (tf32)
    cuda::set_tf32_default();
  else
    cuda::disable_tf32();
}

std::string check_cpu_kernels(const std::string& kernels) {
  if (kernels != "halo" && kernels != "onednn" && kernels != "fastest")
    return kernels + ": expected halo, onednn or fastest";
  if (kernels != "halo" && !halo::kernels::onednn::available())
    return kernels + ": Halo was built without oneDNN (install libdnnl-dev and rebuild), use halo";
  return "";
}

void configure_cpu(const std::string& kernels) {
  const std::string why = check_cpu_kernels(kernels);
  if (!why.empty()) throw std::invalid_argument("--cpu-kernels " + why);
  halo::kernels::onednn::set_cpu_conv_kernels(
      halo::kernels::onednn::parse_cpu_conv_kernels(kernels));
}

std::string describe_kernels(const std::string& device, const std::string& gpu_kernels) {
  if (device == "cuda") return "device: cuda (GPU kernels: " + gpu_kernels + ")";
  // isa(): the instruction set the CPU kernels run with (kernels/cpu/isa.h; HALO_CPU_ISA lowers it).
  return std::string("device: cpu (CPU convolutions: ") +
         halo::kernels::onednn::to_string(halo::kernels::onednn::cpu_conv_kernels()) +
         "; Halo's CPU kernels: " + halo::kernels::cpu::isa_name(halo::kernels::cpu::isa()) + ", " +
         std::to_string(omp_get_max_threads()) + " threads)";
}

// ---- prediction ---------------------------------------------------------------------------------------
std::vector<double> predict(nn::Module& model, const data::Dataset& ds, const std::vector<std::size_t>& indices,
                            const data::LabelScaler& scaler, data::ImageNorm norm, bool tta,
                            std::size_t batch_size) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  const Device dev = module_device(model);
  model.eval();
  std::vector<double> out(indices.size(), 0.0);
  const int views = tta ? 8 : 1;
  for (std::size_t b0 = 0; b0 < indices.size(); b0 += batch_size) {
    const std::size_t nb = std::min(batch_size, indices.size() - b0);
    std::span<const std::size_t> idx(indices.data() + b0, nb);
    for (int k = 0; k < views; ++k) {
      data::Batch batch = data::make_batch(ds, idx, norm, data::LabelScaler{}, k);
      std::vector<float> pixels(batch.images, batch.images + nb * batch.height * batch.width);
      Tensor y = model(Tensor::from_vector(pixels, {int64_t(nb), 1, batch.height, batch.width}).to(dev));
      const std::vector<float> p = y.to_vector();
      for (std::size_t i = 0; i < nb; ++i) out[b0 + i] += scaler.to_original(p[i]) / views;
    }
  }
  model.train(was_training);
  return out;
}

namespace {

// Doubles are stored bit for bit in int64 datasets so that a resumed run continues from exactly
// the numbers the interrupted one had.
Tensor pack_double(double v) {
  int64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return Tensor::scalar_i64(bits);
}
double unpack_double(const Tensor& t) {
  int64_t bits = t.data_i64()[0];
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

struct Progress {
  bool enabled;
  bool tty;
  Clock::time_point start = Clock::now();
  int last_decile = -1;
  void show(int epoch, std::size_t done, std::size_t total, std::size_t images, double loss) {
    if (!enabled || total == 0) return;
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    const double rate = images / std::max(secs, 1e-9);
    const double eta = done ? secs * (total - done) / done : 0;
    const int width = 30, filled = int(width * done / total);
    const std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
    const std::string line = fmt::format("epoch {:3d} [{}] {:4d}/{:d}  {:6.1f} img/s  ETA {:4.0f}s  loss {:.4f}",
                                         epoch, bar, done, total, rate, eta, loss);
    if (tty) {
      std::fprintf(stderr, "\r%s", line.c_str());
      if (done == total) std::fprintf(stderr, "\n");
    } else {
      const int decile = int(10 * done / total);
      if (decile != last_decile && (decile % 5 == 0 || done == total)) {
        std::fprintf(stderr, "%s\n", line.c_str());
        last_decile = decile;
      }
    }
    std::fflush(stderr);
  }
};

void write_text_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) throw std::runtime_error(tmp.string() + ": cannot open for writing");
    f << text;
    if (!f.flush()) throw std::runtime_error(tmp.string() + ": write failed (disk full?)");
  }
  fs::rename(tmp, path);
}

std::string metrics_csv(const std::vector<EpochRecord>& h) {
  std::string s = "epoch,train_mse,val_mse,val_nrmse,val_r2,lr,seconds\n";
  for (const EpochRecord& r : h)
    s += fmt::format("{},{:.6e},{:.6e},{:.6f},{:.6f},{:.6e},{:.2f}\n", r.epoch, r.train_mse, r.val_mse,
                     r.val_nrmse, r.val_r2, r.lr, r.seconds);
  return s;
}

void write_curves(const fs::path& dir, const std::vector<EpochRecord>& h, double mean_mse, double mean_nrmse,
                  const std::string& model) {
  if (h.empty()) return;
  std::vector<double> ep, tr, va, nr;
  for (const EpochRecord& r : h) {
    ep.push_back(r.epoch);
    tr.push_back(r.train_mse);
    va.push_back(r.val_mse);
    nr.push_back(r.val_nrmse);
  }
  plot::ChartOptions o;
  o.title = model + ": mean squared error per epoch";
  o.xlabel = "epoch";
  o.ylabel = "MSE";
  o.log_y = true;
  o.hline = mean_mse;
  o.hline_label = "predict the mean";
  plot::line_chart((dir / "mse.png").string(),
                   {plot::Series("train", ep, tr), plot::Series("validation", ep, va, std::nullopt, true, true)}, o);
  plot::ChartOptions n = o;
  n.title = model + ": validation NRMSE (RMSE / mean label) per epoch";
  n.ylabel = "NRMSE";
  n.log_y = false;
  n.hline = mean_nrmse;
  plot::line_chart((dir / "nrmse.png").string(), {plot::Series("validation", ep, nr, std::nullopt, true, true)}, n);
}

}  // namespace

Result run(const Config& cfg, std::shared_ptr<const data::Dataset> source, const data::Split& split) {
  if (cfg.crop < 0) throw std::invalid_argument("crop must be >= 0 (0: the whole image), got " + std::to_string(cfg.crop));
  const std::shared_ptr<const data::Dataset> ds = cfg.crop > 0 ? data::center_crop(source, cfg.crop) : source;
  if (split.train.empty() || split.val.empty())
    throw std::invalid_argument("the training and validation splits must not be empty (got " +
                                std::to_string(split.train.size()) + " and " + std::to_string(split.val.size()) +
                                " images)");
  const Device dev = parse_device(cfg.device);
  const fs::path dir(cfg.run_dir);
  fs::create_directories(dir);
  const fs::path ckpt_path = dir / "checkpoint.h5", best_path = dir / "best.h5";
  const Recipe& R = cfg.recipe;

  // Model, optimizer, data.
  nn::manual_seed(cfg.seed);
  std::shared_ptr<nn::Module> model = models::make_model(cfg.model);
  if (!cfg.init.empty()) load_module(*model, cfg.init);
  model->to(dev);  // before the optimizer, whose moment buffers go where the parameters are
  Adam opt(model->named_parameters(), {.lr = R.lr, .weight_decay = R.weight_decay, .decoupled = true});
  const data::LabelScaler scaler = data::LabelScaler::fit(*ds, split.train);
  data::LoaderOptions lo;
  lo.batch_size = R.batch_size;
  lo.shuffle = true;
  lo.augment = R.augment;
  lo.seed = cfg.seed;
  lo.norm = cfg.norm;
  lo.label_scaler = scaler;
  lo.drop_last = split.train.size() > std::size_t(R.batch_size);  // BatchNorm needs > 1 sample
  data::Loader loader(ds, split.train, lo);

  std::vector<double> val_truth;
  for (std::size_t i : split.val) val_truth.push_back(ds->label(i));
  const Metrics mean_val = compute_metrics(val_truth, std::vector<double>(val_truth.size(), scaler.mean));

  // model.json: the summary at this input size.
  {
    if (ds->height() < kMinImageSize || ds->width() < kMinImageSize)
      throw std::invalid_argument(fmt::format("images are {}x{}: the models need at least {}x{}", ds->height(),
                                              ds->width(), kMinImageSize, kMinImageSize));
    if (ds->height() != ds->width())
      throw std::invalid_argument("images must be square for the models, got " + std::to_string(ds->height()) +
                                  "x" + std::to_string(ds->width()));
    models::write_summary_json(models::summarize(*model, cfg.model, ds->height()), (dir / "model.json").string());
  }
  const H5Attributes attrs = {{"halo_model", cfg.model},
                              {"halo_label_mean", fmt::format("{:.17g}", scaler.mean)},
                              {"halo_label_std", fmt::format("{:.17g}", scaler.std)},
                              {"halo_image_norm", std::string(data::image_norm_name(cfg.norm))},
                              {"halo_image_size", fmt::format("{}x{}", ds->height(), ds->width())},
                              {"halo_image_crop", std::to_string(cfg.crop)}};

  Result res;
  EarlyStopping stopper(R.patience);
  int start_epoch = 0;
  std::size_t start_batch = 0;
  double resumed_loss_sum = 0;
  std::size_t resumed_loss_count = 0;

  if (cfg.resume) {
    if (!fs::exists(ckpt_path))
      throw std::runtime_error(ckpt_path.string() + ": no checkpoint to resume from");
    // The checkpoint must have seen the same images: a different size or crop would load (the
    // models take any size) and silently train on other inputs.
    for (const auto& [k, v] : read_h5_attributes(ckpt_path.string())) {
      if (k != "halo_image_size" && k != "halo_image_crop") continue;
      std::string want;
      for (const auto& [k2, v2] : attrs)
        if (k2 == k) want = v2;
      if (v != want)
        throw std::invalid_argument(fmt::format(
            "{}: the run was trained with {} = {}, this one has {}: resume with the same --data and --crop",
            ckpt_path.string(), k, v, want));
    }
    StateDict meta = load_state_dict_file(ckpt_path.string(), "meta");
    StateDict weights = load_state_dict_file(ckpt_path.string(), "model");
    try {
      model->load_state_dict(weights);
      opt.load_state(load_state_dict_file(ckpt_path.string(), "optimizer"));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(ckpt_path.string() + ": does not match model '" + cfg.model + "': " + e.what());
    }
    for (const char* k : {"epoch", "batch", "best_val", "best_epoch", "bad_epochs", "loss_sum", "loss_count"})
      if (!meta.contains(k)) throw std::runtime_error(ckpt_path.string() + ": meta/" + k + " missing");
    start_epoch = int(meta.at("epoch").data_i64()[0]);
    start_batch = std::size_t(meta.at("batch").data_i64()[0]);
    stopper.restore(unpack_double(meta.at("best_val")), int(meta.at("best_epoch").data_i64()[0]),
                    int(meta.at("bad_epochs").data_i64()[0]));
    resumed_loss_sum = unpack_double(meta.at("loss_sum"));
    resumed_loss_count = std::size_t(meta.at("loss_count").data_i64()[0]);
    if (meta.contains("history")) {
      Tensor h = meta.at("history");
      for (int64_t r = 0; r < h.size(0); ++r) {
        const int64_t* v = h.data_i64() + r * 7;
        EpochRecord e;
        e.epoch = int(v[0]);
        double* fields[] = {&e.train_mse, &e.val_mse, &e.val_nrmse, &e.val_r2, &e.lr, &e.seconds};
        for (int j = 0; j < 6; ++j) std::memcpy(fields[j], &v[1 + j], sizeof(double));
        res.history.push_back(e);
      }
    }
    std::printf("resuming %s from epoch %d, batch %zu (best validation MSE %.4e at epoch %d)\n", ckpt_path.c_str(),
                start_epoch + 1, start_batch, stopper.best(), stopper.best_epoch() + 1);
  }

  auto save_checkpoint = [&](int epoch, std::size_t batch, double loss_sum, std::size_t loss_count) {
    StateDict all;
    for (const auto& [k, t] : model->state_dict().items()) all.set("model/" + k, t);
    for (const auto& [k, t] : opt.state().items()) all.set("optimizer/" + k, t);
    all.set("meta/epoch", Tensor::scalar_i64(epoch));
    all.set("meta/batch", Tensor::scalar_i64(int64_t(batch)));
    all.set("meta/best_val", pack_double(stopper.best()));
    all.set("meta/best_epoch", Tensor::scalar_i64(stopper.best_epoch()));
    all.set("meta/bad_epochs", Tensor::scalar_i64(stopper.bad_epochs()));
    all.set("meta/loss_sum", pack_double(loss_sum));
    all.set("meta/loss_count", Tensor::scalar_i64(int64_t(loss_count)));
    if (!res.history.empty()) {
      Tensor h = Tensor::empty({int64_t(res.history.size()), 7}, Device::cpu, DType::i64);
      for (std::size_t r = 0; r < res.history.size(); ++r) {
        const EpochRecord& e = res.history[r];
        int64_t* v = h.data_i64() + r * 7;
        v[0] = e.epoch;
        const double fields[] = {e.train_mse, e.val_mse, e.val_nrmse, e.val_r2, e.lr, e.seconds};
        for (int j = 0; j < 6; ++j) std::memcpy(&v[1 + j], &fields[j], sizeof(double));
      }
      all.set("meta/history", h);
    }
    save_state_dict(all, ckpt_path.string(), attrs);
  };

  const std::size_t batches = cfg.max_batches_per_epoch > 0
                                  ? std::min<std::size_t>(loader.batches_per_epoch(), cfg.max_batches_per_epoch)
                                  : loader.batches_per_epoch();
  std::printf("%s: %lld parameters; %zu train / %zu val / %zu test images of %dx%d; recipe %s (lr %.1e, batch %d, "
              "<= %d epochs, patience %d); predicting the mean gives validation MSE %.4e\n",
              cfg.model.c_str(), (long long)model->num_parameters(), split.train.size(), split.val.size(),
              split.test.size(), ds->height(), ds->width(), R.name.c_str(), R.lr, R.batch_size, R.epochs, R.patience,
              mean_val.mse);
  const bool tty = isatty(fileno(stderr));

  // What a diverged run leaves: the best weights so far, or (diverged in the first epoch) none.
  auto kept_message = [&]() {
    if (stopper.best_epoch() < 0 || !fs::exists(best_path))
      return std::string("no epoch finished with a finite validation MSE, so there are no best weights to keep");
    return fmt::format("the best checkpoint (epoch {}, validation MSE {:.4e}) is kept in {}", stopper.best_epoch() + 1,
                       stopper.best(), best_path.string());
  };

  res.outcome = Outcome::finished;
  std::size_t batches_this_run = 0;
  for (int epoch = start_epoch; epoch < R.epochs; ++epoch) {
    if (stopper.should_stop()) {
      res.outcome = Outcome::early_stopped;
      break;
    }
    const auto t0 = Clock::now();
    model->train();
    loader.start_epoch(epoch);
    Progress bar{cfg.progress, tty};
    double loss_sum = 0;
    std::size_t loss_count = 0, images = 0;
    const std::size_t first = epoch == start_epoch ? start_batch : 0;
    if (first > 0) {
      loss_sum = resumed_loss_sum;
      loss_count = resumed_loss_count;
    }
    double lr = 0;
    // On the GPU the losses are summed on the device and read every `read_every` steps, so the
    // host does not wait for the GPU after each step; on the CPU every loss is read at once.
    const std::size_t read_every = dev == Device::cuda ? 25 : 1;
    Tensor loss_acc = Tensor::zeros({}, dev);
    std::size_t pending = 0;
    float last_loss = NAN;
    // Adds the pending losses to the epoch's sum; false if one of them was not finite.
    auto read_losses = [&]() {
      if (pending == 0) return true;
      const double sum = loss_acc.item();
      loss_acc.fill_(0.f);
      last_loss = float(sum / double(pending));
      loss_sum += sum;
      loss_count += pending;
      pending = 0;
      return std::isfinite(sum);
    };
    auto diverge = [&](int ep, std::size_t batch_no) {
      res.outcome = Outcome::diverged;
      res.message = fmt::format("the training loss became {} at epoch {}, batch {}: stopping; {}", last_loss, ep + 1,
                                batch_no + 1, kept_message());
    };
    for (std::size_t b = 0; b < batches; ++b) {
      std::optional<data::Batch> batch = loader.next();
      if (!batch) break;
      if (b < first) continue;  // already trained on before the interruption
      lr = learning_rate(R, epoch + double(b) / batches);
      opt.set_lr(lr);
      const int64_t n = int64_t(batch->size);
      std::vector<float> px(batch->images, batch->images + n * batch->height * batch->width);
      Tensor x = Tensor::from_vector(px, {n, 1, batch->height, batch->width}).to(dev);
      Tensor y = Tensor::from_vector(std::vector<float>(batch->labels, batch->labels + n), {n, 1}).to(dev);
      Tensor loss = mse_loss((*model)(x), y);
      add_(loss_acc, loss.detach());
      ++pending;
      if (dev == Device::cpu && !read_losses()) {  // before the update: the weights stay finite
        diverge(epoch, b);
        break;
      }
      opt.zero_grad();
      loss.backward();
      opt.step();
      images += batch->size;
      ++batches_this_run;
      const bool stop_now =
          stop_requested().load() ||
          (cfg.interrupt_after_batches > 0 && batches_this_run >= std::size_t(cfg.interrupt_after_batches));
      if ((pending >= read_every || b + 1 == batches || stop_now) && !read_losses()) {
        diverge(epoch, b);
        break;
      }
      bar.show(epoch + 1, b + 1, batches, images, last_loss);
      if (stop_now) {
        save_checkpoint(epoch, b + 1, loss_sum, loss_count);
        res.outcome = Outcome::interrupted;
        res.message = fmt::format("interrupted at epoch {}, batch {}: resumable checkpoint written to {} (run "
                                  "again with --resume)",
                                  epoch + 1, b + 1, ckpt_path.string());
        break;
      }
    }
    if (res.outcome == Outcome::diverged || res.outcome == Outcome::interrupted) break;
    if (!read_losses()) {  // the loader ended the epoch early with losses still on the device
      diverge(epoch, batches - 1);
      break;
    }

    // Validation in original units.
    std::vector<double> pred = predict(*model, *ds, split.val, scaler, cfg.norm, false, R.batch_size);
    const Metrics vm = compute_metrics(val_truth, pred);
    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.train_mse = scaler.mse_to_original(loss_count ? loss_sum / loss_count : NAN);
    rec.val_mse = vm.mse;
    rec.val_nrmse = vm.nrmse;
    rec.val_r2 = vm.r2;
    rec.lr = lr;
    rec.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    res.history.push_back(rec);
    if (!std::isfinite(vm.mse)) {
      res.outcome = Outcome::diverged;
      res.message =
          fmt::format("the validation MSE is {} after epoch {}: stopping; {}", vm.mse, epoch + 1, kept_message());
      break;
    }
    const bool improved = stopper.update(epoch, vm.mse);
    std::printf("epoch %3d  train MSE %.4e  val MSE %.4e  val NRMSE %.4f  R2 %+.4f  lr %.2e  %.0fs%s\n", epoch + 1,
                rec.train_mse, vm.mse, vm.nrmse, vm.r2, lr, rec.seconds, improved ? "  *best" : "");
    std::fflush(stdout);
    if (improved) save_state_dict(model->state_dict(), best_path.string(), attrs);
    save_checkpoint(epoch + 1, 0, 0, 0);
    write_text_atomic(dir / "metrics.csv", metrics_csv(res.history));
    write_curves(dir, res.history, mean_val.mse, mean_val.nrmse, cfg.model);
  }
  if (res.outcome == Outcome::finished && stopper.should_stop()) res.outcome = Outcome::early_stopped;
  res.best_epoch = stopper.best_epoch() + 1;
  res.best_val_mse = stopper.best();
  if (res.outcome == Outcome::interrupted) return res;

  // Test split with the best weights.
  if (!split.test.empty() && fs::exists(best_path)) {
    load_module(*model, best_path.string());
    std::vector<double> truth;
    for (std::size_t i : split.test) truth.push_back(ds->label(i));
    std::vector<double> pred = predict(*model, *ds, split.test, scaler, cfg.norm, false, R.batch_size);
    res.test = compute_metrics(truth, pred);
    res.predict_mean = compute_metrics(truth, std::vector<double>(truth.size(), scaler.mean));
    nlohmann::json j;
    auto put = [](const Metrics& m) {
      return nlohmann::json{{"mse", m.mse}, {"rmse", m.rmse}, {"nrmse", m.nrmse}, {"mae", m.mae},
                            {"r2", m.r2}, {"n", m.n}, {"mean_label", m.mean_label}};
    };
    j["model"] = cfg.model;
    j["recipe"] = R.name;
    j["best_epoch"] = res.best_epoch;
    j["best_val_mse"] = res.best_val_mse;
    j["epochs_run"] = res.history.size();
    j["image_size"] = ds->height();
    j["crop"] = cfg.crop;
    j["test"] = put(res.test);
    j["predict_the_mean"] = put(res.predict_mean);
    if (cfg.tta) {
      std::vector<double> pred8 = predict(*model, *ds, split.test, scaler, cfg.norm, true, R.batch_size);
      res.test_tta = compute_metrics(truth, pred8);
      j["test_tta8"] = put(res.test_tta);
    }
    write_text_atomic(dir / "test_metrics.json", j.dump(2) + "\n");
    std::string csv = "name,label,prediction\n";
    for (std::size_t k = 0; k < truth.size(); ++k)
      csv += fmt::format("{},{:.9g},{:.9g}\n", ds->name(split.test[k]), truth[k], pred[k]);
    write_text_atomic(dir / "test_predictions.csv", csv);
    plot::ChartOptions o;
    o.title = cfg.model + ": predicted vs true f_sub (test split)";
    o.xlabel = "true f_sub";
    o.ylabel = "predicted f_sub";
    o.notes = {fmt::format("MSE {:.3e}", res.test.mse), fmt::format("R2 {:.3f}", res.test.r2)};
    plot::scatter_chart((dir / "scatter_test.png").string(), truth, pred, o);
  }
  return res;
}

}  // namespace halo::train
