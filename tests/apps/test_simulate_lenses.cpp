// End-to-end tests of the simulate_lenses executable: a small run in each format read back with
// the Halo readers (and numpy when present), identical output for any thread count, the same
// images in both formats, refusal to overwrite without --force, and clean failure on bad flags.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/deeplense.h"
#include "data/hdf5_dataset.h"

namespace fs = std::filesystem;
using namespace halo::data;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("halo_test_simulate_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string exe() {
  return std::string(HALO_BINARY_DIR) + "/apps/simulate_lenses";
}

// Runs simulate_lenses with `args`; returns its exit status (stderr goes to `log`).
int run(const std::string& args, const std::string& log) {
  const std::string cmd = exe() + " " + args + " --quiet 2>" + log;
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Skips the test where the executable is missing or was built without the simulator.
#define REQUIRE_SIMULATOR()                                                        \
  do {                                                                             \
    if (!fs::exists(exe())) GTEST_SKIP() << exe() << " is not built";              \
    TempDir probe_;                                                                \
    if (run("--count 1 --size 16 --out " + (probe_ / "p"), probe_ / "log") != 0 && \
        slurp(probe_ / "log").find("no lensing simulator") != std::string::npos)   \
      GTEST_SKIP() << "simulate_lenses was built without data/lens/simulator.h";   \
  } while (0)

}  // namespace

TEST(SimulateLenses, NpyFolderIsReadableAndThreadIndependent) {
  REQUIRE_SIMULATOR();
  TempDir dir;
  ASSERT_EQ(run("--preset model1 --count 6 --size 32 --seed 5 --threads 2 --format npy --out " +
                    (dir / "a") + " --preview " + (dir / "a.png"),
                dir / "log"),
            0)
      << slurp(dir / "log");
  ASSERT_EQ(run("--preset model1 --count 6 --size 32 --seed 5 --threads 1 --format npy --out " +
                    (dir / "b"),
                dir / "log"),
            0)
      << slurp(dir / "log");
  std::vector<std::string> files = list_npy_files(dir / "a");
  ASSERT_EQ(files.size(), 6u);
  for (uint64_t i = 0; i < 6; ++i) {
    const std::string name = deeplense_file_name_for(5, i);
    ASSERT_TRUE(fs::exists(dir.path / "a" / name)) << name;
    DeepLenseRecord r = read_deeplense_file((dir.path / "a" / name).string());
    EXPECT_EQ(r.image.dtype, DType::Int64);
    EXPECT_EQ(r.height(), 32);
    EXPECT_EQ(r.width(), 32);
    ASSERT_TRUE(r.label);
    EXPECT_TRUE(*r.label >= 0 && *r.label < 0.5) << *r.label;
    for (size_t p = 0; p < r.image.size(); ++p) ASSERT_GE(r.image.data<int64_t>()[p], 0);
    // One thread or two: the very same bytes.
    EXPECT_EQ(slurp((dir.path / "a" / name).string()), slurp((dir.path / "b" / name).string()))
        << name;
  }
  // Settings and per-image parameters beside the folder; the folder holds only .npy files.
  nlohmann::json settings = nlohmann::json::parse(slurp(dir / "a.settings.json"));
  EXPECT_EQ(settings["seed"], 5);
  EXPECT_EQ(settings["count"], 6);
  EXPECT_EQ(settings["size"], 32);
  std::ifstream csv(dir / "a.params.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  EXPECT_EQ(lines, 7);  // header + 6
  for (const auto& e : fs::directory_iterator(dir.path / "a"))
    EXPECT_EQ(e.path().extension(), ".npy");
  EXPECT_GT(fs::file_size(dir / "a.png"), 1000u);
  // No temporary folders are left.
  for (const auto& e : fs::directory_iterator(dir.path))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(SimulateLenses, Hdf5HoldsTheSameImagesAsTheNpyFolder) {
  REQUIRE_SIMULATOR();
  TempDir dir;
  ASSERT_EQ(run("--count 4 --size 24 --seed 9 --format npy --out " + (dir / "n"), dir / "log"), 0)
      << slurp(dir / "log");
  ASSERT_EQ(run("--count 4 --size 24 --seed 9 --format hdf5 --out " + (dir / "s.h5"), dir / "log"),
            0)
      << slurp(dir / "log");
  Hdf5DatasetReader r(dir / "s.h5");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r.height(), 24);
  EXPECT_EQ(r.image_dtype(), DType::Int64);
  EXPECT_FALSE(r.param_names().empty());
  EXPECT_EQ(r.attributes()["seed"], 9);
  EXPECT_EQ(r.attributes()["preset"], "model1");
  for (uint64_t i = 0; i < 4; ++i) {
    DeepLenseRecord rec =
        read_deeplense_file((dir.path / "n" / deeplense_file_name_for(9, i)).string());
    EXPECT_EQ(r.labels()[i], *rec.label);
    std::vector<int64_t> img = r.read_image_int64(i);
    EXPECT_EQ(0, std::memcmp(img.data(), rec.image.bytes.data(), rec.image.bytes.size()))
        << "image " << i;
  }
}

TEST(SimulateLenses, RefusesToOverwriteWithoutForce) {
  REQUIRE_SIMULATOR();
  TempDir dir;
  fs::create_directories(dir.path / "out");
  std::ofstream(dir / "out/keep.txt") << "precious";
  EXPECT_NE(run("--count 2 --size 16 --out " + (dir / "out"), dir / "log"), 0);
  EXPECT_NE(slurp(dir / "log").find("--force"), std::string::npos) << slurp(dir / "log");
  EXPECT_EQ(slurp(dir / "out/keep.txt"), "precious");
  std::ofstream(dir / "f.h5") << "precious";
  EXPECT_NE(run("--count 2 --size 16 --format hdf5 --out " + (dir / "f.h5"), dir / "log"), 0);
  EXPECT_EQ(slurp(dir / "f.h5"), "precious");
  // An empty folder is fine; --force replaces a non-empty one.
  fs::create_directories(dir.path / "empty");
  EXPECT_EQ(run("--count 2 --size 16 --out " + (dir / "empty"), dir / "log"), 0)
      << slurp(dir / "log");
  EXPECT_EQ(list_npy_files(dir / "empty").size(), 2u);
  EXPECT_EQ(run("--count 3 --size 16 --force --out " + (dir / "out"), dir / "log"), 0)
      << slurp(dir / "log");
  EXPECT_FALSE(fs::exists(dir / "out/keep.txt"));
  EXPECT_EQ(list_npy_files(dir / "out").size(), 3u);
  EXPECT_EQ(run("--count 2 --size 16 --format hdf5 --force --out " + (dir / "f.h5"), dir / "log"),
            0);
  EXPECT_EQ(Hdf5DatasetReader(dir / "f.h5").size(), 2u);
}

TEST(SimulateLenses, BadFlagsFailCleanly) {
  REQUIRE_SIMULATOR();
  TempDir dir;
  EXPECT_NE(run("--count 2 --format tiff --out " + (dir / "x"), dir / "log"), 0);
  EXPECT_NE(run("--count 2 --preset nope --out " + (dir / "x"), dir / "log"), 0);
  EXPECT_NE(run("--count 2 --subhalo-profile blob --out " + (dir / "x"), dir / "log"), 0);
  // A missing parent folder is created (SmallFaults.SimulateLensesCreatesMissingParentFolders); one
  // that cannot be, because a file has its name, is an error naming it.
  std::ofstream(dir / "file") << "x";
  EXPECT_NE(run("--count 2 --out " + (dir / "file/x"), dir / "log"), 0);
  EXPECT_NE(slurp(dir / "log").find(dir / "file"), std::string::npos) << slurp(dir / "log");
  EXPECT_NE(slurp(dir / "log").find("cannot create the folder"), std::string::npos)
      << slurp(dir / "log");
  EXPECT_FALSE(fs::exists(dir / "x"));
}

TEST(SimulateLenses, NumpyLoadsTheOutput) {
  REQUIRE_SIMULATOR();
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no /usr/bin/python3 with numpy: skipping the np.load check";
  TempDir dir;
  ASSERT_EQ(run("--count 3 --size 20 --seed 2 --out " + (dir / "d"), dir / "log"), 0)
      << slurp(dir / "log");
  const std::string py =
      "import glob, numpy as np, sys\n"
      "fs = sorted(glob.glob(sys.argv[1] + '/*.npy'))\n"
      "assert len(fs) == 3, fs\n"
      "for f in fs:\n"
      "    a = np.load(f, allow_pickle=True)\n"
      "    assert a.dtype == object and a.shape == (2,)\n"
      "    assert a[0].dtype == np.int64 and a[0].shape == (20, 20)\n"
      "    assert isinstance(a[1], np.float64)\n"
      "    a[1].astype('float32')\n";
  std::ofstream(dir / "check.py") << py;
  EXPECT_EQ(std::system(("/usr/bin/python3 " + (dir / "check.py") + " " + (dir / "d")).c_str()), 0);
}
