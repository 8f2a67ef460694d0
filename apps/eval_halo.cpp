// eval_halo: evaluates trained weights on a dataset (MSE, NRMSE, R^2, predicted-vs-true scatter,
// per-image predictions) or predicts f_sub for single DeepLense .npy files; optionally averaged
// over the 8 symmetries of the square. The model and the label scaling are read from the weights
// file's attributes (train_halo writes them) or given with flags (weights from PyTorch).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/support/plot.h"
#include "apps/support/trainer.h"
#include "data/deeplense.h"
#include "data/loader.h"
#include "engine/cuda_memory.h"
#include "engine/serialize.h"
#include "kernels/onednn/settings.h"
#include "models/registry.h"

using namespace halo;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{"Evaluate a trained model on a dataset, or predict f_sub for .npy files"};
  std::string weights, model, data_path, list, out_dir, norm, trained_size;
  std::vector<std::string> predict_files;
  double label_mean = NAN, label_std = NAN;
  bool tta = false;
  std::string device;
  int batch = 64, crop = -1;
  app.add_option("--weights", weights, "HDF5 state dict (best.h5 of a train_halo run, or exported from PyTorch)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--model", model, "model name (default: from the weights file)");
  app.add_option("--data", data_path, "a DeepLense .npy folder or an HDF5 dataset to evaluate on");
  app.add_option("--indices", list, "evaluate only the samples listed in this file (names or indices)");
  app.add_option("--predict", predict_files, "predict f_sub for these .npy files")->check(CLI::ExistingFile);
  app.add_option("--out", out_dir, "write metrics.json, predictions.csv and scatter.png here");
  app.add_option("--label-mean", label_mean, "label scaling (default: from the weights file)");
  app.add_option("--label-std", label_std, "label scaling (default: from the weights file)");
  app.add_option("--norm", norm, "image normalisation (default: from the weights file)");
  app.add_option("--crop", crop,
                 "evaluate on the central NxN pixels (default: the crop the weights were trained with, "
                 "recorded in the weights file; 0 = the whole image)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--tta", tta, "average predictions over the 8 symmetries of the square");
  app.add_option("--batch-size", batch, "images per forward pass")->check(CLI::Range(1, 65536));
  app.add_option("--device", device, "cpu | cuda (default: cuda if a GPU is present, else cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  std::string cpu_kernels = kernels::onednn::to_string(kernels::onednn::default_cpu_conv_kernels());
  app.add_option("--cpu-kernels", cpu_kernels,
                 "on the CPU: onednn (oneDNN convolutions, depthwise ones Halo's; the default where built "
                 "with oneDNN) | halo (Halo's own CPU kernels, the reference) | fastest (per layer and "
                 "pass the faster of the two, timed on first use; not bit-reproducible across processes)")
      ->check(CLI::Validator([](std::string& v) { return train::check_cpu_kernels(v); },
                             "halo|onednn|fastest"));
  CLI11_PARSE(app, argc, argv);

  try {
    if (data_path.empty() == predict_files.empty())
      throw std::invalid_argument("give either --data (evaluate a dataset) or --predict FILE... (predict files)");
    for (const auto& [k, v] : read_h5_attributes(weights)) {
      if (k == "halo_model" && model.empty()) model = v;
      if (k == "halo_label_mean" && std::isnan(label_mean)) label_mean = std::stod(v);
      if (k == "halo_label_std" && std::isnan(label_std)) label_std = std::stod(v);
      if (k == "halo_image_norm" && norm.empty()) norm = v;
      if (k == "halo_image_size") trained_size = v;
      if (k == "halo_image_crop" && crop < 0) crop = std::stoi(v);
    }
    if (model.empty())
      throw std::invalid_argument(weights + " does not say which model it holds: give --model");
    if (std::isnan(label_mean) || std::isnan(label_std) || !(label_std > 0))
      throw std::invalid_argument(weights + " carries no label scaling: give --label-mean and --label-std (the "
                                            "mean and std of the training labels)");
    if (crop < 0) crop = 0;
    // The images the model sees: the crop the weights were trained with, then the size check.
    auto prepare = [&](std::shared_ptr<data::Dataset> ds, const std::string& what) {
      const std::string raw = std::to_string(ds->height()) + "x" + std::to_string(ds->width());
      if (crop > 0) {
        try {
          ds = data::center_crop(ds, crop);
        } catch (const std::invalid_argument& e) {
          throw std::invalid_argument(what + ": " + e.what());
        }
      }
      const std::string size = std::to_string(ds->height()) + "x" + std::to_string(ds->width());
      if (!trained_size.empty() && size != trained_size)
        throw std::invalid_argument(what + " has " + raw + " images" +
                                    (crop > 0 ? " (" + size + " after the centre crop)" : std::string()) + ", but " +
                                    weights + " was trained on " + trained_size + " images");
      return ds;
    };
    const data::ImageNorm image_norm = data::parse_image_norm(norm.empty() ? "log1p-standardize" : norm);
    const data::LabelScaler scaler{label_mean, label_std};
    std::shared_ptr<nn::Module> net = models::make_model(model);
    load_module(*net, weights);
    if (device.empty()) device = cuda::gpu_available() && !cuda::emulated_device() ? "cuda" : "cpu";
    const std::string gpu_kernels = cuda::emulated_device() ? "handwritten" : "cudnn";
    if (device == "cuda") train::configure_gpu(gpu_kernels, true);
    train::configure_cpu(cpu_kernels);
    std::printf("%s\n", train::describe_kernels(device, gpu_kernels).c_str());
    net->to(train::parse_device(device));

    if (!predict_files.empty()) {
      for (const std::string& f : predict_files) {
        data::DeepLenseRecord r = data::read_deeplense_file(f);
        std::vector<float> img(r.image.size());
        for (std::size_t i = 0; i < img.size(); ++i) img[i] = static_cast<float>(r.image.value(i));
        auto ds = prepare(data::make_memory_dataset(r.height(), r.width(), img, {r.label.value_or(NAN)}, {f}), f);
        const double p = train::predict(*net, *ds, {0}, scaler, image_norm, tta, 1)[0];
        if (r.label)
          std::printf("%s  predicted %.6f  label %.6f\n", f.c_str(), p, *r.label);
        else
          std::printf("%s  predicted %.6f\n", f.c_str(), p);
      }
      return 0;
    }

    std::shared_ptr<data::Dataset> ds = prepare(data::open_dataset(data_path), data_path);
    std::vector<std::size_t> idx;
    if (!list.empty()) {
      idx = data::read_index_list(*ds, list);
    } else {
      for (std::size_t i = 0; i < ds->size(); ++i) idx.push_back(i);
    }
    std::vector<double> truth;
    for (std::size_t i : idx) {
      truth.push_back(ds->label(i));
      if (!std::isfinite(truth.back()))
        throw std::invalid_argument(data_path + ": sample " + ds->name(i) + " has no finite label");
    }
    std::vector<double> pred = train::predict(*net, *ds, idx, scaler, image_norm, tta, batch);
    const train::Metrics m = train::compute_metrics(truth, pred);
    std::printf("%s on %zu images of %s%s: MSE %.4e  NRMSE %.4f  R2 %.4f  MAE %.4e  (predicting the mean: %.4e)\n",
                model.c_str(), m.n, data_path.c_str(), tta ? " (8-symmetry average)" : "", m.mse, m.nrmse, m.r2, m.mae,
                m.var_label);
    if (!out_dir.empty()) {
      fs::create_directories(out_dir);
      nlohmann::json j{{"model", model}, {"weights", weights}, {"data", data_path}, {"tta", tta}, {"crop", crop},
                       {"n", m.n},       {"mse", m.mse},         {"rmse", m.rmse},   {"nrmse", m.nrmse},
                       {"r2", m.r2},     {"mae", m.mae},         {"predict_the_mean_mse", m.var_label}};
      std::ofstream(fs::path(out_dir) / "metrics.json") << j.dump(2) << "\n";
      std::ofstream csv(fs::path(out_dir) / "predictions.csv");
      csv << "name,label,prediction\n";
      for (std::size_t k = 0; k < idx.size(); ++k)
        csv << fmt::format("{},{:.9g},{:.9g}\n", ds->name(idx[k]), truth[k], pred[k]);
      plot::ChartOptions o;
      o.title = model + ": predicted vs true f_sub";
      o.xlabel = "true f_sub";
      o.ylabel = "predicted f_sub";
      o.notes = {fmt::format("MSE {:.3e}", m.mse), fmt::format("R2 {:.3f}", m.r2)};
      plot::scatter_chart((fs::path(out_dir) / "scatter.png").string(), truth, pred, o);
      std::printf("wrote %s/{metrics.json, predictions.csv, scatter.png}\n", out_dir.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eval_halo: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
