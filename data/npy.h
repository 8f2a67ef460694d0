// numpy's .npy format: read versions 1.0, 2.0 and 3.0 (plain numeric arrays, and object arrays
// through the safe pickle reader of data/pickle.h), and write plain arrays byte-for-byte as numpy
// 1.24's np.save does. Every malformed input throws std::runtime_error naming the file and the
// fault.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace halo::data {

// Element types we read and write. Byte order is always converted to the host's on reading.
enum class DType : uint8_t {
  Bool,
  Int8,
  Int16,
  Int32,
  Int64,
  UInt8,
  UInt16,
  UInt32,
  UInt64,
  Float32,
  Float64
};

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "int64", "float32", ...
std::string dtype_descr(DType t);      // numpy's little-endian descr: "<i8", "|u1", "<f4", ...
bool dtype_is_integer(DType t);

// A dense row-major array with its raw bytes in host byte order.
struct NpyArray {
  DType dtype = DType::Float64;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  size_t ndim() const { return shape.size(); }
  size_t size() const;  // number of elements (product of shape; 1 for a 0-d array)

  // Typed view of the raw values; throws if T does not match dtype.
  template <class T>
  const T* data() const;
  template <class T>
  T* data();

  // Element i (row-major) converted to double / all elements converted to float.
  double value(size_t i) const;
  void to_float(float* out) const;  // out holds size() floats
  std::vector<float> to_float() const;
  std::vector<double> to_double() const;

  // An array of the given dtype and shape copied from `values` (size() elements of that type).
  static NpyArray from_raw(DType t, std::vector<int64_t> shape, const void* values);
};

// The DType of a C++ element type (compile error for others).
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, bool>)
    return DType::Bool;
  else if constexpr (std::is_same_v<T, int8_t>)
    return DType::Int8;
  else if constexpr (std::is_same_v<T, int16_t>)
    return DType::Int16;
  else if constexpr (std::is_same_v<T, int32_t>)
    return DType::Int32;
  else if constexpr (std::is_same_v<T, int64_t>)
    return DType::Int64;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return DType::UInt8;
  else if constexpr (std::is_same_v<T, uint16_t>)
    return DType::UInt16;
  else if constexpr (std::is_same_v<T, uint32_t>)
    return DType::UInt32;
  else if constexpr (std::is_same_v<T, uint64_t>)
    return DType::UInt64;
  else if constexpr (std::is_same_v<T, float>)
    return DType::Float32;
  else {
    static_assert(std::is_same_v<T, double>, "no numpy dtype for this type");
    return DType::Float64;
  }
}

[[noreturn]] void throw_dtype_mismatch(DType have, DType want);

template <class T>
const T* NpyArray::data() const {
  if (dtype != dtype_of<T>()) throw_dtype_mismatch(dtype, dtype_of<T>());
  return reinterpret_cast<const T*>(bytes.data());
}
template <class T>
T* NpyArray::data() {
  if (dtype != dtype_of<T>()) throw_dtype_mismatch(dtype, dtype_of<T>());
  return reinterpret_cast<T*>(bytes.data());
}

// The parsed header of a .npy file.
struct NpyHeader {
  int major = 1, minor = 0;
  std::string descr;  // as written, e.g. "<i8", "|O"
  bool fortran_order = false;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // where the array data (or the pickle) starts
};

// One element of an object array, converted to what a dataset needs.
struct NpyItem {
  enum class Kind { Array, Number, None, Other } kind = Kind::None;
  NpyArray array;        // Kind::Array: a numeric ndarray
  double number = 0.0;   // Kind::Number: numpy scalar, Python float/int/bool
  std::string describe;  // Kind::Other: what it was ("str", "list", ...)
};

// A whole .npy file: either a plain array or the items of an object array (flattened, C order).
struct NpyFile {
  NpyHeader header;
  bool is_object = false;
  int pickle_protocol = 0;
  NpyArray array;              // plain files
  std::vector<NpyItem> items;  // object files
};

// Parses the magic, version and header dict. `source` names the file in error messages.
NpyHeader parse_npy_header(std::span<const uint8_t> bytes, std::string_view source);

// Reads a whole .npy file from memory or disk. Rejects fortran_order True, structured and
// unsupported dtypes, wrong sizes and trailing bytes, with a message naming `source` / `path`.
NpyFile read_npy_memory(std::span<const uint8_t> bytes, std::string_view source);
NpyFile read_npy(const std::string& path);

// The exact bytes np.save (numpy 1.24) writes for a plain array (header v1.0, or 2.0 if needed).
std::vector<uint8_t> encode_npy(const NpyArray& a);
// The header alone for a given descr and shape (used by the object-array writer too).
std::vector<uint8_t> encode_npy_header(std::string_view descr, bool fortran_order,
                                       const std::vector<int64_t>& shape);
void write_npy(const std::string& path, const NpyArray& a);

// File helpers shared by the writers: whole-file read with clear errors, and an atomic write
// (to "<path>.tmp.<pid>.<n>" in the same folder, then renamed over `path`, so a reader
// never sees a half-written file).
std::vector<uint8_t> read_file_bytes(const std::string& path);
void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);
// A temporary name beside `path` for write-then-rename.
std::string temp_path_for(const std::string& path);

}  // namespace halo::data
