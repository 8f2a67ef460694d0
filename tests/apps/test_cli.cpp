// train_halo and eval_halo as a user runs them: bad input gives a clear message and a non-zero
// exit, and a tiny simulated run leaves a run folder that eval_halo can read.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "apps/support/simulated_data.h"
#include "engine/cuda_memory.h"
#include "kernels/onednn/settings.h"
#include "tests/apps/cli_util.h"

namespace fs = std::filesystem;

namespace {
using halo::test::app;
using halo::test::CmdResult;
CmdResult run(const std::string& cmd) {
  return halo::test::run_cmd(cmd);
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("halo_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    data_ = (dir_ / "tiny.h5").string();
    halo::apps::write_simulated_hdf5(data_, "model1", 40, 32, 1, 2);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static inline fs::path dir_;
  static inline std::string data_;
};
}  // namespace

TEST_F(Cli, UnknownModelOrFlagIsRefused) {
  CmdResult r = run(app("train_halo") + " --model resnet99 --data " + data_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("resnet18"), std::string::npos) << r.output;  // lists the valid names
  r = run(app("train_halo") + " --no-such-flag");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--no-such-flag"), std::string::npos) << r.output;
}

TEST_F(Cli, MissingDataIsRefused) {
  CmdResult r = run(app("train_halo") + " --data " + (dir_ / "nope").string() + " --run-dir " +
                    (dir_ / "r0").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("no such file or folder"), std::string::npos) << r.output;
}

TEST_F(Cli, TrainThenEvaluateAndRefuseBadCheckpoints) {
  const std::string rd = (dir_ / "run").string();
  CmdResult r = run(app("train_halo") + " --data " + data_ + " --run-dir " + rd +
                    " --epochs 1 --batch-size 8 --quiet --no-tta --device cpu");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("val MSE"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(fs::path(rd) / "best.h5"));
  // Training again into the same folder without --resume would overwrite it: refused.
  r = run(app("train_halo") + " --data " + data_ + " --run-dir " + rd + " --epochs 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
  // eval_halo reads the model and label scaling from best.h5.
  r = run(app("eval_halo") + " --weights " + rd + "/best.h5 --data " + data_);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("MSE"), std::string::npos) << r.output;
  // Weights of another model: the message names a key and what was expected.
  r = run(app("eval_halo") + " --weights " + rd + "/best.h5 --model resnet26 --data " + data_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("key"), std::string::npos) << r.output;
  // A corrupt checkpoint.
  const std::string bad = (dir_ / "corrupt.h5").string();
  std::ofstream(bad) << "not a checkpoint";
  r = run(app("eval_halo") + " --weights " + bad +
          " --model resnet18 --label-mean 0.04 --label-std 0.01 --data " + data_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("not an HDF5 file"), std::string::npos) << r.output;
  r = run(app("train_halo") + " --data " + data_ + " --init " + bad + " --run-dir " +
          (dir_ / "r2").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(bad), std::string::npos) << r.output;
  // Images of another size than the model was trained on.
  const std::string other = (dir_ / "other.h5").string();
  halo::apps::write_simulated_hdf5(other, "model1", 4, 48, 2, 1);
  r = run(app("eval_halo") + " --weights " + rd + "/best.h5 --data " + other);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("trained on 32x32"), std::string::npos) << r.output;
}

TEST_F(Cli, TooSmallImagesAreRefused) {
  const std::string small = (dir_ / "small.h5").string();
  halo::apps::write_simulated_hdf5(small, "model1", 20, 16, 3, 1);
  CmdResult r =
      run(app("train_halo") + " --data " + small + " --run-dir " + (dir_ / "r3").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("at least 32x32"), std::string::npos) << r.output;
}

// --cpu-kernels: a bad name is refused by the parser with the valid names; halo and onednn each
// train a couple of steps and evaluate, and say at start which CPU convolutions run. In a build
// without oneDNN, onednn is refused saying so.
TEST_F(Cli, CpuKernelsBadNameIsRefused) {
  CmdResult r = run(app("train_halo") + " --data " + data_ + " --run-dir " +
                    (dir_ / "run_bogus").string() + " --cpu-kernels bogus");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("expected halo, onednn or fastest"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "run_bogus"));
  r = run(app("eval_halo") + " --weights " + data_ + " --data " + data_ + " --cpu-kernels bogus");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("expected halo, onednn or fastest"), std::string::npos) << r.output;
}

TEST_F(Cli, CpuKernelsHaloAndOneDnnTrainAndEvaluate) {
  for (const std::string kernels : {"halo", "onednn"}) {
    SCOPED_TRACE(kernels);
    const std::string rd = (dir_ / ("run_cpu_" + kernels)).string();
    CmdResult r = run(app("train_halo") + " --data " + data_ + " --run-dir " + rd +
                      " --epochs 1 --batch-size 8 --max-batches 2 --quiet --no-tta --device cpu" +
                      " --cpu-kernels " + kernels);
    if (kernels == "onednn" && !halo::kernels::onednn::available()) {
      EXPECT_NE(r.code, 0);
      EXPECT_NE(r.output.find("built without oneDNN"), std::string::npos) << r.output;
      continue;
    }
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("CPU convolutions: " + kernels), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("val MSE"), std::string::npos) << r.output;
    r = run(app("eval_halo") + " --weights " + rd + "/best.h5 --data " + data_ +
            " --device cpu --cpu-kernels " + kernels);
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("CPU convolutions: " + kernels), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("MSE"), std::string::npos) << r.output;
  }
}

// HALO_CPU_ISA picks the CPU kernels' instruction set (kernels/cpu/isa.h): sse2 runs and says so;
// a name that is no variant is refused with the valid ones, before any run folder is made.
TEST_F(Cli, CpuIsaVariableIsObeyedOrRefused) {
  const std::string rd = (dir_ / "run_sse2").string();
  CmdResult r = run("HALO_CPU_ISA=sse2 " + app("train_halo") + " --data " + data_ +
                    " --run-dir " + rd +
                    " --epochs 1 --batch-size 8 --max-batches 2 --quiet --no-tta --device cpu");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Halo's CPU kernels: sse2"), std::string::npos) << r.output;
  r = run("HALO_CPU_ISA=avx3 " + app("train_halo") + " --data " + data_ + " --run-dir " +
          (dir_ / "run_avx3").string() + " --epochs 1 --quiet --device cpu");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("HALO_CPU_ISA=avx3: expected sse2, avx2 or avx512"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "run_avx3"));
}

// --device cuda: without a usable GPU a clear refusal naming the reason; with one, a whole tiny run
// on the GPU (training, validation, test metrics) that eval_halo then reads on the GPU too. On the
// emulated CUDA device the same run with the hand-written kernels, and a plain refusal of cuDNN.
TEST_F(Cli, DeviceCudaTrainsOnAGpuOrSaysWhyNot) {
  const std::string rd = (dir_ / "run_cuda").string();
  const bool emulated = halo::cuda::emulated_device();
  // The emulated device runs every GPU thread as a fiber: a few steps on 12 images there.
  std::string data = data_;
  if (emulated) {
    data = (dir_ / "tiny12.h5").string();
    halo::apps::write_simulated_hdf5(data, "model1", 12, 32, 1, 2);
  }
  const std::string cmd =
      app("train_halo") + " --data " + data + " --run-dir " + rd +
      (emulated ? " --epochs 1 --batch-size 4 --no-tta" : " --epochs 2 --batch-size 8") +
      " --quiet --device cuda";
  std::string why;
  if (!halo::cuda::gpu_available(&why)) {
    CmdResult r = run(cmd);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.output.find("--device cuda"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(fs::path(rd) / "checkpoint.h5"));
    return;
  }
  RecordProperty("device", emulated ? "emulated" : "gpu");
  if (emulated) {
    CmdResult r = run(cmd + " --gpu-kernels cudnn");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.output.find("need a real GPU"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(fs::path(rd) / "checkpoint.h5"));
  }
  std::vector<std::string> kernel_sets = {"handwritten"};
  if (!emulated) kernel_sets.insert(kernel_sets.begin(), "cudnn");
  for (const std::string& kernels : kernel_sets) {
    SCOPED_TRACE(kernels);
    fs::remove_all(rd);
    CmdResult r = run(cmd + " --gpu-kernels " + kernels);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("val MSE"), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(fs::path(rd) / "test_metrics.json"));
    r = run(app("eval_halo") + " --weights " + rd + "/best.h5 --data " + data + " --device cuda");
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("MSE"), std::string::npos) << r.output;
  }
}

// compare_runs: the table and figures from run folders; an unfinished run is listed as such; a
// folder that is not a run is refused by name.
TEST_F(Cli, CompareRunsTablesFinishedAndUnfinishedRuns) {
  const fs::path a = dir_ / "cmp" / "resnet18_default", b = dir_ / "cmp" / "convnext_pico_seed";
  fs::create_directories(a);
  fs::create_directories(b);
  std::ofstream(a / "metrics.csv")
      << "epoch,train_mse,val_mse,val_nrmse,val_r2,lr,seconds\n"
         "1,2.0e-04,1.9e-04,0.33,0.03,1.0e-03,10\n2,1.5e-04,1.2e-04,0.26,0.39,5.0e-04,10\n";
  std::ofstream(a / "test_metrics.json")
      << R"({"model": "resnet18", "recipe": "default", "epochs_run": 2, "best_epoch": 2,
             "test": {"mse": 1.18e-4, "nrmse": 0.26, "r2": 0.39},
             "test_tta8": {"mse": 9.1e-5, "nrmse": 0.23, "r2": 0.53},
             "predict_the_mean": {"mse": 1.93e-4, "nrmse": 0.33, "r2": 0.0}})";
  std::ofstream(b / "metrics.csv") << "epoch,train_mse,val_mse,val_nrmse,val_r2,lr,seconds\n"
                                      "1,2.1e-04,2.0e-04,0.34,-0.01,1.0e-06,10\n";
  const fs::path out = dir_ / "cmp_out";
  CmdResult r =
      run(app("compare_runs") + " " + a.string() + " " + b.string() + " --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* f : {"val_mse.png", "val_nrmse.png", "results.md", "results.csv"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  std::ifstream md(out / "results.md");
  const std::string table((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(table.find("| predict the mean | | | | 1.930e-04 | 0.330 |"), std::string::npos)
      << table;
  EXPECT_NE(table.find("| resnet18_default | resnet18 | default | 2 (2) | 1.180e-04 | 0.260 | 0.39 "
                       "| 9.100e-05 | 0.53 |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("| convnext_pico_seed | | | 1 (not finished)"), std::string::npos) << table;
  r = run(app("compare_runs") + " " + (dir_ / "no_run_here").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("no_run_here/metrics.csv: not found"), std::string::npos) << r.output;
}
