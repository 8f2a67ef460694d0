// Tensor, Storage and the shape helpers. Autograd lives in autograd.cpp; ops in ops/.
#include "engine/tensor.h"

#include <cstring>
#include <sstream>
#include <stdexcept>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/cuda_memory.h"
#include "kernels/elementwise.h"

namespace halo {

std::string to_string(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}
std::string to_string(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }
std::string to_string(DType t) { return t == DType::f32 ? "float32" : "int64"; }
int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}
std::size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }

// ---- Storage ------------------------------------------------------------------------------------
Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = device == Device::cpu ? CpuAllocator::instance().allocate(bytes)
                                : cuda::device_allocate(bytes);
}
Storage::~Storage() {
  if (device_ == Device::cpu)
    CpuAllocator::instance().deallocate(data_, bytes_);
  else
    cuda::device_free(data_, bytes_);
}

// ---- factories ----------------------------------------------------------------------------------
Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  for (int64_t s : shape)
    if (s < 0) throw std::invalid_argument("Tensor::empty: negative size in shape " + to_string(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(numel_of(shape) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}
Tensor Tensor::zeros(const Shape& shape, Device device) { return full(shape, 0.f, device); }
Tensor Tensor::ones(const Shape& shape, Device device) { return full(shape, 1.f, device); }
Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  if (static_cast<int64_t>(values.size()) != numel_of(shape))
    throw std::invalid_argument("Tensor::from_vector: " + std::to_string(values.size()) +
                                " values do not fill shape " + to_string(shape));
  Tensor t = empty(shape);
  std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}
Tensor Tensor::scalar_i64(int64_t value) {
  Tensor t = empty({}, Device::cpu, DType::i64);
  *t.data_i64() = value;
  return t;
}
Tensor Tensor::randn(const Shape& shape, std::mt19937_64& rng, float mean, float std) {
  Tensor t = empty(shape);
  std::normal_distribution<float> dist(mean, std);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}
Tensor Tensor::uniform(const Shape& shape, std::mt19937_64& rng, float lo, float hi) {
  Tensor t = empty(shape);
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

// ---- inspection ---------------------------------------------------------------------------------
const TensorImpl& Tensor::checked() const {
  if (!impl_) throw std::logic_error("use of an undefined Tensor");
  return *impl_;
}
const Shape& Tensor::shape() const { return checked().shape; }
int64_t Tensor::size(int d) const {
  const int n = dim();
  if (d < 0) d += n;
  if (d < 0 || d >= n)
    throw std::out_of_range("Tensor::size: dim " + std::to_string(d) + " of a " +
                            std::to_string(n) + "-d tensor");
  return shape()[d];
}
Device Tensor::device() const { return checked().storage->device(); }
DType Tensor::dtype() const { return checked().dtype; }
std::string Tensor::str() const {
  if (!impl_) return "Tensor(undefined)";
  return "Tensor" + to_string(shape()) + " " + to_string(dtype()) + " " + to_string(device());
}

float* Tensor::data() const {
  const TensorImpl& t = checked();
  if (t.dtype != DType::f32) throw std::logic_error("Tensor::data(): tensor is " + to_string(t.dtype));
  return static_cast<float*>(t.storage->data()) + t.offset;
}
int64_t* Tensor::data_i64() const {
  const TensorImpl& t = checked();
  if (t.dtype != DType::i64) throw std::logic_error("Tensor::data_i64(): tensor is " + to_string(t.dtype));
  return static_cast<int64_t*>(t.storage->data()) + t.offset;
}
float Tensor::item() const {
  if (numel() != 1) throw std::logic_error("Tensor::item(): tensor has " + std::to_string(numel()) + " elements");
  if (dtype() == DType::i64) return static_cast<float>(to(Device::cpu).data_i64()[0]);
  return to(Device::cpu).data()[0];
}
std::vector<float> Tensor::to_vector() const {
  Tensor h = to(Device::cpu);
  return std::vector<float>(h.data(), h.data() + h.numel());
}

void Tensor::copy_from(const Tensor& src) {
  if (src.shape() != shape() || src.dtype() != dtype())
    throw std::invalid_argument("Tensor::copy_from: " + src.str() + " into " + str());
  void* dst_p = static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(dtype());
  const void* src_p =
      static_cast<char*>(src.impl_->storage->data()) + src.impl_->offset * dtype_size(dtype());
  if (device() == Device::cpu && src.device() == Device::cpu)
    std::memcpy(dst_p, src_p, nbytes());
  else
    cuda::copy(dst_p, device() == Device::cuda, src_p, src.device() == Device::cuda, nbytes());
}

void Tensor::fill_(float value) {
  if (device() == Device::cpu) {
    kernels::cpu::fill<float>(numel(), value, data());
  } else {
    cuda::fill(data(), numel(), value);
  }
}

// ---- views and copies ---------------------------------------------------------------------------
Tensor Tensor::reshape(const Shape& new_shape) const { return ops_reshape(*this, new_shape); }

Tensor Tensor::flatten(int start_dim) const {
  if (start_dim < 0) start_dim += dim();
  if (start_dim < 0 || start_dim >= std::max(dim(), 1))
    throw std::out_of_range("Tensor::flatten: start_dim out of range for " + str());
  Shape s(shape().begin(), shape().begin() + start_dim);
  int64_t rest = 1;
  for (int d = start_dim; d < dim(); ++d) rest *= shape()[d];
  s.push_back(rest);
  return reshape(s);
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), device(), dtype());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked().storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::to(Device d) const {
  if (device() == d) return *this;
  Tensor t = empty(shape(), d, dtype());
  t.copy_from(*this);
  return t;
}

bool Tensor::same_storage(const Tensor& other) const {
  return impl_ && other.impl_ && impl_->storage == other.impl_->storage;
}

// ---- autograd fields ----------------------------------------------------------------------------
bool Tensor::requires_grad() const { return checked().requires_grad; }
Tensor& Tensor::set_requires_grad(bool on) {
  if (on && dtype() != DType::f32) throw std::logic_error("only float32 tensors can require grad");
  if (impl_->grad_fn) throw std::logic_error("set_requires_grad on a non-leaf tensor");
  impl_->requires_grad = on;
  return *this;
}
bool Tensor::is_leaf() const { return checked().grad_fn == nullptr; }
Tensor Tensor::grad() const { return Tensor(checked().grad); }
void Tensor::set_grad(const Tensor& g) {
  if (g.defined() && g.shape() != shape())
    throw std::invalid_argument("set_grad: gradient " + g.str() + " for " + str());
  impl_->grad = g.impl_ptr();
}
void Tensor::zero_grad() { checked(); impl_->grad.reset(); }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked().grad_fn; }
void Tensor::backward() const { run_backward(*this); }

void check_shape(const Tensor& t, const Shape& expected, const std::string& what) {
  if (!t.defined()) throw std::invalid_argument(what + ": tensor is undefined, expected shape " + to_string(expected));
  if (t.shape() != expected)
    throw std::invalid_argument(what + ": expected shape " + to_string(expected) + ", got " +
                                to_string(t.shape()));
}

}  // namespace halo
