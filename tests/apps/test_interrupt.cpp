// Ctrl-C as a user presses it: a real SIGINT sent to a running train_halo process makes it save a
// resumable checkpoint and exit; `train_halo --resume` then finishes the run with exactly the
// numbers and weights of a run that was never interrupted (README, "Safety").
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "apps/support/simulated_data.h"
#include "engine/serialize.h"
#include "tests/apps/cli_util.h"
#include "tests/common/temp_dir.h"

using namespace halo;
using namespace halo::test;
namespace fs = std::filesystem;

namespace {

// Starts `argv` with stdout and stderr going to `log`; returns the child's pid.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  // Everything the child needs is made before fork(): between fork and exec only async-signal-safe
  // calls (the test process has threads).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    signal(SIGINT, SIG_DFL);  // as from a terminal, whatever the test runner set
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// The metrics.csv rows without the wall-clock column.
std::vector<std::string> metrics_without_seconds(const std::string& path) {
  const Csv c = read_csv(path);
  const int sec = c.col("seconds");
  std::vector<std::string> rows;
  for (const auto& r : c.rows) {
    std::string s;
    for (int i = 0; i < int(r.size()); ++i)
      if (i != sec) s += r[std::size_t(i)] + ",";
    rows.push_back(s);
  }
  return rows;
}

void expect_same_tensors(const StateDict& a, const StateDict& b, const std::string& what) {
  ASSERT_EQ(a.keys(), b.keys()) << what;
  for (const auto& [k, t] : a.items()) {
    const Tensor& u = b.at(k);
    ASSERT_EQ(t.dtype(), u.dtype()) << what << " " << k;
    if (t.dtype() == DType::f32) {
      EXPECT_EQ(t.to_vector(), u.to_vector()) << what << " " << k << " differs";
    } else {
      EXPECT_TRUE(std::equal(t.data_i64(), t.data_i64() + t.numel(), u.data_i64()))
          << what << " " << k;
    }
  }
}

}  // namespace

TEST(TrainHaloSignal, SigintLeavesACheckpointThatResumesToTheSameResult) {
  TempDir dir("halo_sigint");
  const std::string data = dir / "data.h5";
  apps::write_simulated_hdf5(data, "model1", 40, 32, 11, 2, /*progress=*/false);
  // 32 training images in batches of 4, 3 steps per epoch, 3 epochs. (One thread: ctest runs two
  // tests at once on CI's two cores.)
  const std::vector<std::string> args = {app_path("train_halo"),
                                         "--data",
                                         data,
                                         "--device",
                                         "cpu",
                                         "--quiet",
                                         "--no-tta",
                                         "--threads",
                                         "1",
                                         "--epochs",
                                         "3",
                                         "--batch-size",
                                         "4",
                                         "--max-batches",
                                         "3",
                                         "--seed",
                                         "1",
                                         "--run-dir"};
  std::string args_line;
  for (const std::string& a : args) args_line += a + " ";

  // The interrupted run: SIGINT as soon as epoch 1's checkpoint is on disk, so it lands in epoch 2
  // (the run stops after the batch it lands in, or after the next epoch's first if it lands between
  // epochs); epoch 3 leaves room for a slow machine.
  const std::string rd = dir / "interrupted";
  std::vector<std::string> argv = args;
  argv.push_back(rd);
  const pid_t pid = spawn(argv, dir / "interrupted.log");
  ASSERT_GT(pid, 0);
  int status = 0;
  bool exited = false;
  const auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(rd + "/checkpoint.h5")) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    if (std::chrono::steady_clock::now() - t0 > std::chrono::minutes(5)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL() << "no checkpoint after 5 minutes\n" << slurp(dir / "interrupted.log");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(exited) << "train_halo ended before its first checkpoint\n"
                       << slurp(dir / "interrupted.log");
  ASSERT_EQ(kill(pid, SIGINT), 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const std::string log = slurp(dir / "interrupted.log");
  ASSERT_TRUE(WIFEXITED(status)) << "killed by the signal instead of stopping cleanly\n" << log;
  EXPECT_EQ(WEXITSTATUS(status), 130) << log;
  EXPECT_TRUE(contains(log, "interrupted at epoch")) << log;
  EXPECT_TRUE(contains(log, "resumable checkpoint written to " + rd + "/checkpoint.h5")) << log;
  EXPECT_FALSE(contains(log, "test: MSE"))
      << "an interrupted run must not go on to the test split\n"
      << log;
  // The checkpoint is mid-epoch: it records the batches already trained on.
  const StateDict meta = load_state_dict_file(rd + "/checkpoint.h5", "meta");
  EXPECT_GT(meta.at("batch").data_i64()[0], 0);
  const int64_t epoch = meta.at("epoch").data_i64()[0];  // 0-based
  EXPECT_TRUE(epoch == 1 || epoch == 2) << epoch;
  EXPECT_EQ(read_csv(rd + "/metrics.csv").rows.size(),
            std::size_t(epoch));  // the finished epochs are kept

  // Starting it again without --resume would overwrite it: refused.
  CmdResult r = run_cmd(args_line + rd);
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "--resume")) << r.output;
  // --resume continues it to the end.
  r = run_cmd(args_line + rd + " --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "resuming " + rd + "/checkpoint.h5 from epoch")) << r.output;

  // The same run, never interrupted.
  const std::string sd = dir / "straight";
  r = run_cmd(args_line + sd);
  ASSERT_EQ(r.code, 0) << r.output;

  EXPECT_EQ(metrics_without_seconds(rd + "/metrics.csv"),
            metrics_without_seconds(sd + "/metrics.csv"));
  EXPECT_EQ(read_csv(rd + "/metrics.csv").rows.size(), 3u);
  expect_same_tensors(load_state_dict_file(rd + "/best.h5"), load_state_dict_file(sd + "/best.h5"),
                      "best.h5");
  expect_same_tensors(load_state_dict_file(rd + "/checkpoint.h5", "model"),
                      load_state_dict_file(sd + "/checkpoint.h5", "model"), "final weights");
  expect_same_tensors(load_state_dict_file(rd + "/checkpoint.h5", "optimizer"),
                      load_state_dict_file(sd + "/checkpoint.h5", "optimizer"),
                      "final optimizer state");
  EXPECT_EQ(slurp(rd + "/test_predictions.csv"), slurp(sd + "/test_predictions.csv"));

  // --resume where there is nothing to resume: a clear refusal.
  r = run_cmd(args_line + (dir / "empty") + " --resume");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "no checkpoint to resume from")) << r.output;
}
