// .npy reading and writing (see data/npy.h). The header is a Python dict literal; we parse the
// three keys numpy writes with a small tokenizer instead of evaluating anything. Sizes are
// checked before any allocation so a hostile header cannot make us allocate or read past the end.
#include "data/npy.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>

#include "data/pickle.h"

namespace halo::data {

// ---- dtypes -------------------------------------------------------------------------------

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Bool:
    case DType::Int8:
    case DType::UInt8:
      return 1;
    case DType::Int16:
    case DType::UInt16:
      return 2;
    case DType::Int32:
    case DType::UInt32:
    case DType::Float32:
      return 4;
    case DType::Int64:
    case DType::UInt64:
    case DType::Float64:
      return 8;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::Bool:
      return "bool";
    case DType::Int8:
      return "int8";
    case DType::Int16:
      return "int16";
    case DType::Int32:
      return "int32";
    case DType::Int64:
      return "int64";
    case DType::UInt8:
      return "uint8";
    case DType::UInt16:
      return "uint16";
    case DType::UInt32:
      return "uint32";
    case DType::UInt64:
      return "uint64";
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
  }
  return "?";
}

static char dtype_kind(DType t) {
  switch (t) {
    case DType::Bool:
      return 'b';
    case DType::Int8:
    case DType::Int16:
    case DType::Int32:
    case DType::Int64:
      return 'i';
    case DType::UInt8:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64:
      return 'u';
    case DType::Float32:
    case DType::Float64:
      return 'f';
  }
  return '?';
}

std::string dtype_descr(DType t) {
  return fmt::format("{}{}{}", dtype_size(t) == 1 ? '|' : '<', dtype_kind(t), dtype_size(t));
}

bool dtype_is_integer(DType t) {
  return dtype_kind(t) == 'i' || dtype_kind(t) == 'u';
}

void throw_dtype_mismatch(DType have, DType want) {
  throw std::runtime_error(
      fmt::format("array holds {}, not {}", dtype_name(have), dtype_name(want)));
}

// "i8" (kind letter + byte count) to a DType, or nullopt.
static std::optional<DType> dtype_from_code(char kind, std::string_view digits) {
  int n = 0;
  if (digits.empty() || digits.size() > 2) return std::nullopt;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  switch (kind) {
    case 'b':
      if (n == 1) return DType::Bool;
      break;
    case 'i':
      if (n == 1) return DType::Int8;
      if (n == 2) return DType::Int16;
      if (n == 4) return DType::Int32;
      if (n == 8) return DType::Int64;
      break;
    case 'u':
      if (n == 1) return DType::UInt8;
      if (n == 2) return DType::UInt16;
      if (n == 4) return DType::UInt32;
      if (n == 8) return DType::UInt64;
      break;
    case 'f':
      if (n == 4) return DType::Float32;
      if (n == 8) return DType::Float64;
      break;
    default:
      break;
  }
  return std::nullopt;
}

// A parsed descr such as "<i8": the type, and whether the data are big-endian.
struct Descr {
  DType type;
  bool big_endian;
};

// Parses a byte-order character ('<', '>', '|', '=') and a type code. Returns nullopt if
// unsupported.
static std::optional<Descr> parse_typecode(char order, std::string_view code) {
  if (code.empty()) return std::nullopt;
  auto t = dtype_from_code(code[0], code.substr(1));
  if (!t) return std::nullopt;
  bool big;
  switch (order) {
    case '<':
      big = false;
      break;
    case '>':
      big = true;
      break;
    case '|':
    case '=':
      big = std::endian::native == std::endian::big;
      break;
    default:
      return std::nullopt;
  }
  return Descr{*t, big};
}

static std::optional<Descr> parse_descr(std::string_view d) {
  if (d.empty()) return std::nullopt;
  if (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')
    return parse_typecode(d[0], d.substr(1));
  return parse_typecode('=', d);
}

static bool is_object_descr(std::string_view d) {
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')) d.remove_prefix(1);
  return d == "O" || d == "O8";
}

// ---- NpyArray -------------------------------------------------------------------------------

size_t NpyArray::size() const {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

double NpyArray::value(size_t i) const {
  const uint8_t* p = bytes.data() + i * dtype_size(dtype);
  auto get = [p]<class T>(T) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return static_cast<double>(v);
  };
  switch (dtype) {
    case DType::Bool:
      return *p ? 1.0 : 0.0;
    case DType::Int8:
      return get(int8_t{});
    case DType::Int16:
      return get(int16_t{});
    case DType::Int32:
      return get(int32_t{});
    case DType::Int64:
      return get(int64_t{});
    case DType::UInt8:
      return get(uint8_t{});
    case DType::UInt16:
      return get(uint16_t{});
    case DType::UInt32:
      return get(uint32_t{});
    case DType::UInt64:
      return get(uint64_t{});
    case DType::Float32:
      return get(float{});
    case DType::Float64:
      return get(double{});
  }
  return 0.0;
}

template <class T>
static void convert_to_float(const uint8_t* src, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    out[i] = static_cast<float>(v);
  }
}

void NpyArray::to_float(float* out) const {
  const size_t n = size();
  const uint8_t* s = bytes.data();
  switch (dtype) {
    case DType::Bool:
      for (size_t i = 0; i < n; ++i) out[i] = s[i] ? 1.0f : 0.0f;
      return;
    case DType::Int8:
      convert_to_float<int8_t>(s, n, out);
      return;
    case DType::Int16:
      convert_to_float<int16_t>(s, n, out);
      return;
    case DType::Int32:
      convert_to_float<int32_t>(s, n, out);
      return;
    case DType::Int64:
      convert_to_float<int64_t>(s, n, out);
      return;
    case DType::UInt8:
      convert_to_float<uint8_t>(s, n, out);
      return;
    case DType::UInt16:
      convert_to_float<uint16_t>(s, n, out);
      return;
    case DType::UInt32:
      convert_to_float<uint32_t>(s, n, out);
      return;
    case DType::UInt64:
      convert_to_float<uint64_t>(s, n, out);
      return;
    case DType::Float32:
      convert_to_float<float>(s, n, out);
      return;
    case DType::Float64:
      convert_to_float<double>(s, n, out);
      return;
  }
}

std::vector<float> NpyArray::to_float() const {
  std::vector<float> out(size());
  to_float(out.data());
  return out;
}

std::vector<double> NpyArray::to_double() const {
  std::vector<double> out(size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = value(i);
  return out;
}

NpyArray NpyArray::from_raw(DType t, std::vector<int64_t> shape, const void* values) {
  NpyArray a;
  a.dtype = t;
  a.shape = std::move(shape);
  for (int64_t s : a.shape)
    if (s < 0) throw std::invalid_argument("NpyArray::from_raw: negative dimension");
  a.bytes.resize(a.size() * dtype_size(t));
  if (!a.bytes.empty()) std::memcpy(a.bytes.data(), values, a.bytes.size());
  return a;
}

// ---- header parsing -------------------------------------------------------------------------

namespace {

// Tokenizer for the header dict literal, e.g.
//   {'descr': '<f8', 'fortran_order': False, 'shape': (150, 150), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view source) : s_(text), source_(source) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    ws();
    expect('{');
    while (true) {
      ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      std::string key = string_literal("a key");
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        if (peek() == '[')
          fail(
              "structured dtypes (a list descr) are not supported; expected a plain descr such as "
              "'<f8'");
        h.descr = string_literal("the descr value");
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        have_fortran = true;
      } else if (key == "shape") {
        h.shape = tuple();
        have_shape = true;
      } else {
        fail(fmt::format("unexpected key '{}' (expected only descr, fortran_order, shape)", key));
      }
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      expect('}');
      break;
    }
    ws();
    if (i_ != s_.size()) fail("unexpected text after the closing '}'");
    if (!have_descr) fail("missing key 'descr'");
    if (!have_fortran) fail("missing key 'fortran_order'");
    if (!have_shape) fail("missing key 'shape'");
    return h;
  }

 private:
  std::string_view s_;
  std::string_view source_;
  size_t i_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(
        fmt::format("{}: bad .npy header at character {}: {}", source_, i_, what));
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++i_;
  }
  std::string string_literal(const char* what) {
    char q = peek();
    if (q != '\'' && q != '"') fail(fmt::format("expected a quoted string as {}", what));
    ++i_;
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\') fail("escapes in header strings are not supported");
      if (i_ - start > 64) fail(fmt::format("{} is longer than 64 characters", what));
      ++i_;
    }
    if (i_ >= s_.size()) fail("unterminated string");
    std::string out(s_.substr(start, i_ - start));
    ++i_;
    return out;
  }
  bool boolean() {
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    fail("expected True or False for fortran_order");
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> out;
    while (true) {
      ws();
      if (peek() == ')') {
        ++i_;
        return out;
      }
      if (peek() < '0' || peek() > '9') fail("expected a non-negative integer in shape");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        int d = peek() - '0';
        if (v > (INT64_MAX - d) / 10) fail("shape dimension overflows 64 bits");
        v = v * 10 + d;
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 long suffix
      out.push_back(v);
      if (out.size() > 32) fail("more than 32 dimensions");
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      expect(')');
      return out;
    }
  }
};

// Multiplies the dimensions; false if the product (times itemsize) would exceed `limit`.
bool checked_count(const std::vector<int64_t>& shape, uint64_t itemsize, uint64_t limit,
                   uint64_t* count) {
  uint64_t n = 1;
  for (int64_t s : shape) {
    uint64_t d = static_cast<uint64_t>(s);
    if (d == 0) {
      n = 0;
      continue;
    }
    if (n != 0 && n > limit / d) return false;
    n *= d;
  }
  // A zero dimension makes the array empty, but keep checking the others for absurd values.
  for (int64_t s : shape)
    if (static_cast<uint64_t>(s) > limit) return false;
  if (itemsize != 0 && n > limit / itemsize) return false;
  *count = n;
  return true;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

void byteswap_inplace(uint8_t* p, size_t n, size_t itemsize) {
  if (itemsize <= 1) return;
  for (size_t i = 0; i < n; ++i) {
    uint8_t* e = p + i * itemsize;
    for (size_t a = 0, b = itemsize - 1; a < b; ++a, --b) std::swap(e[a], e[b]);
  }
}

// A numeric ndarray from the pickle, checked and converted to an NpyArray.
NpyArray array_from_pickle(const pickle::Document& doc, const pickle::Object& a,
                           std::string_view where, std::string_view source) {
  auto fail = [&](const std::string& what) -> void {
    throw std::runtime_error(fmt::format("{}: {}: {}", source, where, what));
  };
  if (!a.built) fail("ndarray was never given its state (no BUILD)");
  const pickle::Object& dt = doc.at(a.dtype);
  auto d = parse_typecode(dt.byteorder, dt.text);
  if (!d) {
    fail(fmt::format("unsupported element dtype '{}{}' (supported: b1, i1-i8, u1-u8, f4, f8)",
                     dt.byteorder, dt.text.substr(0, 16)));
  }
  if (a.fortran_order)
    fail("fortran-ordered arrays are not supported (save with np.ascontiguousarray)");
  const pickle::Object& data = doc.at(a.data);
  if (data.kind != pickle::Kind::Bytes) fail("numeric ndarray data is not a bytes object");
  uint64_t count = 0;
  const size_t isz = dtype_size(d->type);
  if (!checked_count(a.shape, isz, data.text.size(), &count) || count * isz != data.text.size()) {
    uint64_t want = 0;
    std::string need = checked_count(a.shape, isz, UINT64_MAX / 16, &want)
                           ? std::to_string(want * isz)
                           : "too many";
    fail(fmt::format("shape {} of {} needs {} bytes, the pickle holds {}", shape_str(a.shape),
                     dtype_name(d->type), need, data.text.size()));
  }
  NpyArray out;
  out.dtype = d->type;
  out.shape = a.shape;
  out.bytes.assign(reinterpret_cast<const uint8_t*>(data.text.data()),
                   reinterpret_cast<const uint8_t*>(data.text.data()) + data.text.size());
  if (d->big_endian != (std::endian::native == std::endian::big))
    byteswap_inplace(out.bytes.data(), count, isz);
  return out;
}

NpyItem item_from_pickle(const pickle::Document& doc, uint32_t idx, size_t item_no,
                         std::string_view source) {
  const pickle::Object& o = doc.at(idx);
  const std::string where = fmt::format("object array item {}", item_no);
  NpyItem it;
  switch (o.kind) {
    case pickle::Kind::NdArray: {
      const pickle::Object& dt = doc.at(o.dtype);
      if (is_object_descr(dt.text)) {
        it.kind = NpyItem::Kind::Other;
        it.describe = "nested object array";
        return it;
      }
      it.kind = NpyItem::Kind::Array;
      it.array = array_from_pickle(doc, o, where, source);
      return it;
    }
    case pickle::Kind::Scalar: {
      const pickle::Object& dt = doc.at(o.dtype);
      auto d = parse_typecode(dt.byteorder, dt.text);
      if (!d)
        throw std::runtime_error(fmt::format("{}: {}: numpy scalar of unsupported dtype '{}'",
                                             source, where, dt.text.substr(0, 16)));
      const std::string& raw = doc.at(o.data).text;
      if (raw.size() != dtype_size(d->type))
        throw std::runtime_error(fmt::format("{}: {}: numpy scalar of {} needs {} bytes, got {}",
                                             source, where, dtype_name(d->type),
                                             dtype_size(d->type), raw.size()));
      NpyArray one;
      one.dtype = d->type;
      one.bytes.assign(raw.begin(), raw.end());
      if (d->big_endian != (std::endian::native == std::endian::big))
        byteswap_inplace(one.bytes.data(), 1, dtype_size(d->type));
      it.kind = NpyItem::Kind::Number;
      it.number = one.value(0);
      return it;
    }
    case pickle::Kind::Float:
      it.kind = NpyItem::Kind::Number;
      it.number = o.real;
      return it;
    case pickle::Kind::Int:
      it.kind = NpyItem::Kind::Number;
      it.number = static_cast<double>(o.integer);
      return it;
    case pickle::Kind::Bool:
      it.kind = NpyItem::Kind::Number;
      it.number = o.boolean ? 1.0 : 0.0;
      return it;
    case pickle::Kind::None:
      it.kind = NpyItem::Kind::None;
      return it;
    case pickle::Kind::Str:
      it.kind = NpyItem::Kind::Other;
      it.describe = "str";
      return it;
    case pickle::Kind::Bytes:
      it.kind = NpyItem::Kind::Other;
      it.describe = "bytes";
      return it;
    case pickle::Kind::Tuple:
      it.kind = NpyItem::Kind::Other;
      it.describe = "tuple";
      return it;
    case pickle::Kind::List:
      it.kind = NpyItem::Kind::Other;
      it.describe = "list";
      return it;
    case pickle::Kind::Dict:
      it.kind = NpyItem::Kind::Other;
      it.describe = "dict";
      return it;
    case pickle::Kind::Global:
      it.kind = NpyItem::Kind::Other;
      it.describe = "class or function";
      return it;
    case pickle::Kind::Dtype:
      it.kind = NpyItem::Kind::Other;
      it.describe = "dtype";
      return it;
  }
  it.kind = NpyItem::Kind::Other;
  it.describe = "unknown";
  return it;
}

}  // namespace

NpyHeader parse_npy_header(std::span<const uint8_t> b, std::string_view source) {
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (b.size() < 10)
    throw std::runtime_error(fmt::format(
        "{}: not a .npy file: only {} bytes (a header needs at least 10)", source, b.size()));
  if (std::memcmp(b.data(), magic, 6) != 0)
    throw std::runtime_error(
        fmt::format("{}: not a .npy file: bad magic (expected \\x93NUMPY at byte 0)", source));
  NpyHeader h;
  h.major = b[6];
  h.minor = b[7];
  size_t hlen, start;
  if (h.major == 1) {
    hlen = static_cast<size_t>(b[8]) | (static_cast<size_t>(b[9]) << 8);
    start = 10;
  } else if (h.major == 2 || h.major == 3) {
    if (b.size() < 12)
      throw std::runtime_error(
          fmt::format("{}: truncated .npy header (version {}.{})", source, h.major, h.minor));
    hlen = static_cast<size_t>(b[8]) | (static_cast<size_t>(b[9]) << 8) |
           (static_cast<size_t>(b[10]) << 16) | (static_cast<size_t>(b[11]) << 24);
    start = 12;
  } else {
    throw std::runtime_error(fmt::format(
        "{}: unsupported .npy version {}.{} (expected 1.0, 2.0 or 3.0)", source, h.major, h.minor));
  }
  if (h.minor != 0)
    throw std::runtime_error(fmt::format(
        "{}: unsupported .npy version {}.{} (expected 1.0, 2.0 or 3.0)", source, h.major, h.minor));
  if (hlen > b.size() - start)
    throw std::runtime_error(fmt::format(
        "{}: truncated .npy header: declares {} header bytes at byte {}, the file has {} left",
        source, hlen, start, b.size() - start));
  std::string_view text(reinterpret_cast<const char*>(b.data() + start), hlen);
  // Versions 1 and 2 are latin-1, 3 is UTF-8; the keys and values we accept are plain ASCII either
  // way.
  for (size_t i = 0; i < text.size(); ++i)
    if (static_cast<unsigned char>(text[i]) >= 0x80 || text[i] == '\0')
      throw std::runtime_error(
          fmt::format("{}: bad .npy header at character {}: non-ASCII byte 0x{:02x}", source, i,
                      static_cast<unsigned char>(text[i])));
  if (text.empty() || text.back() != '\n')
    throw std::runtime_error(
        fmt::format("{}: bad .npy header: does not end with a newline", source));
  NpyHeader parsed = HeaderParser(text, source).parse();
  h.descr = std::move(parsed.descr);
  h.fortran_order = parsed.fortran_order;
  h.shape = std::move(parsed.shape);
  h.data_offset = start + hlen;
  return h;
}

NpyFile read_npy_memory(std::span<const uint8_t> b, std::string_view source) {
  NpyFile f;
  f.header = parse_npy_header(b, source);
  const NpyHeader& h = f.header;
  const size_t avail = b.size() - h.data_offset;
  if (is_object_descr(h.descr)) {
    f.is_object = true;
    if (h.fortran_order && h.shape.size() > 1)
      throw std::runtime_error(
          fmt::format("{}: fortran-ordered object arrays are not supported", source));
    uint64_t count = 0;
    if (!checked_count(h.shape, 1, avail, &count))
      throw std::runtime_error(
          fmt::format("{}: object array shape {} is larger than the file could hold", source,
                      shape_str(h.shape)));
    pickle::Document doc = pickle::load(b.subspan(h.data_offset), source, h.data_offset);
    f.pickle_protocol = doc.protocol;
    if (doc.bytes_consumed != avail)
      throw std::runtime_error(
          fmt::format("{}: {} unexpected bytes after the pickle's STOP at byte {}", source,
                      avail - doc.bytes_consumed, h.data_offset + doc.bytes_consumed));
    const pickle::Object& root = doc.root_object();
    if (root.kind != pickle::Kind::NdArray || !root.built)
      throw std::runtime_error(fmt::format("{}: the pickle does not hold a numpy array", source));
    const pickle::Object& dt = doc.at(root.dtype);
    const pickle::Object& list = doc.at(root.data);
    if (!is_object_descr(dt.text) || list.kind != pickle::Kind::List)
      throw std::runtime_error(
          fmt::format("{}: header says object array ('{}') but the pickle holds a '{}' array",
                      source, h.descr, dt.text.substr(0, 16)));
    uint64_t pc = 0;
    if (root.shape != h.shape || !checked_count(root.shape, 1, UINT32_MAX, &pc) ||
        pc != list.items.size())
      throw std::runtime_error(
          fmt::format("{}: object array shape mismatch: header {}, pickle {} with {} items", source,
                      shape_str(h.shape), shape_str(root.shape), list.items.size()));
    f.items.reserve(list.items.size());
    for (size_t i = 0; i < list.items.size(); ++i)
      f.items.push_back(item_from_pickle(doc, list.items[i], i, source));
    return f;
  }
  auto d = parse_descr(h.descr);
  if (!d)
    throw std::runtime_error(fmt::format(
        "{}: unsupported dtype '{}' in the .npy header (supported: b1, i1-i8, u1-u8, f4, f8, O)",
        source, h.descr));
  if (h.fortran_order && h.shape.size() > 1)
    throw std::runtime_error(fmt::format(
        "{}: fortran_order True is not supported (save with np.ascontiguousarray)", source));
  const size_t isz = dtype_size(d->type);
  uint64_t count = 0;
  if (!checked_count(h.shape, isz, UINT64_MAX / 16, &count))
    throw std::runtime_error(fmt::format(
        "{}: truncated: shape {} of {} is larger than any file (the file has {} data bytes)",
        source, shape_str(h.shape), dtype_name(d->type), avail));
  if (count * isz > avail)
    throw std::runtime_error(fmt::format(
        "{}: truncated: shape {} of {} needs {} data bytes at byte {}, the file has {}", source,
        shape_str(h.shape), dtype_name(d->type), count * isz, h.data_offset, avail));
  if (count * isz < avail)
    throw std::runtime_error(fmt::format(
        "{}: {} unexpected bytes after the data (shape {} of {} needs {} bytes)", source,
        avail - count * isz, shape_str(h.shape), dtype_name(d->type), count * isz));
  f.array.dtype = d->type;
  f.array.shape = h.shape;
  f.array.bytes.assign(b.begin() + static_cast<std::ptrdiff_t>(h.data_offset), b.end());
  if (d->big_endian != (std::endian::native == std::endian::big))
    byteswap_inplace(f.array.bytes.data(), count, isz);
  return f;
}

NpyFile read_npy(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return read_npy_memory(bytes, path);
}

// ---- writing ----------------------------------------------------------------------------------

std::vector<uint8_t> encode_npy_header(std::string_view descr, bool fortran_order,
                                       const std::vector<int64_t>& shape) {
  // numpy/lib/format.py (1.24) _write_array_header: the repr of the sorted dict, then spare
  // spaces so the first axis can grow to 21 digits in place, then padding to a multiple of 64
  // bytes (ARRAY_ALIGN) including the magic, the length field and a final '\n'.
  std::string h = fmt::format("{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}", descr,
                              fortran_order ? "True" : "False", shape_str(shape));
  if (!shape.empty()) {
    const size_t digits = std::to_string(shape[fortran_order ? shape.size() - 1 : 0]).size();
    if (digits < 21) h.append(21 - digits, ' ');
  }
  auto wrap = [&](int major, size_t lenbytes) -> std::vector<uint8_t> {
    const size_t hlen = h.size() + 1;
    const size_t padlen = 64 - ((8 + lenbytes + hlen) % 64);
    const size_t total = hlen + padlen;
    std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
    for (size_t i = 0; i < lenbytes; ++i) out.push_back(static_cast<uint8_t>(total >> (8 * i)));
    out.insert(out.end(), h.begin(), h.end());
    out.insert(out.end(), padlen, ' ');
    out.push_back('\n');
    return out;
  };
  const size_t hlen = h.size() + 1;
  if (hlen + 64 - ((10 + hlen) % 64) <= 65535) return wrap(1, 2);
  return wrap(2, 4);
}

std::vector<uint8_t> encode_npy(const NpyArray& a) {
  if (a.bytes.size() != a.size() * dtype_size(a.dtype))
    throw std::invalid_argument(
        fmt::format("encode_npy: array of shape {} has {} bytes, expected {}", shape_str(a.shape),
                    a.bytes.size(), a.size() * dtype_size(a.dtype)));
  std::vector<uint8_t> out = encode_npy_header(dtype_descr(a.dtype), false, a.shape);
  if constexpr (std::endian::native == std::endian::big) {
    std::vector<uint8_t> le = a.bytes;
    byteswap_inplace(le.data(), a.size(), dtype_size(a.dtype));
    out.insert(out.end(), le.begin(), le.end());
  } else {
    out.insert(out.end(), a.bytes.begin(), a.bytes.end());
  }
  return out;
}

void write_npy(const std::string& path, const NpyArray& a) {
  write_file_atomic(path, encode_npy(a));
}

// ---- files ------------------------------------------------------------------------------------

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  while (true) {
    size_t n = std::fread(buf, 1, sizeof buf, f);
    out.insert(out.end(), buf, buf + n);
    if (n < sizeof buf) break;
  }
  bool err = std::ferror(f) != 0;
  std::fclose(f);
  if (err) throw std::runtime_error(fmt::format("{}: read error", path));
  return out;
}

std::string temp_path_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}.tmp.{}.{}", path, static_cast<long>(::getpid()), counter.fetch_add(1));
}

void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes) {
  const std::string tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error(fmt::format("{}: write failed: {}", tmp, std::strerror(e)));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(fmt::format("{}: close failed: {}", tmp, std::strerror(e)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(
        fmt::format("{}: cannot rename {} into place: {}", path, tmp, std::strerror(e)));
  }
}

}  // namespace halo::data
