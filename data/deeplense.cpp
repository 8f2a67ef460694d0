// The DeepLense folder layout (see data/deeplense.h). The writer replays, opcode by opcode, what
// CPython's pickler emits for np.save of a 2-element object array at protocol 3, including which
// objects are shared through the memo, so that our files are byte-identical to numpy's.
#include "data/deeplense.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>

namespace halo::data {

namespace fs = std::filesystem;

// ---- reading ----------------------------------------------------------------------------------

static NpyArray squeeze_image(NpyArray a, const std::string& source, const char* what) {
  auto dims = [&] {
    std::string s;
    for (size_t i = 0; i < a.shape.size(); ++i) s += (i ? " x " : "") + std::to_string(a.shape[i]);
    return s.empty() ? std::string("() (a 0-d scalar)") : s;
  };
  if (a.shape.size() == 3 && a.shape[0] == 1)
    a.shape.erase(a.shape.begin());
  else if (a.shape.size() == 3 && a.shape[2] == 1)
    a.shape.pop_back();
  if (a.shape.size() != 2)
    throw std::runtime_error(
        fmt::format("{}: {} has shape {} (expected 2-D H x W, or 1 x H x W / H x W x 1)", source,
                    what, dims()));
  if (a.shape[0] <= 0 || a.shape[1] <= 0 || a.shape[0] > 65536 || a.shape[1] > 65536)
    throw std::runtime_error(fmt::format("{}: {} has an unusable size {}", source, what, dims()));
  return a;
}

DeepLenseRecord deeplense_record_from(NpyFile&& f, const std::string& source) {
  DeepLenseRecord r;
  if (!f.is_object) {
    r.image = squeeze_image(std::move(f.array), source, "the array");
    return r;
  }
  if (f.items.size() != 2)
    throw std::runtime_error(fmt::format(
        "{}: object array has {} items (expected 2: [image, label])", source, f.items.size()));
  if (f.items[0].kind != NpyItem::Kind::Array)
    throw std::runtime_error(
        fmt::format("{}: item 0 (the image) is not a numeric array{}", source,
                    f.items[0].describe.empty() ? "" : " but a " + f.items[0].describe));
  if (f.items[1].kind != NpyItem::Kind::Number)
    throw std::runtime_error(
        fmt::format("{}: item 1 (the label) is not a number{}", source,
                    f.items[1].describe.empty() ? "" : " but a " + f.items[1].describe));
  r.image = squeeze_image(std::move(f.items[0].array), source, "item 0 (the image)");
  r.label = f.items[1].number;
  return r;
}

DeepLenseRecord read_deeplense_memory(std::span<const uint8_t> bytes, const std::string& source) {
  return deeplense_record_from(read_npy_memory(bytes, source), source);
}

DeepLenseRecord read_deeplense_file(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return read_deeplense_memory(bytes, path);
}

// ---- writing ----------------------------------------------------------------------------------

namespace {

// Emits protocol-3 opcodes the way CPython's _pickle.c does for the objects np.save produces.
// Objects that CPython would find in its memo (the same Python object pickled twice) are named by
// a key; pickling a key a second time emits BINGET instead of the object.
class Protocol3Writer {
 public:
  std::vector<uint8_t> out;

  void byte(uint8_t b) { out.push_back(b); }
  void raw(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  void le32(uint32_t v) {
    for (int i = 0; i < 4; ++i) byte(static_cast<uint8_t>(v >> (8 * i)));
  }

  // BINPUT/LONG_BINPUT of the object just written; remembers it under `key` if given.
  void memoize(const std::string& key = {}) {
    uint32_t idx = next_++;
    if (!key.empty()) memo_[key] = idx;
    if (idx < 256) {
      byte('q');
      byte(static_cast<uint8_t>(idx));
    } else {
      byte('r');
      le32(idx);
    }
  }
  // If `key` was memoized, emits BINGET/LONG_BINGET and returns true.
  bool get(const std::string& key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) return false;
    if (it->second < 256) {
      byte('h');
      byte(static_cast<uint8_t>(it->second));
    } else {
      byte('j');
      le32(it->second);
    }
    return true;
  }

  void global(const std::string& module, const std::string& name) {
    const std::string key = "global:" + module + "." + name;
    if (get(key)) return;
    byte('c');
    raw(module.data(), module.size());
    byte('\n');
    raw(name.data(), name.size());
    byte('\n');
    memoize(key);
  }
  void integer(int64_t v) {  // save_long for protocol >= 2
    if (v >= 0 && v <= 0xff) {
      byte('K');
      byte(static_cast<uint8_t>(v));
    } else if (v >= 0 && v <= 0xffff) {
      byte('M');
      byte(static_cast<uint8_t>(v));
      byte(static_cast<uint8_t>(v >> 8));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      byte('J');
      le32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {
      // LONG1 with the minimal two's-complement little-endian length.
      uint8_t b[8];
      for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
      int n = 8;
      while (n > 1 &&
             ((b[n - 1] == 0 && !(b[n - 2] & 0x80)) || (b[n - 1] == 0xff && (b[n - 2] & 0x80))))
        --n;
      byte(0x8a);
      byte(static_cast<uint8_t>(n));
      raw(b, static_cast<size_t>(n));
    }
  }
  // A str object; `shared_key` for strings CPython interns (single characters), so a second use
  // is a memo hit. Other strings are fresh objects every time.
  void str(const std::string& s, const std::string& shared_key = {}) {
    if (!shared_key.empty() && get(shared_key)) return;
    byte('X');
    le32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
    memoize(shared_key);
  }
  void bytes(const void* p, size_t n, const std::string& shared_key = {}) {
    if (!shared_key.empty() && get(shared_key)) return;
    if (n < 256) {
      byte('C');
      byte(static_cast<uint8_t>(n));
    } else {
      if (n > 0xffffffffu) throw std::invalid_argument("encode_deeplense: image larger than 4 GiB");
      byte('B');
      le32(static_cast<uint32_t>(n));
    }
    raw(p, n);
    memoize(shared_key);
  }
  void shape_tuple(const std::vector<int64_t>& shape) {
    if (shape.empty()) {
      byte(')');  // EMPTY_TUPLE is not memoized
      return;
    }
    if (shape.size() > 3) byte('(');
    for (int64_t s : shape) integer(s);
    if (shape.size() <= 3)
      byte(static_cast<uint8_t>(0x85 + shape.size() - 1));  // TUPLE1..3
    else
      byte('t');
    memoize();
  }

  // numpy.dtype.__reduce__: dtype(typestr, False, True) then BUILD with the version-3 state
  // (3, byteorder, None, None, None, -1, -1, flags). numpy hands the pickler a distinct dtype
  // object each time (checked: a float64 image with a float64 label pickles the dtype twice),
  // so dtypes are never memo hits; the single-character byte-order strings are.
  void dtype(const std::string& typestr, char byteorder, int flags) {
    global("numpy", "dtype");
    str(typestr);
    byte(0x89);  // NEWFALSE
    byte(0x88);  // NEWTRUE
    byte(0x87);  // TUPLE3
    memoize();
    byte('R');
    memoize();
    byte('(');
    integer(3);
    str(std::string(1, byteorder), std::string("char:") + byteorder);
    byte('N');
    byte('N');
    byte('N');
    integer(-1);
    integer(-1);
    integer(flags);
    byte('t');
    memoize();
    byte('b');
  }

  // ndarray.__reduce__ up to (and including) the MARK of its 5-tuple state: the caller then
  // writes (version, shape, dtype, fortran, data) and calls array_end().
  void array_begin() {
    global(multiarray_, "_reconstruct");
    global("numpy", "ndarray");
    integer(0);
    byte(0x85);  // TUPLE1: the (0,) shape
    memoize();
    bytes("b", 1, "bytes:b");  // numpy passes one cached b'b' object
    byte(0x87);
    memoize();
    byte('R');
    memoize();
    byte('(');
  }
  void array_end() {
    byte('t');
    memoize();
    byte('b');
  }

  std::string multiarray_ = "numpy.core.multiarray";

 private:
  uint32_t next_ = 0;
  std::map<std::string, uint32_t> memo_;
};

std::string typestr_of(DType t) {  // dtype.__reduce__'s first argument: kind letter + size
  std::string d = dtype_descr(t);
  return d.substr(1);
}

}  // namespace

std::vector<uint8_t> encode_deeplense(const NpyArray& image, double label) {
  if (image.shape.size() != 2)
    throw std::invalid_argument(
        fmt::format("encode_deeplense: image must be 2-D, got {} dimensions", image.shape.size()));
  if (image.bytes.size() != image.size() * dtype_size(image.dtype))
    throw std::invalid_argument("encode_deeplense: image bytes do not match its shape");
  std::vector<uint8_t> out = encode_npy_header("|O", false, {2});
  Protocol3Writer w;
  w.byte(0x80);
  w.byte(3);
  // The outer object array: _reconstruct(ndarray, (0,), b'b') + BUILD (1, (2,), dtype('O8'), False,
  // [...]).
  w.array_begin();
  w.integer(1);
  w.shape_tuple({2});
  w.dtype("O8", '|', 63);
  w.byte(0x89);  // fortran_order False
  w.byte(']');   // EMPTY_LIST
  w.memoize();
  w.byte('(');  // MARK for APPENDS
  // Item 0: the image, BUILD (1, (H, W), dtype, False, <raw bytes>).
  w.array_begin();
  w.integer(1);
  w.shape_tuple(image.shape);
  const bool one_byte = dtype_size(image.dtype) == 1;
  w.dtype(typestr_of(image.dtype), one_byte ? '|' : '<', 0);
  w.byte(0x89);
  if constexpr (std::endian::native == std::endian::little) {
    w.bytes(image.bytes.data(), image.bytes.size());
  } else {
    std::vector<uint8_t> le = image.bytes;
    const size_t isz = dtype_size(image.dtype);
    for (size_t i = 0; i < image.size(); ++i)
      std::reverse(le.begin() + i * isz, le.begin() + (i + 1) * isz);
    w.bytes(le.data(), le.size());
  }
  w.array_end();
  // Item 1: the label, numpy.core.multiarray.scalar(dtype('f8'), <8 bytes little-endian>).
  w.global(w.multiarray_, "scalar");
  w.dtype("f8", '<', 0);
  uint8_t lb[8];
  std::memcpy(lb, &label, 8);
  if constexpr (std::endian::native == std::endian::big) std::reverse(lb, lb + 8);
  w.bytes(lb, 8);
  w.byte(0x86);  // TUPLE2
  w.memoize();
  w.byte('R');
  w.memoize();
  w.byte('e');  // APPENDS
  w.array_end();
  w.byte('.');
  out.insert(out.end(), w.out.begin(), w.out.end());
  return out;
}

void write_deeplense_file(const std::string& path, const NpyArray& image, double label) {
  write_file_atomic(path, encode_deeplense(image, label));
}

// ---- names and folders --------------------------------------------------------------------------

std::string deeplense_file_name(uint64_t hi, uint64_t lo) {
  // Decimal of a 128-bit number by repeated division of four 32-bit limbs by 10.
  uint32_t limb[4] = {static_cast<uint32_t>(hi >> 32), static_cast<uint32_t>(hi),
                      static_cast<uint32_t>(lo >> 32), static_cast<uint32_t>(lo)};
  std::string digits;
  auto is_zero = [&] { return limb[0] == 0 && limb[1] == 0 && limb[2] == 0 && limb[3] == 0; };
  do {
    uint64_t rem = 0;
    for (uint32_t& l : limb) {
      uint64_t cur = (rem << 32) | l;
      l = static_cast<uint32_t>(cur / 10);
      rem = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + rem));
  } while (!is_zero());
  std::reverse(digits.begin(), digits.end());
  return "image_" + digits + ".npy";
}

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::string deeplense_file_name_for(uint64_t seed, uint64_t index) {
  uint64_t s = splitmix64(seed ^ splitmix64(index ^ 0x6E616D6573ull));  // "names"
  return deeplense_file_name(splitmix64(s + 1), splitmix64(s + 2));
}

std::vector<std::string> list_npy_files(const std::string& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot list folder: {}", dir, ec.message()));
  std::vector<std::string> names;
  for (const auto& e : it) {
    const std::string name = e.path().filename().string();
    if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0) continue;
    if (!e.is_regular_file(ec)) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> paths;
  paths.reserve(names.size());
  for (const auto& n : names) paths.push_back((fs::path(dir) / n).string());
  return paths;
}

std::string resolve_deeplense_folder(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error(fmt::format("{}: not a folder", dir));
  if (!list_npy_files(dir).empty()) return dir;
  const std::string sub = (fs::path(dir) / "lens_data").string();
  if (fs::is_directory(sub, ec) && !list_npy_files(sub).empty()) return sub;
  throw std::runtime_error(
      fmt::format("{}: no .npy files in the folder (nor in {}/lens_data)", dir, dir));
}

}  // namespace halo::data
