// nn modules: PyTorch key names, train/eval, state dicts in HDF5 (round trip and every error the
// issue lists: missing or extra key, shape mismatch, wrong dtype or shape in the file).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "engine/ops.h"
#include "engine/serialize.h"
#include "models/tiny_cnn.h"

using namespace halo;
namespace fs = std::filesystem;

namespace {
// A two-level module shaped like a ResNet stage, to check dotted names.
struct Block : nn::Module {
  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  Block() {
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(2, 2, 3, 1, 1, 1, false));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(2));
  }
  Tensor forward(const Tensor& x) override { return (*bn1)((*conv1)(x)); }
  std::string type_name() const override { return "Block"; }
};
struct Net : nn::Module {
  std::shared_ptr<nn::Sequential> layer1;
  std::shared_ptr<nn::Linear> fc;
  Net() {
    layer1 = register_module("layer1", std::make_shared<nn::Sequential>());
    layer1->push_back(std::make_shared<Block>());
    layer1->push_back(std::make_shared<Block>());
    fc = register_module("fc", std::make_shared<nn::Linear>(2, 1));
  }
  Tensor forward(const Tensor& x) override { return (*fc)(global_avg_pool2d((*layer1)(x)).flatten(1)); }
  std::string type_name() const override { return "Net"; }
};

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("halo_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

// Writes a one-dataset HDF5 file with a float64 or int32 dataset, to test dtype errors.
void write_raw(const std::string& path, const std::string& key, hid_t type, const std::vector<hsize_t>& dims) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t d = H5Dcreate2(f, key.c_str(), type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<double> zeros(1024, 0.0);
  H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
  H5Dclose(d);
  H5Sclose(s);
  H5Fclose(f);
}
}  // namespace

TEST(NN, PyTorchKeyNamesAndOrder) {
  Net net;
  const std::vector<std::string> expected = {
      "layer1.0.conv1.weight",       "layer1.0.bn1.weight",      "layer1.0.bn1.bias",
      "layer1.0.bn1.running_mean",   "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked",
      "layer1.1.conv1.weight",       "layer1.1.bn1.weight",      "layer1.1.bn1.bias",
      "layer1.1.bn1.running_mean",   "layer1.1.bn1.running_var", "layer1.1.bn1.num_batches_tracked",
      "fc.weight",                   "fc.bias"};
  EXPECT_EQ(net.state_dict().keys(), expected);
  EXPECT_EQ(net.named_parameters().size(), 8u);
  EXPECT_EQ(net.num_parameters(), 2 * (2 * 2 * 9 + 4) + 3);
  EXPECT_EQ(net.state_dict().at("layer1.0.bn1.num_batches_tracked").dtype(), DType::i64);
}

TEST(NN, TrainEvalIsRecursiveAndBatchNormCountsBatches) {
  Net net;
  Tensor x = Tensor::ones({2, 2, 3, 3});
  std::mt19937_64 rng(1);
  x = Tensor::randn({2, 2, 3, 3}, rng);
  net(x);
  net(x);
  EXPECT_EQ(net.state_dict().at("layer1.1.bn1.num_batches_tracked").data_i64()[0], 2);
  net.eval();
  EXPECT_FALSE(net.layer1->is_training());
  const std::vector<float> rm = net.state_dict().at("layer1.0.bn1.running_mean").to_vector();
  net(x);
  EXPECT_EQ(net.state_dict().at("layer1.0.bn1.running_mean").to_vector(), rm);
  EXPECT_EQ(net.state_dict().at("layer1.1.bn1.num_batches_tracked").data_i64()[0], 2);
}

TEST(StateDictH5, RoundTripRestoresEveryValue) {
  nn::manual_seed(1);
  Net a;
  std::mt19937_64 rng(2);
  a(Tensor::randn({2, 2, 4, 4}, rng));  // move running stats and the counter away from defaults
  const std::string path = temp_path("roundtrip.h5");
  save_state_dict(a.state_dict(), path);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  nn::manual_seed(99);
  Net b;
  load_module(b, path);
  // Both dicts held in locals: iterating a temporary's items() (or keeping a reference from a
  // temporary's at()) reads freed memory, which AddressSanitizer caught here.
  const StateDict sa = a.state_dict(), sb = b.state_dict();
  for (const auto& [k, t] : sa.items()) {
    const Tensor& u = sb.at(k);
    ASSERT_EQ(u.dtype(), t.dtype()) << k;
    if (t.dtype() == DType::i64)
      EXPECT_EQ(u.data_i64()[0], t.data_i64()[0]) << k;
    else
      EXPECT_EQ(u.to_vector(), t.to_vector()) << k;
  }
  // The same outputs in eval mode.
  a.eval();
  b.eval();
  Tensor x = Tensor::randn({1, 2, 4, 4}, rng);
  EXPECT_EQ(a(x).to_vector(), b(x).to_vector());
  fs::remove(path);
}

TEST(StateDictH5, MissingKeyIsNamed) {
  Net a;
  StateDict sd = a.state_dict();
  StateDict partial;
  for (const auto& [k, t] : sd.items())
    if (k != "layer1.1.bn1.running_var") partial.set(k, t);
  try {
    a.load_state_dict(partial);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("missing key 'layer1.1.bn1.running_var'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2]"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(a.load_state_dict(partial, /*strict=*/false));
}

TEST(StateDictH5, ExtraKeyIsNamed) {
  Net a;
  StateDict sd = a.state_dict();
  sd.set("head.fc.weight", Tensor::zeros({1, 2}));
  try {
    a.load_state_dict(sd);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected key 'head.fc.weight'"), std::string::npos) << e.what();
  }
}

TEST(StateDictH5, ShapeMismatchIsNamedAndChangesNothing) {
  Net a;
  const std::vector<float> before = a.fc->weight.to_vector();
  StateDict sd;
  for (const auto& [k, t] : a.state_dict().items()) sd.set(k, t.clone());
  sd.set("fc.weight", Tensor::ones({1, 2}));          // valid, would be copied...
  sd.set("layer1.1.conv1.weight", Tensor::zeros({2, 2, 5, 5}));  // ...but this one is wrong
  try {
    a.load_state_dict(sd);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'layer1.1.conv1.weight'"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 2, 5, 5]"), std::string::npos) << m;
    EXPECT_NE(m.find("expected [2, 2, 3, 3]"), std::string::npos) << m;
  }
  EXPECT_EQ(a.fc->weight.to_vector(), before);
}

TEST(StateDictH5, WrongDtypeInFileIsNamed) {
  const std::string path = temp_path("f64.h5");
  write_raw(path, "fc.weight", H5T_IEEE_F64LE, {1, 2});
  try {
    load_state_dict_file(path);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("'fc.weight'"), std::string::npos) << m;
    EXPECT_NE(m.find("expected float32"), std::string::npos) << m;
  }
  fs::remove(path);
}

TEST(StateDictH5, WrongShapeInFileIsNamedWithTheFile) {
  Net a;
  StateDict sd = a.state_dict();
  sd.set("fc.bias", Tensor::zeros({3}));
  const std::string path = temp_path("badshape.h5");
  save_state_dict(sd, path);
  try {
    load_module(a, path);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("'fc.bias' has shape [3], expected [1]"), std::string::npos) << m;
  }
  fs::remove(path);
}

TEST(StateDictH5, MissingOrCorruptFile) {
  EXPECT_THROW(load_state_dict_file("/nonexistent/dir/x.h5"), std::runtime_error);
  const std::string path = temp_path("garbage.h5");
  std::ofstream(path) << "this is not hdf5";
  try {
    load_state_dict_file(path);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not an HDF5 file"), std::string::npos) << e.what();
  }
  fs::remove(path);
  Net a;
  EXPECT_THROW(save_state_dict(a.state_dict(), "/nonexistent/dir/x.h5"), std::runtime_error);
}

TEST(StateDictH5, FailedWriteKeepsTheOldFile) {
  Net a;
  const std::string path = temp_path("keep.h5");
  save_state_dict(a.state_dict(), path);
  const auto size = fs::file_size(path);
  StateDict bad = a.state_dict();
  bad.set("a/b", Tensor::zeros({1}));
  bad.set("a/b/c", Tensor::zeros({1}));  // "a/b" is a dataset, so this cannot be created
  EXPECT_THROW(save_state_dict(bad, path), std::runtime_error);
  EXPECT_EQ(fs::file_size(path), size);
  Net b;
  EXPECT_NO_THROW(load_module(b, path));
  fs::remove(path);
  fs::remove(path + ".tmp");
}
