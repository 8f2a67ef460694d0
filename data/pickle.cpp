// The pickle machine behind data/pickle.h: a stack, a mark stack and a memo over an arena of
// objects. Every read is bounds-checked and every object kind is checked before use, so any byte
// string either unpickles to a Document or throws a std::runtime_error saying where and why.
#include "data/pickle.h"

#include <fmt/format.h>

#include <cstring>
#include <stdexcept>
#include <unordered_map>

namespace halo::data::pickle {

namespace {

// Opcode bytes (Python's Lib/pickletools.py names them).
enum Op : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  BININT = 'J',
  BININT1 = 'K',
  BININT2 = 'M',
  NONE = 'N',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  APPENDS = 'e',
  BINGET = 'h',
  LONG_BINGET = 'j',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  SETITEMS = 'u',
  EMPTY_DICT = '}',
  EMPTY_LIST = ']',
  EMPTY_TUPLE = ')',
  REDUCE = 'R',
  BINFLOAT = 'G',
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  PROTO = 0x80,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  BYTEARRAY8 = 0x96,
  NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::Str:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::Tuple:
      return "tuple";
    case Kind::List:
      return "list";
    case Kind::Dict:
      return "dict";
    case Kind::Global:
      return "global";
    case Kind::Dtype:
      return "numpy.dtype";
    case Kind::NdArray:
      return "numpy.ndarray";
    case Kind::Scalar:
      return "numpy scalar";
  }
  return "?";
}

// Printable form of a string taken from the input, for error messages (bounded length).
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 32 && c < 127 && c != '\\')
      out += static_cast<char>(c);
    else
      out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > 80) out += "...";
  return out;
}

class Machine {
 public:
  Machine(std::span<const uint8_t> data, std::string_view source, size_t base, const Limits& lim)
      : d_(data), source_(source), base_(base), lim_(lim) {}

  Document run() {
    while (true) {
      if (pos_ >= d_.size()) {
        op_pos_ = pos_;
        throw std::runtime_error(fmt::format(
            "{}: pickle truncated at byte {}: ended without a STOP opcode", source_, base_ + pos_));
      }
      op_pos_ = pos_;
      op_ = d_[pos_++];
      if (step()) break;
    }
    doc_.bytes_consumed = pos_;
    doc_.protocol = proto_;
    return std::move(doc_);
  }

 private:
  std::span<const uint8_t> d_;
  std::string_view source_;
  size_t base_;
  Limits lim_;
  size_t pos_ = 0, op_pos_ = 0;
  uint8_t op_ = 0;
  int proto_ = 0;
  Document doc_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(fmt::format("{}: pickle at byte {}: opcode 0x{:02x} ({}): {}", source_,
                                         base_ + op_pos_, op_, opcode_name(op_), what));
  }

  // ---- reading the argument bytes of an opcode ----
  const uint8_t* take(uint64_t n) {
    if (n > d_.size() - pos_)
      fail(fmt::format("truncated: needs {} argument bytes, only {} left", n, d_.size() - pos_));
    const uint8_t* p = d_.data() + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  uint64_t read_le(int nbytes) {
    const uint8_t* p = take(static_cast<uint64_t>(nbytes));
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string read_line() {  // GLOBAL's "module\n" and "name\n"
    size_t start = pos_;
    while (pos_ < d_.size() && d_[pos_] != '\n') {
      if (pos_ - start > 256) fail("GLOBAL name longer than 256 bytes");
      ++pos_;
    }
    if (pos_ >= d_.size()) fail("truncated inside a GLOBAL name (no newline)");
    std::string s(reinterpret_cast<const char*>(d_.data() + start), pos_ - start);
    ++pos_;
    return s;
  }

  // ---- objects and the stack ----
  uint32_t make(Kind k) {
    if (doc_.objects.size() >= lim_.max_objects) fail("too many objects");
    doc_.objects.emplace_back();
    doc_.objects.back().kind = k;
    return static_cast<uint32_t>(doc_.objects.size() - 1);
  }
  Object& obj(uint32_t i) { return doc_.objects[i]; }
  void push(uint32_t i) {
    if (stack_.size() >= lim_.max_stack) fail("stack too deep");
    stack_.push_back(i);
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  uint32_t pop() {
    if (stack_.size() <= floor()) fail("stack underflow (needs an argument, found none)");
    uint32_t v = stack_.back();
    stack_.pop_back();
    return v;
  }
  uint32_t top() {
    if (stack_.size() <= floor())
      fail("stack underflow (needs an object on the stack, found none)");
    return stack_.back();
  }
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  const Object& expect(uint32_t i, Kind k, const char* role) {
    const Object& o = doc_.objects[i];
    if (o.kind != k)
      fail(fmt::format("{}: expected {}, got {}", role, kind_name(k), kind_name(o.kind)));
    return o;
  }

  uint32_t make_int(int64_t v) {
    uint32_t i = make(Kind::Int);
    obj(i).integer = v;
    return i;
  }
  uint32_t make_text(Kind k, const uint8_t* p, size_t n) {
    uint32_t i = make(k);
    obj(i).text.assign(reinterpret_cast<const char*>(p), n);
    return i;
  }
  uint32_t make_tuple(std::vector<uint32_t> items) {
    uint32_t i = make(Kind::Tuple);
    obj(i).items = std::move(items);
    return i;
  }

  void memo_put(uint64_t key) {
    if (key > UINT32_MAX) fail("memo index out of range");
    uint32_t v = top();
    if (memo_.size() >= lim_.max_memo && !memo_.count(static_cast<uint32_t>(key)))
      fail("memo too large");
    memo_[static_cast<uint32_t>(key)] = v;
  }
  void memo_get(uint64_t key) {
    auto it = memo_.find(static_cast<uint32_t>(key));
    if (key > UINT32_MAX || it == memo_.end())
      fail(fmt::format("memo key {} was never stored", key));
    push(it->second);
  }

  uint32_t make_global(const std::string& module, const std::string& name) {
    GlobalFn g;
    const bool multiarray = module == "numpy.core.multiarray" || module == "numpy._core.multiarray";
    const bool numeric = module == "numpy.core.numeric" || module == "numpy._core.numeric";
    if (multiarray && name == "_reconstruct")
      g = GlobalFn::Reconstruct;
    else if (multiarray && name == "scalar")
      g = GlobalFn::Scalar;
    else if (numeric && name == "_frombuffer")
      g = GlobalFn::FromBuffer;
    else if (module == "numpy" && name == "ndarray")
      g = GlobalFn::NdArrayType;
    else if (module == "numpy" && name == "dtype")
      g = GlobalFn::DtypeType;
    else if (module == "_codecs" && name == "encode")
      g = GlobalFn::CodecsEncode;
    else
      fail(fmt::format(
          "global '{}.{}' is not allowed (only the numpy array/dtype/scalar constructors "
          "and _codecs.encode are recognised)",
          printable(module), printable(name)));
    uint32_t i = make(Kind::Global);
    obj(i).global = g;
    return i;
  }

  // _codecs.encode(s, 'latin1'): each code point of the UTF-8 string s (all < 256) is one byte.
  uint32_t latin1_encode(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      uint32_t cp;
      if (c < 0x80) {
        cp = c;
        i += 1;
      } else if ((c & 0xE0) == 0xC0) {
        if (i + 1 >= s.size() || (static_cast<unsigned char>(s[i + 1]) & 0xC0) != 0x80)
          fail(fmt::format("_codecs.encode: invalid UTF-8 at character byte {}", i));
        cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
        if (cp < 0x80) fail(fmt::format("_codecs.encode: overlong UTF-8 at character byte {}", i));
        i += 2;
      } else {
        fail(fmt::format("_codecs.encode: code point at character byte {} is not latin-1", i));
      }
      if (cp > 0xFF) fail("_codecs.encode: code point above 255 cannot be latin-1");
      out += static_cast<char>(cp);
    }
    uint32_t i = make(Kind::Bytes);
    obj(i).text = std::move(out);
    return i;
  }

  std::vector<int64_t> shape_of(uint32_t t, const char* role) {
    const Object& o = expect(t, Kind::Tuple, role);
    std::vector<int64_t> shape;
    for (uint32_t e : o.items) {
      const Object& d = doc_.objects[e];
      if (d.kind != Kind::Int || d.integer < 0)
        fail(fmt::format("{}: dimensions must be non-negative ints", role));
      shape.push_back(d.integer);
    }
    if (shape.size() > 32) fail(fmt::format("{}: more than 32 dimensions", role));
    return shape;
  }
  bool truth(uint32_t i, const char* role) {
    const Object& o = doc_.objects[i];
    if (o.kind == Kind::Bool) return o.boolean;
    if (o.kind == Kind::Int) return o.integer != 0;
    fail(fmt::format("{}: expected bool, got {}", role, kind_name(o.kind)));
  }

  void reduce() {
    uint32_t args_i = pop();
    uint32_t fn_i = pop();
    const Object& fn = expect(fn_i, Kind::Global, "REDUCE callable");
    const std::vector<uint32_t> args = expect(args_i, Kind::Tuple, "REDUCE arguments").items;
    auto need_args = [&](size_t n, const char* what) {
      if (args.size() != n)
        fail(fmt::format("{} takes {} arguments, got {}", what, n, args.size()));
    };
    switch (fn.global) {
      case GlobalFn::Reconstruct: {
        need_args(3, "_reconstruct");
        const Object& sub = expect(args[0], Kind::Global, "_reconstruct subtype");
        if (sub.global != GlobalFn::NdArrayType) fail("_reconstruct subtype must be numpy.ndarray");
        shape_of(args[1], "_reconstruct shape");
        uint32_t a = make(Kind::NdArray);
        push(a);
        return;
      }
      case GlobalFn::DtypeType: {
        if (args.empty() || args.size() > 3)
          fail(fmt::format("dtype takes 1 to 3 arguments, got {}", args.size()));
        std::string ts =
            expect(args[0], Kind::Str, "dtype type string").text;  // copy: make() may reallocate
        uint32_t t = make(Kind::Dtype);
        obj(t).text = ts;
        obj(t).byteorder = '=';
        push(t);
        return;
      }
      case GlobalFn::Scalar: {
        need_args(2, "scalar");
        expect(args[0], Kind::Dtype, "scalar dtype");
        expect(args[1], Kind::Bytes, "scalar data");
        uint32_t s = make(Kind::Scalar);
        obj(s).dtype = args[0];
        obj(s).data = args[1];
        push(s);
        return;
      }
      case GlobalFn::FromBuffer: {
        need_args(4, "_frombuffer");
        expect(args[0], Kind::Bytes, "_frombuffer buffer");
        expect(args[1], Kind::Dtype, "_frombuffer dtype");
        std::vector<int64_t> shape = shape_of(args[2], "_frombuffer shape");
        const std::string order = expect(args[3], Kind::Str, "_frombuffer order").text;
        if (order != "C" && order != "F") fail("_frombuffer order must be 'C' or 'F'");
        uint32_t a = make(Kind::NdArray);
        Object& o = obj(a);
        o.built = true;
        o.shape = std::move(shape);
        o.fortran_order = order == "F";
        o.dtype = args[1];
        o.data = args[0];
        push(a);
        return;
      }
      case GlobalFn::CodecsEncode: {
        need_args(2, "_codecs.encode");
        const std::string& enc = expect(args[1], Kind::Str, "_codecs.encode encoding").text;
        if (enc != "latin1" && enc != "latin-1" && enc != "iso-8859-1")
          fail(fmt::format("_codecs.encode: encoding '{}' is not latin1", printable(enc)));
        std::string text = expect(args[0], Kind::Str, "_codecs.encode text").text;
        push(latin1_encode(text));
        return;
      }
      case GlobalFn::NdArrayType:
        fail("calling numpy.ndarray directly is not supported");
    }
    fail("unknown callable");
  }

  void build() {
    uint32_t state_i = pop();
    uint32_t target = top();
    Kind tk = doc_.objects[target].kind;
    if (tk == Kind::Dtype) {
      const std::vector<uint32_t> st = expect(state_i, Kind::Tuple, "dtype state").items;
      if (st.size() < 2) fail("dtype state needs at least 2 entries");
      const std::string& bo = expect(st[1], Kind::Str, "dtype byte order").text;
      if (bo.size() != 1 || std::strchr("<>|=", bo[0]) == nullptr)
        fail(fmt::format("dtype byte order '{}' is not one of < > | =", printable(bo)));
      for (size_t k = 2; k < st.size() && k < 5; ++k)
        if (doc_.objects[st[k]].kind != Kind::None)
          fail("structured or sub-array dtypes are not supported");
      obj(target).byteorder = bo[0];
      return;
    }
    if (tk == Kind::NdArray) {
      if (doc_.objects[target].built) fail("BUILD applied twice to one ndarray");
      const std::vector<uint32_t> st = expect(state_i, Kind::Tuple, "ndarray state").items;
      if (st.size() != 4 && st.size() != 5)
        fail(fmt::format("ndarray state must have 4 or 5 entries, got {}", st.size()));
      size_t k = st.size() == 5 ? 1 : 0;
      std::vector<int64_t> shape = shape_of(st[k], "ndarray shape");
      expect(st[k + 1], Kind::Dtype, "ndarray dtype");
      bool fortran = truth(st[k + 2], "ndarray fortran flag");
      Kind dk = doc_.objects[st[k + 3]].kind;
      if (dk != Kind::Bytes && dk != Kind::List)
        fail(fmt::format("ndarray data: expected bytes or list, got {}", kind_name(dk)));
      Object& o = obj(target);
      o.built = true;
      o.shape = std::move(shape);
      o.dtype = st[k + 1];
      o.fortran_order = fortran;
      o.data = st[k + 3];
      return;
    }
    fail(fmt::format("BUILD on a {} is not supported", kind_name(tk)));
  }

  // One opcode; returns true at STOP.
  bool step() {
    switch (op_) {
      case PROTO: {
        uint64_t v = read_le(1);
        if (v > 5) fail(fmt::format("unsupported pickle protocol {}", v));
        proto_ = static_cast<int>(v);
        return false;
      }
      case FRAME:
        read_le(8);
        return false;  // frames only group opcodes; the stream reads the same
      case STOP:
        if (stack_.size() != 1 || !marks_.empty())
          fail(fmt::format(
              "STOP with {} objects on the stack and {} open MARKs (expected exactly 1 and 0)",
              stack_.size(), marks_.size()));
        doc_.root = stack_.back();
        return true;
      case MARK:
        marks_.push_back(stack_.size());
        if (marks_.size() > lim_.max_stack) fail("too many MARKs");
        return false;
      case POP:
        pop();
        return false;
      case POP_MARK:
        pop_mark();
        return false;
      case DUP:
        push(top());
        return false;
      case NONE:
        push(make(Kind::None));
        return false;
      case NEWTRUE:
      case NEWFALSE: {
        uint32_t b = make(Kind::Bool);
        obj(b).boolean = op_ == NEWTRUE;
        push(b);
        return false;
      }
      case BININT:
        push(make_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4)))));
        return false;
      case BININT1:
        push(make_int(static_cast<int64_t>(read_le(1))));
        return false;
      case BININT2:
        push(make_int(static_cast<int64_t>(read_le(2))));
        return false;
      case LONG1:
      case LONG4: {
        uint64_t n = read_le(op_ == LONG1 ? 1 : 4);
        if (op_ == LONG4 && (n & 0x80000000u)) fail("negative LONG4 length");
        if (n > 8) fail(fmt::format("integer of {} bytes does not fit in 64 bits", n));
        const uint8_t* p = take(n);
        uint64_t v = 0;
        for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
        if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        push(make_int(static_cast<int64_t>(v)));
        return false;
      }
      case BINFLOAT: {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        double x;
        std::memcpy(&x, &bits, 8);
        uint32_t f = make(Kind::Float);
        obj(f).real = x;
        push(f);
        return false;
      }
      case SHORT_BINUNICODE: {
        uint64_t n = read_le(1);
        push(make_text(Kind::Str, take(n), n));
        return false;
      }
      case BINUNICODE: {
        uint64_t n = read_le(4);
        push(make_text(Kind::Str, take(n), n));
        return false;
      }
      case BINUNICODE8: {
        uint64_t n = read_le(8);
        push(make_text(Kind::Str, take(n), n));
        return false;
      }
      case SHORT_BINBYTES:
      case SHORT_BINSTRING: {
        uint64_t n = read_le(1);
        push(make_text(Kind::Bytes, take(n), n));
        return false;
      }
      case BINBYTES: {
        uint64_t n = read_le(4);
        push(make_text(Kind::Bytes, take(n), n));
        return false;
      }
      case BINSTRING: {
        uint64_t n = read_le(4);
        if (n & 0x80000000u) fail("negative BINSTRING length");
        push(make_text(Kind::Bytes, take(n), n));
        return false;
      }
      case BINBYTES8:
      case BYTEARRAY8: {
        uint64_t n = read_le(8);
        push(make_text(Kind::Bytes, take(n), n));
        return false;
      }
      case NEXT_BUFFER:
        fail("out-of-band buffers are not supported");
      case READONLY_BUFFER:
        expect(top(), Kind::Bytes, "READONLY_BUFFER operand");
        return false;
      case EMPTY_TUPLE:
        push(make_tuple({}));
        return false;
      case TUPLE:
        push(make_tuple(pop_mark()));
        return false;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        size_t n = static_cast<size_t>(op_ - TUPLE1 + 1);
        if (stack_.size() < floor() + n)
          fail(fmt::format("stack underflow (TUPLE{} needs {} items)", n, n));
        std::vector<uint32_t> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(make_tuple(std::move(items)));
        return false;
      }
      case EMPTY_LIST:
        push(make(Kind::List));
        return false;
      case APPEND: {
        uint32_t v = pop();
        uint32_t l = top();
        expect(l, Kind::List, "APPEND target");
        obj(l).items.push_back(v);
        return false;
      }
      case APPENDS: {
        std::vector<uint32_t> items = pop_mark();
        uint32_t l = top();
        expect(l, Kind::List, "APPENDS target");
        auto& dst = obj(l).items;
        dst.insert(dst.end(), items.begin(), items.end());
        return false;
      }
      case EMPTY_DICT:
        push(make(Kind::Dict));
        return false;
      case SETITEM: {
        uint32_t v = pop();
        uint32_t k = pop();
        uint32_t dct = top();
        expect(dct, Kind::Dict, "SETITEM target");
        obj(dct).items.push_back(k);
        obj(dct).items.push_back(v);
        return false;
      }
      case SETITEMS: {
        std::vector<uint32_t> items = pop_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        uint32_t dct = top();
        expect(dct, Kind::Dict, "SETITEMS target");
        auto& dst = obj(dct).items;
        dst.insert(dst.end(), items.begin(), items.end());
        return false;
      }
      case BINPUT:
        memo_put(read_le(1));
        return false;
      case LONG_BINPUT:
        memo_put(read_le(4));
        return false;
      case MEMOIZE:
        memo_put(memo_.size());
        return false;
      case BINGET:
        memo_get(read_le(1));
        return false;
      case LONG_BINGET:
        memo_get(read_le(4));
        return false;
      case GLOBAL: {
        std::string module = read_line();
        std::string name = read_line();
        push(make_global(module, name));
        return false;
      }
      case STACK_GLOBAL: {
        uint32_t n = pop();
        uint32_t m = pop();
        const std::string name = expect(n, Kind::Str, "STACK_GLOBAL name").text;
        const std::string module = expect(m, Kind::Str, "STACK_GLOBAL module").text;
        push(make_global(module, name));
        return false;
      }
      case REDUCE:
        reduce();
        return false;
      case BUILD:
        build();
        return false;
      default:
        fail("opcode not supported by this reader");
    }
  }
};

}  // namespace

std::string_view opcode_name(uint8_t op) {
  switch (op) {
    case MARK:
      return "MARK";
    case STOP:
      return "STOP";
    case POP:
      return "POP";
    case POP_MARK:
      return "POP_MARK";
    case DUP:
      return "DUP";
    case BININT:
      return "BININT";
    case BININT1:
      return "BININT1";
    case BININT2:
      return "BININT2";
    case NONE:
      return "NONE";
    case BINSTRING:
      return "BINSTRING";
    case SHORT_BINSTRING:
      return "SHORT_BINSTRING";
    case BINUNICODE:
      return "BINUNICODE";
    case APPEND:
      return "APPEND";
    case BUILD:
      return "BUILD";
    case GLOBAL:
      return "GLOBAL";
    case APPENDS:
      return "APPENDS";
    case BINGET:
      return "BINGET";
    case LONG_BINGET:
      return "LONG_BINGET";
    case BINPUT:
      return "BINPUT";
    case LONG_BINPUT:
      return "LONG_BINPUT";
    case SETITEM:
      return "SETITEM";
    case TUPLE:
      return "TUPLE";
    case SETITEMS:
      return "SETITEMS";
    case EMPTY_DICT:
      return "EMPTY_DICT";
    case EMPTY_LIST:
      return "EMPTY_LIST";
    case EMPTY_TUPLE:
      return "EMPTY_TUPLE";
    case REDUCE:
      return "REDUCE";
    case BINFLOAT:
      return "BINFLOAT";
    case BINBYTES:
      return "BINBYTES";
    case SHORT_BINBYTES:
      return "SHORT_BINBYTES";
    case PROTO:
      return "PROTO";
    case TUPLE1:
      return "TUPLE1";
    case TUPLE2:
      return "TUPLE2";
    case TUPLE3:
      return "TUPLE3";
    case NEWTRUE:
      return "NEWTRUE";
    case NEWFALSE:
      return "NEWFALSE";
    case LONG1:
      return "LONG1";
    case LONG4:
      return "LONG4";
    case SHORT_BINUNICODE:
      return "SHORT_BINUNICODE";
    case BINUNICODE8:
      return "BINUNICODE8";
    case BINBYTES8:
      return "BINBYTES8";
    case STACK_GLOBAL:
      return "STACK_GLOBAL";
    case MEMOIZE:
      return "MEMOIZE";
    case FRAME:
      return "FRAME";
    case BYTEARRAY8:
      return "BYTEARRAY8";
    case NEXT_BUFFER:
      return "NEXT_BUFFER";
    case READONLY_BUFFER:
      return "READONLY_BUFFER";
    default:
      return "unknown";
  }
}

Document load(std::span<const uint8_t> data, std::string_view source, size_t base_offset,
              const Limits& limits) {
  Machine m(data, source, base_offset, limits);
  return m.run();
}

}  // namespace halo::data::pickle
