// Tests of the HDF5 data set writer and reader (data/hdf5_dataset.h): round trips of int64 and
// float32 images with labels, parameter tables and attributes; random index reads; and clear
// errors for missing or malformed datasets. Broken files are made with the HDF5 C API directly.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/common/temp_dir.h"
#include "data/hdf5_dataset.h"

namespace fs = std::filesystem;
using namespace halo::data;

namespace {

using halo::test::expect_error;
struct TempDir : halo::test::TempDir {
  TempDir() : halo::test::TempDir("halo_test_h5") {}
};

std::vector<int64_t> counts(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<int64_t>(rng() % 5000);
  return v;
}

// Writes a small file: n images of h x w, label i * 0.01, params b = -i and a = i (in that order).
void write_small(const std::string& path, int n, int h, int w, Hdf5WriteOptions opt = {}) {
  nlohmann::json attrs = {{"preset", "model1"},        {"count", n},
                          {"pixel_scale", 0.05},       {"poisson", true},
                          {"mass_range", {1e6, 1e10}}, {"nested", {{"a", 1}}}};
  Hdf5DatasetWriter wr(path, h, w, {"b", "a"}, attrs, opt);
  for (int i = 0; i < n; ++i) {
    std::vector<int64_t> img = counts(h * w, static_cast<uint64_t>(i));
    const double p[2] = {-static_cast<double>(i), static_cast<double>(i)};
    wr.append(img.data(), i * 0.01, p);
  }
  EXPECT_EQ(wr.count(), static_cast<size_t>(n));
  wr.finish();
}

}  // namespace

TEST(Hdf5Dataset, RoundTripInt64WithParamsAndAttributes) {
  TempDir dir;
  const std::string path = dir / "set.h5";
  write_small(path, 37, 10, 12);
  Hdf5DatasetReader r(path);
  EXPECT_EQ(r.size(), 37u);
  EXPECT_EQ(r.height(), 10);
  EXPECT_EQ(r.width(), 12);
  EXPECT_EQ(r.image_dtype(), DType::Int64);
  for (size_t i = 0; i < 37; ++i) EXPECT_EQ(r.labels()[i], static_cast<double>(i) * 0.01);
  ASSERT_EQ(r.param_names(), (std::vector<std::string>{"b", "a"}));  // the order given
  std::vector<double> a = r.param("a"), b = r.param("b");
  for (size_t i = 0; i < 37; ++i) {
    EXPECT_EQ(a[i], static_cast<double>(i));
    EXPECT_EQ(b[i], -static_cast<double>(i));
  }
  // Exact counts back, and arbitrary index lists (any order, repeats) as float.
  for (size_t i : {0u, 5u, 36u}) EXPECT_EQ(r.read_image_int64(i), counts(120, i));
  const std::vector<size_t> idx = {36, 0, 17, 17, 3};
  std::vector<float> out(idx.size() * 120);
  r.read_images(idx, out.data());
  for (size_t k = 0; k < idx.size(); ++k) {
    std::vector<int64_t> want = counts(120, idx[k]);
    for (size_t p = 0; p < 120; ++p) ASSERT_EQ(out[k * 120 + p], static_cast<float>(want[p]));
  }
  const nlohmann::json& at = r.attributes();
  EXPECT_EQ(at["preset"], "model1");
  EXPECT_EQ(at["count"], 37);
  EXPECT_EQ(at["pixel_scale"], 0.05);
  EXPECT_EQ(at["poisson"], 1);
  EXPECT_EQ(at["mass_range"], nlohmann::json({1e6, 1e10}));
  EXPECT_EQ(at["nested"], "{\"a\":1}");
  EXPECT_EQ(at["format"], "halo-lens-dataset");
  EXPECT_EQ(at["settings"]["nested"]["a"], 1);
  expect_error([&] { r.param("c"); }, {path, "params/c"});
  expect_error([&] { r.read_image_int64(37); }, {path, "out of range"});
  // No temporary file is left beside it.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Hdf5Dataset, Float32StorageChunkedAndCompressed) {
  TempDir dir;
  Hdf5WriteOptions opt;
  opt.image_dtype = DType::Float32;
  opt.chunk_images = 4;
  opt.gzip_level = 4;
  const std::string path = dir / "f.h5";
  {
    Hdf5DatasetWriter wr(path, 5, 5, {}, nlohmann::json::object(), opt);
    for (int i = 0; i < 9; ++i) {
      std::vector<float> img(25);
      for (int p = 0; p < 25; ++p) img[static_cast<size_t>(p)] = 0.5f * static_cast<float>(p + i);
      wr.append(img.data(), 1.0 + i);
    }
    wr.finish();
  }
  Hdf5DatasetReader r(path);
  EXPECT_EQ(r.image_dtype(), DType::Float32);
  EXPECT_EQ(r.size(), 9u);
  EXPECT_TRUE(r.param_names().empty());
  std::vector<float> out(25);
  const size_t one[1] = {7};
  r.read_images(one, out.data());
  for (int p = 0; p < 25; ++p)
    EXPECT_EQ(out[static_cast<size_t>(p)], 0.5f * static_cast<float>(p + 7));
}

TEST(Hdf5Dataset, EmptyDatasetAndUnfinishedWriter) {
  TempDir dir;
  {
    Hdf5DatasetWriter wr(dir / "empty.h5", 4, 4, {"x"}, nlohmann::json::object());
    wr.finish();
  }
  Hdf5DatasetReader r(dir / "empty.h5");
  EXPECT_EQ(r.size(), 0u);
  EXPECT_TRUE(r.param("x").empty());
  {
    // Dropped without finish(): nothing appears, no temporary is left.
    Hdf5DatasetWriter wr(dir / "never.h5", 4, 4, {}, nlohmann::json::object());
    std::vector<int64_t> img(16, 1);
    wr.append(img.data(), 0.5);
  }
  EXPECT_FALSE(fs::exists(dir / "never.h5"));
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Hdf5Dataset, WriterRejectsBadInput) {
  TempDir dir;
  EXPECT_THROW(Hdf5DatasetWriter(dir / "a.h5", 0, 4, {}, {}), std::invalid_argument);
  EXPECT_THROW(Hdf5DatasetWriter(dir / "a.h5", 4, 4, {"x", "x"}, {}), std::invalid_argument);
  EXPECT_THROW(Hdf5DatasetWriter(dir / "a.h5", 4, 4, {"a/b"}, {}), std::invalid_argument);
  EXPECT_THROW(Hdf5DatasetWriter(dir / "a.h5", 4, 4, {}, nlohmann::json::array()),
               std::invalid_argument);
  Hdf5WriteOptions o;
  o.image_dtype = DType::UInt16;
  EXPECT_THROW(Hdf5DatasetWriter(dir / "a.h5", 4, 4, {}, {}, o), std::invalid_argument);
  expect_error([&] { Hdf5DatasetWriter(dir / "no/such/folder/a.h5", 4, 4, {}, {}); },
               {"a.h5", "cannot create"});
  Hdf5DatasetWriter wr(dir / "b.h5", 2, 2, {"p"}, {});
  std::vector<float> frac = {0.5f, 1, 2, 3};
  const double p[1] = {1};
  EXPECT_THROW(wr.append(frac.data(), 0.1, p), std::invalid_argument);  // not an integer count
  std::vector<int64_t> img(4, 1);
  EXPECT_THROW(wr.append(img.data(), 0.1), std::invalid_argument);  // parameter missing
  EXPECT_EQ(wr.count(), 0u);
  EXPECT_FALSE(fs::exists(dir / "a.h5"));
}

// ---- malformed files ----

namespace {

// A file with whatever datasets `make` creates (HDF5 C API).
template <class F>
std::string make_file(const TempDir& dir, const std::string& name, F make) {
  const std::string path = dir / name;
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  make(f);
  H5Fclose(f);
  return path;
}

void dataset(hid_t where, const char* name, hid_t type, std::vector<hsize_t> dims) {
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t ds = H5Dcreate2(where, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(ds);
  H5Sclose(space);
}

}  // namespace

TEST(Hdf5Dataset, MalformedFilesNameTheFileAndField) {
  TempDir dir;
  expect_error([&] { Hdf5DatasetReader r(dir / "missing.h5"); }, {"missing.h5", "not found"});
  { std::ofstream(dir / "text.h5") << "not hdf5 at all"; }
  expect_error([&] { Hdf5DatasetReader r(dir / "text.h5"); }, {"text.h5", "not an HDF5 file"});

  auto p1 =
      make_file(dir, "noimages.h5", [](hid_t f) { dataset(f, "labels", H5T_IEEE_F64LE, {3}); });
  expect_error([&] { Hdf5DatasetReader r(p1); }, {p1, "no dataset 'images'"});

  auto p2 = make_file(dir, "rank3.h5", [](hid_t f) {
    dataset(f, "images", H5T_STD_I64LE, {3, 4, 4});
    dataset(f, "labels", H5T_IEEE_F64LE, {3});
  });
  expect_error([&] { Hdf5DatasetReader r(p2); }, {p2, "'images'", "[3, 4, 4]", "[N, 1, H, W]"});

  auto p3 = make_file(dir, "twochan.h5", [](hid_t f) {
    dataset(f, "images", H5T_STD_I64LE, {3, 2, 4, 4});
    dataset(f, "labels", H5T_IEEE_F64LE, {3});
  });
  expect_error([&] { Hdf5DatasetReader r(p3); }, {p3, "'images'", "[3, 2, 4, 4]"});

  auto p4 = make_file(dir, "strimages.h5", [](hid_t f) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 8);
    dataset(f, "images", t, {3, 1, 4, 4});
    H5Tclose(t);
    dataset(f, "labels", H5T_IEEE_F64LE, {3});
  });
  expect_error([&] { Hdf5DatasetReader r(p4); }, {p4, "'images'", "type string"});

  auto p5 = make_file(dir, "nolabels.h5", [](hid_t f) {
    dataset(f, "images", H5T_STD_I64LE, {3, 1, 4, 4});
  });
  expect_error([&] { Hdf5DatasetReader r(p5); }, {p5, "no dataset 'labels'"});

  auto p6 = make_file(dir, "shortlabels.h5", [](hid_t f) {
    dataset(f, "images", H5T_STD_I64LE, {3, 1, 4, 4});
    dataset(f, "labels", H5T_IEEE_F64LE, {2});
  });
  expect_error([&] { Hdf5DatasetReader r(p6); }, {p6, "'labels'", "[2]", "expected [3]"});

  auto p7 = make_file(dir, "badparam.h5", [](hid_t f) {
    dataset(f, "images", H5T_STD_I64LE, {3, 1, 4, 4});
    dataset(f, "labels", H5T_IEEE_F64LE, {3});
    hid_t g = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    dataset(g, "theta_e", H5T_IEEE_F64LE, {4});
    H5Gclose(g);
  });
  Hdf5DatasetReader r7(p7);  // the table is read on demand
  expect_error([&] { r7.param("theta_e"); }, {p7, "params/theta_e", "[4]", "expected [3]"});

  // A truncated file.
  write_small(dir / "good.h5", 5, 8, 8);
  {
    std::vector<char> bytes(fs::file_size(dir / "good.h5"));
    std::ifstream(dir / "good.h5", std::ios::binary)
        .read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::ofstream(dir / "cut.h5", std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  try {
    Hdf5DatasetReader r(dir / "cut.h5");
    std::vector<float> out(5 * 64);
    const std::vector<size_t> all = {0, 1, 2, 3, 4};
    r.read_images(all, out.data());
    r.param("a");
    ADD_FAILURE() << "a truncated file read without error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.h5"), std::string::npos) << e.what();
  }
}

TEST(Hdf5Dataset, PythonH5pyReadsIt) {
  // Debian's /usr/bin/python3 has h5py; skip where no Python with h5py is at hand.
  std::string py;
  for (const char* cand : {"/usr/bin/python3", "python3"})
    if (std::system((std::string(cand) + " -c 'import numpy, h5py' >/dev/null 2>&1").c_str()) ==
        0) {
      py = cand;
      break;
    }
  if (py.empty())
    GTEST_SKIP() << "no python3 with numpy and h5py (neither /usr/bin/python3 nor python3 on PATH "
                    "imports both): skipping the h5py check; scripts/install_deps.sh installs "
                    "Debian's python3-numpy and python3-h5py";
  TempDir dir;
  const std::string path = dir / "py.h5";
  write_small(path, 6, 9, 7);
  nlohmann::json spec = {{"count", 6}, {"height", 9}, {"width", 7}, {"dtype", "int64"}};
  spec["images"] = nlohmann::json::array();
  for (int i = 0; i < 6; ++i) {
    std::vector<int64_t> img = counts(63, static_cast<uint64_t>(i));
    double s = 0, ws = 0;
    for (size_t p = 0; p < img.size(); ++p) {
      s += static_cast<double>(img[p]);
      ws += static_cast<double>(img[p]) * static_cast<double>(p % 1000 + 1);
    }
    spec["images"].push_back({{"sum", s}, {"weighted_sum", ws}, {"label", i * 0.01}});
  }
  spec["params"] = {{"a", {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}}};
  spec["attributes"] = {
      {"preset", "model1"}, {"count", 6}, {"pixel_scale", 0.05}, {"mass_range", {1e6, 1e10}}};
  std::ofstream(dir / "spec.json") << spec.dump();
  const std::string cmd = py + " " + HALO_SOURCE_DIR + "/tools/check_npy_roundtrip.py h5 " + path +
                          " " + (dir / "spec.json");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}
