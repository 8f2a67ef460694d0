// Tensor: a handle to shared storage with a shape (contiguous, row-major NCHW), a device tag and
// the autograd fields (requires_grad, grad, grad_fn). Copying a Tensor copies the handle, not the
// data, as in PyTorch; reshape() returns a view on the same storage.
#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace halo {

enum class Device { cpu, cuda };
enum class DType { f32, i64 };  // i64 exists only for BatchNorm's num_batches_tracked counter

using Shape = std::vector<int64_t>;
std::string to_string(const Shape& shape);  // "[2, 3, 4]"
std::string to_string(Device d);            // "cpu" / "cuda"
std::string to_string(DType t);             // "float32" / "int64"
int64_t numel_of(const Shape& shape);
std::size_t dtype_size(DType t);

// A block of memory on one device, returned to its allocator when the last owner lets go.
class Storage {
 public:
  Storage(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_;
};

struct Node;  // autograd graph node (autograd.h)
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves only)
  std::shared_ptr<Node> grad_fn;     // the node that made this tensor (non-leaves only)
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (no storage); defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories ---------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, Device device = Device::cpu, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, Device device = Device::cpu);
  static Tensor ones(const Shape& shape, Device device = Device::cpu);
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor scalar_i64(int64_t value);
  // Normal(mean, std) and Uniform[lo, hi) draws from a caller-owned generator (reproducible).
  static Tensor randn(const Shape& shape, std::mt19937_64& rng, float mean = 0.f, float std = 1.f);
  static Tensor uniform(const Shape& shape, std::mt19937_64& rng, float lo, float hi);

  // ---- inspection --------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int dim() const { return static_cast<int>(shape().size()); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return numel_of(shape()); }
  Device device() const;
  DType dtype() const;
  std::size_t nbytes() const { return numel() * dtype_size(dtype()); }
  std::string str() const;  // "Tensor[2, 3] float32 cpu"

  // Raw element pointers (contiguous). data() requires float32; data_i64() requires int64.
  float* data() const;
  int64_t* data_i64() const;
  float item() const;                    // the single value of a 1-element tensor (copied to host)
  std::vector<float> to_vector() const;  // all values, copied to host
  void copy_from(const Tensor& src);     // same shape and dtype, any devices; no autograd
  void fill_(float value);

  // ---- views and copies ----------------------------------------------------------------------
  // Same storage, new shape (one entry may be -1). Differentiable.
  Tensor reshape(const Shape& shape) const;
  // Collapses dims [start_dim, end] into one: [N, C, H, W].flatten(1) is [N, C*H*W].
  Tensor flatten(int start_dim = 1) const;
  Tensor clone() const;   // a new storage with the same values; not part of the graph
  Tensor detach() const;  // same storage, no grad_fn, requires_grad false
  Tensor to(Device device) const;  // copy to a device (this tensor if already there)

  // ---- autograd ------------------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);
  bool is_leaf() const;
  Tensor grad() const;  // undefined until a backward() reached this leaf
  void set_grad(const Tensor& g);
  void zero_grad();     // drops the gradient (PyTorch's set_to_none)
  const std::shared_ptr<Node>& grad_fn() const;
  // Reverse-mode differentiation from this scalar: fills grad() of every leaf that requires it.
  void backward() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same_storage(const Tensor& other) const;

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

// Throws std::invalid_argument("<what>: expected shape [..], got [..]") on mismatch.
void check_shape(const Tensor& t, const Shape& expected, const std::string& what);

}  // namespace halo
