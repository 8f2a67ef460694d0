// Faults a new user met, each with the behaviour that replaces it: simulate_lenses creates the
// missing parent folders of --out; a state dict whose BatchNorm counters (num_batches_tracked) are
// stored as float or as another integer type, as files from PyTorch tools sometimes are, is read
// when the values are whole numbers and refused naming the key otherwise; eval_halo takes such
// weights with --model and the label scaling given by hand. (train_halo --quiet and the simulation
// progress: TrainHaloCli.SimulatedDataIsCachedOnceAndReused.)
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "apps/support/simulated_data.h"
#include "data/loader.h"
#include "engine/serialize.h"
#include "models/registry.h"
#include "models/tiny_cnn.h"
#include "tests/apps/cli_util.h"
#include "tests/common/temp_dir.h"

using namespace halo;
using namespace halo::test;
namespace fs = std::filesystem;

namespace {

bool is_counter(const std::string& key) {
  const std::string tail = "num_batches_tracked";
  return key.size() >= tail.size() && key.compare(key.size() - tail.size(), tail.size(), tail) == 0;
}

// Replaces every num_batches_tracked dataset of `path` by a scalar of HDF5 type `file_type`
// holding `*value` (of memory type `mem_type`; HDF5 converts).
void rewrite_counters(const std::string& path, hid_t file_type, hid_t mem_type, const void* value) {
  const std::vector<std::string> keys = load_state_dict_file(path).keys();
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << path;
  int n = 0;
  for (const std::string& k : keys) {
    if (!is_counter(k)) continue;
    ++n;
    ASSERT_GE(H5Ldelete(f, k.c_str(), H5P_DEFAULT), 0) << k;
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t ds =
        H5Dcreate2(f, k.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(ds, 0) << k;
    EXPECT_GE(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, value), 0) << k;
    H5Dclose(ds);
    H5Sclose(space);
  }
  H5Fclose(f);
  ASSERT_GT(n, 0) << path << " has no num_batches_tracked";
}

// IEEE half precision, as h5py defines it (HDF5 has no predefined 16-bit float before 1.14).
hid_t float16_type() {
  const hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

std::string tiny_cnn_file(const TempDir& dir, const std::string& name) {
  nn::manual_seed(1);
  models::TinyCnn m(4);
  const std::string path = dir / name;
  save_state_dict(m.state_dict(), path);
  return path;
}

}  // namespace

TEST(SmallFaults, SimulateLensesCreatesMissingParentFolders) {
  HALO_REQUIRE_APP("simulate_lenses");
  TempDir dir("halo_sim_parents");
  const std::string sim = app("simulate_lenses") + " --quiet --count 2 --size 16 --seed 1";
  CmdResult r = run_cmd(sim + " --format npy --out " + (dir / "new/deeper/lens_data"));
  ASSERT_EQ(r.code, 0) << r.output;
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir / "new/deeper/lens_data"))
    files += e.path().extension() == ".npy";
  EXPECT_EQ(files, 2);
  EXPECT_TRUE(fs::exists(dir / "new/deeper/lens_data.params.csv"));
  r = run_cmd(sim + " --format hdf5 --out " + (dir / "other/sim.h5"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(data::open_dataset(dir / "other/sim.h5")->size(), 2u);
  // A parent that is a file cannot be made a folder: a clear error naming it.
  std::ofstream(dir / "a_file") << "x";
  r = run_cmd(sim + " --format hdf5 --out " + (dir / "a_file/sim.h5"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, dir / "a_file")) << r.output;
  EXPECT_TRUE(contains(r.output, "cannot create the folder")) << r.output;
  EXPECT_EQ(slurp(dir / "a_file"), "x");
}

TEST(SmallFaults, NumBatchesTrackedOfAnyNumericTypeIsReadWhenWhole) {
  TempDir dir("halo_nbt");
  const hid_t f16 = float16_type();
  const struct {
    const char* name;
    hid_t type;
  } types[] = {{"float16", f16},
               {"float32", H5T_IEEE_F32LE},
               {"float64", H5T_IEEE_F64LE},
               {"float64 big-endian", H5T_IEEE_F64BE},
               {"int8", H5T_STD_I8LE},
               {"uint8", H5T_STD_U8LE},
               {"int16", H5T_STD_I16LE},
               {"uint16", H5T_STD_U16LE},
               {"int32", H5T_STD_I32LE},
               {"int32 big-endian", H5T_STD_I32BE},
               {"uint32", H5T_STD_U32LE},
               {"int64", H5T_STD_I64LE},
               {"uint64", H5T_STD_U64LE}};
  for (const auto& t : types) {
    SCOPED_TRACE(t.name);
    const std::string path = tiny_cnn_file(dir, std::string("w_") + t.name + ".h5");
    const double three = 3.0;
    rewrite_counters(path, t.type, H5T_NATIVE_DOUBLE, &three);
    models::TinyCnn m(4);
    ASSERT_NO_THROW(load_module(m, path));
    const StateDict sd = m.state_dict();
    EXPECT_EQ(sd.at("bn1.num_batches_tracked").dtype(), DType::i64);
    EXPECT_EQ(sd.at("bn1.num_batches_tracked").data_i64()[0], 3);
    EXPECT_EQ(sd.at("bn2.num_batches_tracked").data_i64()[0], 3);
  }
  H5Tclose(f16);
}

TEST(SmallFaults, NumBatchesTrackedThatIsNotAWholeNumberIsRefusedNamingTheKey) {
  TempDir dir("halo_nbt_bad");
  for (double v : {2.5, double(NAN), double(INFINITY), -0.25, 1e30}) {
    SCOPED_TRACE(v);
    const std::string path = tiny_cnn_file(dir, "bad.h5");
    rewrite_counters(path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
    models::TinyCnn m(4);
    expect_error([&] { load_module(m, path); },
                 {path, "num_batches_tracked", "expected a whole number"});
  }
  // Beyond int64 in an unsigned file.
  const std::string path = tiny_cnn_file(dir, "huge.h5");
  const unsigned long long huge = 1ull << 63;
  rewrite_counters(path, H5T_STD_U64LE, H5T_NATIVE_ULLONG, &huge);
  models::TinyCnn m(4);
  expect_error([&] { load_module(m, path); }, {"num_batches_tracked", "9223372036854775808"});
  // Other keys keep their strict rule: float32 only.
  {
    const std::string p2 = tiny_cnn_file(dir, "f64weight.h5");
    const hid_t f = H5Fopen(p2.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "fc.bias", H5P_DEFAULT);
    const hsize_t one = 1;
    const double b = 0.5;
    const hid_t space = H5Screate_simple(1, &one, nullptr);
    const hid_t ds =
        H5Dcreate2(f, "fc.bias", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &b);
    H5Dclose(ds);
    H5Sclose(space);
    H5Fclose(f);
    expect_error([&] { load_module(m, p2); }, {"fc.bias", "expected float32"});
  }
}

// Weights as PyTorch exports them (no Halo attributes, counters as float64): eval_halo needs the
// model and the label scaling given, says which is missing, and then evaluates them.
TEST(SmallFaults, EvalHaloTakesPyTorchWeightsWithModelAndScalingGiven) {
  TempDir dir("halo_pt_weights");
  const std::string data = dir / "data.h5";
  apps::write_simulated_hdf5(data, "model1", 4, 32, 3, 1, /*progress=*/false);
  nn::manual_seed(2);
  auto model = models::make_model("resnet18");
  const std::string w = dir / "from_pytorch.h5";
  save_state_dict(model->state_dict(), w);
  const double zero = 0.0;
  rewrite_counters(w, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &zero);
  const std::string eval = app("eval_halo") + " --device cpu --weights " + w + " --data " + data;
  CmdResult r = run_cmd(eval);
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "give --model")) << r.output;
  r = run_cmd(eval + " --model resnet18");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "give --label-mean and --label-std")) << r.output;
  r = run_cmd(eval + " --model resnet18 --label-mean 0.04 --label-std 0.02");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "resnet18 on 4 images")) << r.output;
}
