// A small, safe reader for the Python pickles inside numpy object arrays (.npy files with descr
// '|O'), protocols 2 to 5. It runs the pickle opcodes on a private stack and recognises only the
// few numpy globals that `np.save` emits; it never executes anything and rejects any other global.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace halo::data::pickle {

// What a value on the pickle machine is. Arrays, dtypes and scalars are the numpy objects that
// the recognised globals build; Global is a recognised callable before it is called.
enum class Kind : uint8_t {
  None,
  Bool,
  Int,
  Float,
  Str,
  Bytes,
  Tuple,
  List,
  Dict,
  Global,
  Dtype,
  NdArray,
  Scalar
};

// The callables we accept (any other `module name` pair is an error).
enum class GlobalFn : uint8_t {
  Reconstruct,  // numpy.core.multiarray._reconstruct / numpy._core.multiarray._reconstruct
  NdArrayType,  // numpy.ndarray
  DtypeType,    // numpy.dtype
  Scalar,       // numpy.core.multiarray.scalar / numpy._core.multiarray.scalar
  FromBuffer,   // numpy.core.numeric._frombuffer / numpy._core.numeric._frombuffer (protocol 5)
  CodecsEncode  // _codecs.encode (protocol 2 writes bytes as encode(<latin-1 str>, 'latin1'))
};

// One object. Objects live in an arena (Document::objects) and refer to each other by index, so
// shared references from the memo and even cycles are harmless (no ownership, no recursion on
// destruction).
struct Object {
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;             // Str (UTF-8), Bytes (raw), Dtype (type string such as "i8")
  std::vector<uint32_t> items;  // Tuple/List elements; Dict as key, value, key, value, ...
  GlobalFn global = GlobalFn::Reconstruct;
  // Dtype: byte order character ('<', '>', '|' or '=') from its BUILD state.
  char byteorder = '|';
  // NdArray: built by BUILD (or by _frombuffer). `dtype` is the index of a Dtype object, `data`
  // the index of a Bytes object (numeric arrays) or a List (object arrays).
  bool built = false;
  std::vector<int64_t> shape;
  bool fortran_order = false;
  uint32_t dtype = 0;
  uint32_t data = 0;
  // Scalar: `dtype` and `data` (Bytes) as above.
};

// The result of unpickling: every object made, and the index of the one STOP returned.
struct Document {
  std::vector<Object> objects;
  uint32_t root = 0;
  int protocol = 0;           // from PROTO (0 if the stream had none)
  size_t bytes_consumed = 0;  // offset just after the STOP opcode
  const Object& at(uint32_t i) const { return objects.at(i); }
  const Object& root_object() const { return objects.at(root); }
};

// Limits that bound the work and memory of a hostile input (all far above what np.save writes).
struct Limits {
  size_t max_objects = size_t{1} << 22;
  size_t max_stack = size_t{1} << 20;
  size_t max_memo = size_t{1} << 20;
};

// Runs the opcodes in `data` up to STOP. `source` (a file name) and `base_offset` (where `data`
// starts in that file) only make error messages precise: every problem throws std::runtime_error
// "<source>: pickle at byte <offset>: opcode 0x.. (NAME): what was wrong".
Document load(std::span<const uint8_t> data, std::string_view source, size_t base_offset = 0,
              const Limits& limits = {});

// The name of a pickle opcode byte, for messages ("BINPUT", or "unknown").
std::string_view opcode_name(uint8_t op);

}  // namespace halo::data::pickle
