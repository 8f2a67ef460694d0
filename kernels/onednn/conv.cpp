// oneDNN (2.x API) convolutions on plain NCHW float32 memory: the CPU's vendor path beside Halo's
// own kernels/cpu/conv.cpp, as cuDNN stands beside kernels/cuda/conv.cu. The caller's tensors stay
// NCHW / OIHW; oneDNN picks its own blocked layouts (format_tag::any) and the reorders to and from
// them happen here, planned once per shape and cached with the primitives.
#include "kernels/conv.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "kernels/onednn/settings.h"

namespace halo::kernels::onednn {

bool available() {
  return true;
}

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

std::string describe(const Conv2dShape& s) {
  return "(n=" + std::to_string(s.n) + " c_in=" + std::to_string(s.c_in) +
         " h=" + std::to_string(s.h) + " w=" + std::to_string(s.w) +
         " c_out=" + std::to_string(s.c_out) + " kh=" + std::to_string(s.kh) +
         " kw=" + std::to_string(s.kw) + " stride=" + std::to_string(s.stride) +
         " pad=" + std::to_string(s.pad) + " groups=" + std::to_string(s.groups) + ")";
}

// The same checks as kernels/cpu/conv.cpp, so both paths refuse the same shapes the same way.
void check_shape(const Conv2dShape& s, const char* fn) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument(std::string("kernels/onednn/conv.cpp: ") + fn + ": " + what + " " +
                                describe(s));
  };
  if (s.n < 1 || s.c_in < 1 || s.h < 1 || s.w < 1 || s.c_out < 1 || s.kh < 1 || s.kw < 1)
    fail("every size must be >= 1");
  if (s.stride < 1) fail("stride must be >= 1");
  if (s.pad < 0) fail("pad must be >= 0");
  if (s.groups < 1 || s.c_in % s.groups != 0 || s.c_out % s.groups != 0)
    fail("groups must divide c_in and c_out");
  if (s.h + 2 * s.pad < s.kh || s.w + 2 * s.pad < s.kw) fail("kernel larger than the padded input");
}

enum class Pass { forward, forward_bias, backward_data, backward_weight };

using Key = std::tuple<int, int, int, int, int, int, int, int, int, int, Pass>;
Key key_of(const Conv2dShape& s, Pass p) {
  return {s.n, s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, s.stride, s.pad, s.groups, p};
}

// A 64-byte aligned buffer that only grows: the blocked copies of the tensors and the primitives'
// scratchpads live in a few of these, shared by every shape, so once the largest layer of a model
// has run, a training step allocates no tensor memory here.
class GrowBuffer {
 public:
  void* get(std::size_t bytes) {
    if (bytes > size_) {
      const std::size_t rounded = (bytes + 63) / 64 * 64;
      data_.reset(std::aligned_alloc(64, rounded));
      if (!data_) throw std::bad_alloc();
      size_ = rounded;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> data_;
  std::size_t size_ = 0;
};

// Which GrowBuffer a blocked operand uses: each operand of a pass has its own, and a pass runs
// alone (under the mutex), so one set serves every shape and pass.
enum Slot { kIn0, kIn1, kIn2, kOut, kScratchpad, kSlots };

// One argument of the convolution primitive: the caller's plain memory and, where oneDNN chose a
// different layout, the blocked memory the primitive sees and the reorder between the two.
struct Operand {
  int arg = 0;          // DNNL_ARG_SRC, ...
  bool output = false;  // reordered from blocked to plain after the primitive, not before
  Slot slot = kIn0;
  memory user;                           // the caller's pointer, set on every call
  memory blocked;                        // == user when no reorder is needed
  std::optional<dnnl::reorder> reorder;  // user -> blocked (inputs) or blocked -> user (output)
  std::unordered_map<int, memory> reorder_args;
};

// Everything one (shape, pass) needs, made on its first call: the primitive, the operands with
// their reorders, and the argument maps, which hold the memory objects by handle, so a call only
// points them at the caller's and the scratch buffers (set_data_handle) and executes.
struct Plan {
  dnnl::primitive primitive;
  std::vector<Operand> operands;
  memory scratchpad;
  std::unordered_map<int, memory> args;
};

struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<Key, Plan> plans;
  GrowBuffer buffers[kSlots];
};

// The cache and the buffers are shared: calls come from one thread in Halo, but a mutex keeps two
// threads from reusing the same scratch buffers at once.
std::mutex g_mutex;
Context& context() {
  static Context c;  // the engine is made on first use, not at program start
  return c;
}

memory::dims dims4(int a, int b, int c, int d) {
  return {a, b, c, d};
}

// The caller's weight layout: OIHW, or for groups > 1 the same memory seen as
// [groups, c_out/groups, c_in/groups, kh, kw] (GOIHW), which is how oneDNN takes grouped weights.
memory::desc plain_weights(const Conv2dShape& s, dt type = dt::f32) {
  if (s.groups == 1) return {dims4(s.c_out, s.c_in, s.kh, s.kw), type, tag::oihw};
  return {{s.groups, s.c_out_per_group(), s.c_in_per_group(), s.kh, s.kw}, type, tag::goihw};
}
memory::desc any_weights(const Conv2dShape& s) {
  if (s.groups == 1) return {dims4(s.c_out, s.c_in, s.kh, s.kw), dt::f32, tag::any};
  return {{s.groups, s.c_out_per_group(), s.c_in_per_group(), s.kh, s.kw}, dt::f32, tag::any};
}
memory::desc plain_x(const Conv2dShape& s) {
  return {dims4(s.n, s.c_in, s.h, s.w), dt::f32, tag::nchw};
}
memory::desc plain_y(const Conv2dShape& s) {
  return {dims4(s.n, s.c_out, s.h_out(), s.w_out()), dt::f32, tag::nchw};
}
memory::desc any_x(const Conv2dShape& s) {
  return {dims4(s.n, s.c_in, s.h, s.w), dt::f32, tag::any};
}
memory::desc any_y(const Conv2dShape& s) {
  return {dims4(s.n, s.c_out, s.h_out(), s.w_out()), dt::f32, tag::any};
}

// Halo's h_out = (h + 2 pad - kh) / stride + 1 rounds down; oneDNN checks
// (h - kh + pad_l + pad_r) / stride + 1 == h_out with the same rounding, so pad_r = pad agrees
// (the rows a stride skips at the bottom/right are never read, as in Halo's kernels).
memory::dims strides(const Conv2dShape& s) {
  return {s.stride, s.stride};
}
memory::dims padding(const Conv2dShape& s) {
  return {s.pad, s.pad};
}

// The user scratchpad mode: oneDNN would otherwise own a scratchpad per primitive; here they share
// one grow-only buffer.
dnnl::primitive_attr attributes() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

// The forward descriptor; also the hint the backward passes are made from (oneDNN picks matching
// implementations and layouts for the three passes of one layer).
dnnl::convolution_forward::primitive_desc forward_pd(Context& c, const Conv2dShape& s, bool bias) {
  const auto prop = dnnl::prop_kind::forward_training;
  const auto alg = dnnl::algorithm::convolution_direct;
  if (bias) {
    const memory::desc b({s.c_out}, dt::f32, tag::any);
    return {{prop, alg, any_x(s), any_weights(s), b, any_y(s), strides(s), padding(s), padding(s)},
            attributes(),
            c.engine};
  }
  return {{prop, alg, any_x(s), any_weights(s), any_y(s), strides(s), padding(s), padding(s)},
          attributes(),
          c.engine};
}

// An operand whose caller-side layout is `plain` and whose primitive-side layout oneDNN chose
// (`chosen`): a reorder when they differ.
Operand make_operand(Context& c, int arg, const memory::desc& plain, const memory::desc& chosen,
                     Slot slot, bool output) {
  Operand o;
  o.arg = arg;
  o.output = output;
  o.slot = slot;
  o.user = memory(plain, c.engine, DNNL_MEMORY_NONE);
  if (chosen == plain) {
    o.blocked = o.user;
    return o;
  }
  o.blocked = memory(chosen, c.engine, DNNL_MEMORY_NONE);
  if (output) {
    o.reorder = dnnl::reorder(o.blocked, o.user);
    o.reorder_args = {{DNNL_ARG_FROM, o.blocked}, {DNNL_ARG_TO, o.user}};
  } else {
    o.reorder = dnnl::reorder(o.user, o.blocked);
    o.reorder_args = {{DNNL_ARG_FROM, o.user}, {DNNL_ARG_TO, o.blocked}};
  }
  return o;
}

Plan finish(Context& c, dnnl::primitive prim, const memory::desc& scratchpad,
            std::vector<Operand> operands) {
  Plan p;
  p.primitive = std::move(prim);
  p.operands = std::move(operands);
  p.scratchpad = memory(scratchpad, c.engine, DNNL_MEMORY_NONE);
  for (const Operand& o : p.operands) p.args.emplace(o.arg, o.blocked);
  p.args.emplace(DNNL_ARG_SCRATCHPAD, p.scratchpad);
  return p;
}

Plan make_plan(Context& c, const Conv2dShape& s, Pass pass) {
  const bool bias = pass == Pass::forward_bias;
  const auto fwd = forward_pd(c, s, bias);
  const auto alg = dnnl::algorithm::convolution_direct;
  switch (pass) {
    case Pass::forward:
    case Pass::forward_bias: {
      std::vector<Operand> ops;
      ops.push_back(make_operand(c, DNNL_ARG_SRC, plain_x(s), fwd.src_desc(), kIn0, false));
      ops.push_back(
          make_operand(c, DNNL_ARG_WEIGHTS, plain_weights(s), fwd.weights_desc(), kIn1, false));
      if (bias) {
        const memory::desc b({s.c_out}, dt::f32, tag::x);
        ops.push_back(make_operand(c, DNNL_ARG_BIAS, b, fwd.bias_desc(), kIn2, false));
      }
      ops.push_back(make_operand(c, DNNL_ARG_DST, plain_y(s), fwd.dst_desc(), kOut, true));
      return finish(c, dnnl::convolution_forward(fwd), fwd.scratchpad_desc(), std::move(ops));
    }
    case Pass::backward_data: {
      const dnnl::convolution_backward_data::primitive_desc pd(
          {alg, any_x(s), any_weights(s), any_y(s), strides(s), padding(s), padding(s)},
          attributes(), c.engine, fwd);
      std::vector<Operand> ops;
      ops.push_back(
          make_operand(c, DNNL_ARG_DIFF_DST, plain_y(s), pd.diff_dst_desc(), kIn0, false));
      ops.push_back(
          make_operand(c, DNNL_ARG_WEIGHTS, plain_weights(s), pd.weights_desc(), kIn1, false));
      ops.push_back(make_operand(c, DNNL_ARG_DIFF_SRC, plain_x(s), pd.diff_src_desc(), kOut, true));
      return finish(c, dnnl::convolution_backward_data(pd), pd.scratchpad_desc(), std::move(ops));
    }
    case Pass::backward_weight: {
      const dnnl::convolution_backward_weights::primitive_desc pd(
          {alg, any_x(s), any_weights(s), any_y(s), strides(s), padding(s), padding(s)},
          attributes(), c.engine, fwd);
      std::vector<Operand> ops;
      ops.push_back(make_operand(c, DNNL_ARG_SRC, plain_x(s), pd.src_desc(), kIn0, false));
      ops.push_back(
          make_operand(c, DNNL_ARG_DIFF_DST, plain_y(s), pd.diff_dst_desc(), kIn1, false));
      ops.push_back(make_operand(c, DNNL_ARG_DIFF_WEIGHTS, plain_weights(s), pd.diff_weights_desc(),
                                 kOut, true));
      return finish(c, dnnl::convolution_backward_weights(pd), pd.scratchpad_desc(),
                    std::move(ops));
    }
  }
  throw std::logic_error("unknown convolution pass");
}

// Runs one pass: plan (first call of a shape) or look up, point the memory objects at the
// caller's pointers (in the order of the plan's operands) and at the scratch buffers, reorder the
// inputs into oneDNN's layouts, convolve, reorder the output back.
void run(const char* fn, const Conv2dShape& s, Pass pass, std::initializer_list<const void*> ptrs) {
  check_shape(s, fn);
  try {
    std::lock_guard<std::mutex> lock(g_mutex);
    Context& c = context();
    const Key key = key_of(s, pass);
    auto it = c.plans.find(key);
    if (it == c.plans.end()) it = c.plans.emplace(key, make_plan(c, s, pass)).first;
    Plan& p = it->second;

    auto ptr = ptrs.begin();
    for (Operand& o : p.operands) {
      // oneDNN's memory handles are non-const; inputs are only read.
      o.user.set_data_handle(const_cast<void*>(*ptr++));
      if (o.reorder)
        o.blocked.set_data_handle(c.buffers[o.slot].get(o.blocked.get_desc().get_size()), c.stream);
    }
    p.scratchpad.set_data_handle(c.buffers[kScratchpad].get(p.scratchpad.get_desc().get_size()));

    for (Operand& o : p.operands)
      if (o.reorder && !o.output) o.reorder->execute(c.stream, o.reorder_args);
    p.primitive.execute(c.stream, p.args);
    for (Operand& o : p.operands)
      if (o.reorder && o.output) o.reorder->execute(c.stream, o.reorder_args);
    c.stream.wait();
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string("kernels/onednn/conv.cpp: ") + fn +
                             ": oneDNN error: " + e.what() + " " + describe(s));
  }
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  if (bias)
    run("conv2d_forward", s, Pass::forward_bias, {x, w, bias, y});
  else
    run("conv2d_forward", s, Pass::forward, {x, w, y});
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  run("conv2d_backward_data", s, Pass::backward_data, {dy, w, dx});
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  run("conv2d_backward_weight", s, Pass::backward_weight, {x, dy, dw});
}

}  // namespace halo::kernels::onednn
