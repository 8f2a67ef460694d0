// cuDNN convolution (kernels/conv.h, namespace cudnn): forward, backward-data, backward-filter
// and bias, through the classic cudnnConvolution* API (still present in cuDNN 9). Per shape, a
// plan holds the descriptors and, per direction, the algorithm chosen the first time that
// direction runs (heuristic or timed, see settings.h) under the workspace limit and the TF32
// policy; afterwards a call is descriptor-free: set the math type, run.
#include "kernels/conv.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cudnn/context.h"
#include "kernels/cudnn/settings.h"

namespace halo::kernels::cudnn {

namespace {

void check_shape(const Conv2dShape& s, const char* fn) {
  if (s.n < 1 || s.c_in < 1 || s.h < 1 || s.w < 1 || s.c_out < 1 || s.kh < 1 || s.kw < 1 ||
      s.stride < 1 || s.pad < 0 || s.groups < 1 || s.c_in % s.groups != 0 ||
      s.c_out % s.groups != 0 || s.h + 2 * s.pad < s.kh || s.w + 2 * s.pad < s.kw)
    throw std::invalid_argument(
        std::string("kernels/cudnn/conv.cpp: ") + fn +
        ": bad convolution shape (n=" + std::to_string(s.n) + " c_in=" + std::to_string(s.c_in) +
        " h=" + std::to_string(s.h) + " w=" + std::to_string(s.w) +
        " c_out=" + std::to_string(s.c_out) + " kh=" + std::to_string(s.kh) +
        " kw=" + std::to_string(s.kw) + " stride=" + std::to_string(s.stride) +
        " pad=" + std::to_string(s.pad) + " groups=" + std::to_string(s.groups) + ")");
}

std::string shape_string(const Conv2dShape& s) {
  return "n=" + std::to_string(s.n) + " c_in=" + std::to_string(s.c_in) + " " +
         std::to_string(s.h) + "x" + std::to_string(s.w) + " c_out=" + std::to_string(s.c_out) +
         " k=" + std::to_string(s.kh) + "x" + std::to_string(s.kw) +
         " stride=" + std::to_string(s.stride) + " pad=" + std::to_string(s.pad) +
         " groups=" + std::to_string(s.groups);
}

struct Choice {
  bool ready = false;
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  std::size_t workspace = 0;
};

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Choice fwd, bwd_data, bwd_filter;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {  // statuses ignored: nothing useful to do with a failure in a destructor
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

// Shape, device and every setting that changes the algorithm choice.
struct PlanKey {
  int v[10];
  int device;
  bool tf32, exact;
  int search;
  std::size_t limit;
  auto operator<=>(const PlanKey&) const = default;
};

std::map<PlanKey, std::unique_ptr<Plan>>& plans() {
  static auto* m = new std::map<PlanKey, std::unique_ptr<Plan>>();  // leaked on purpose
  return *m;
}

Plan& plan_for(const Conv2dShape& s) {
  int dev = 0;
  HALO_CUDA_CHECK(cudaGetDevice(&dev));
  const PlanKey key{{s.n, s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, s.stride, s.pad, s.groups},
                    dev,
                    conv_tf32(),
                    conv_exact_algorithms(),
                    int(conv_algo_search()),
                    workspace_limit()};
  auto& m = plans();
  auto it = m.find(key);
  if (it != m.end()) return *it->second;
  auto p = std::make_unique<Plan>();
  HALO_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  HALO_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  HALO_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias));
  HALO_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  HALO_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
  HALO_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.n, s.c_in, s.h, s.w));
  HALO_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.n,
                                              s.c_out, s.h_out(), s.w_out()));
  HALO_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s.c_out, 1, 1));
  HALO_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.c_out,
                                              s.c_in_per_group(), s.kh, s.kw));
  HALO_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, s.pad, s.pad, s.stride, s.stride, 1, 1,
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  HALO_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, s.groups));
  int on = 0, oc = 0, oh = 0, ow = 0;
  HALO_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow));
  if (on != s.n || oc != s.c_out || oh != s.h_out() || ow != s.w_out())
    throw std::logic_error("kernels/cudnn/conv.cpp: cuDNN's output size " + std::to_string(oh) +
                           "x" + std::to_string(ow) + " differs from Halo's for " +
                           shape_string(s));
  Plan& ref = *p;
  m.emplace(key, std::move(p));
  return ref;
}

// The algorithms that add the products directly (no FFT, no Winograd transforms).
bool exact_algo(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}
bool exact_algo(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
bool exact_algo(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

// Walks cuDNN's candidate list (best first) and keeps the first that succeeded, obeys the
// settings and whose workspace, queried again under the math type we will really run it with,
// fits the limit. With TF32 off the math type is CUDNN_FMA_MATH (no tensor-core TF32) and
// candidates that need tensor-op math are skipped; with TF32 on we take cuDNN's math type.
// `workspace_size(algo)` queries the size for the descriptor's current math type.
template <class Perf, class WorkspaceSize>
Choice choose(Plan& p, const std::vector<Perf>& perf, int returned, WorkspaceSize workspace_size,
              const char* what, const Conv2dShape& s) {
  const bool tf32 = conv_tf32(), exact = conv_exact_algorithms();
  const std::size_t limit = workspace_limit();
  for (int i = 0; i < returned; ++i) {
    const Perf& c = perf[i];
    if (c.status != CUDNN_STATUS_SUCCESS) continue;
    if (exact && !exact_algo(c.algo)) continue;
    if (!tf32 && c.mathType == CUDNN_TENSOR_OP_MATH) continue;
    const cudnnMathType_t math = tf32 ? c.mathType : CUDNN_FMA_MATH;
    if (cudnnSetConvolutionMathType(p.conv, math) != CUDNN_STATUS_SUCCESS) continue;
    std::size_t bytes = 0;
    if (workspace_size(c.algo, &bytes) != CUDNN_STATUS_SUCCESS) continue;
    if (bytes > limit) continue;
    Choice ch;
    ch.ready = true;
    ch.algo = int(c.algo);
    ch.math = math;
    ch.workspace = bytes;
    return ch;
  }
  throw std::runtime_error(std::string("kernels/cudnn/conv.cpp: no cuDNN ") + what +
                           " algorithm fits (workspace limit " + std::to_string(limit) +
                           " bytes, tf32 " + (tf32 ? "on" : "off") + ", exact-only " +
                           (exact ? "on" : "off") + ") for " + shape_string(s));
}

// The math type cuDNN may use while it times candidates (benchmark search).
cudnnMathType_t search_math() {
  return conv_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

void choose_forward(Context& c, Plan& p, const Conv2dShape& s, const float* x, const float* w,
                    float* y) {
  int max_count = 0;
  HALO_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(c.cudnn, &max_count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(std::size_t(std::max(max_count, 1)));
  int returned = 0;
  HALO_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, search_math()));
  if (conv_algo_search() == ConvAlgoSearch::benchmark) {
    const std::size_t limit = workspace_limit();
    void* ws = workspace(c, limit);
    HALO_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
        c.cudnn, p.x, x, p.w, w, p.conv, p.y, y, max_count, &returned, perf.data(), ws, limit));
  } else {
    HALO_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(c.cudnn, p.x, p.w, p.conv, p.y,
                                                            max_count, &returned, perf.data()));
  }
  p.fwd = choose(
      p, perf, returned,
      [&](cudnnConvolutionFwdAlgo_t a, std::size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(c.cudnn, p.x, p.w, p.conv, p.y, a, bytes);
      },
      "forward", s);
}

void choose_backward_data(Context& c, Plan& p, const Conv2dShape& s, const float* dy,
                          const float* w, float* dx) {
  int max_count = 0;
  HALO_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(c.cudnn, &max_count));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(std::size_t(std::max(max_count, 1)));
  int returned = 0;
  HALO_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, search_math()));
  if (conv_algo_search() == ConvAlgoSearch::benchmark) {
    const std::size_t limit = workspace_limit();
    void* ws = workspace(c, limit);
    HALO_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
        c.cudnn, p.w, w, p.y, dy, p.conv, p.x, dx, max_count, &returned, perf.data(), ws, limit));
  } else {
    HALO_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        c.cudnn, p.w, p.y, p.conv, p.x, max_count, &returned, perf.data()));
  }
  p.bwd_data = choose(
      p, perf, returned,
      [&](cudnnConvolutionBwdDataAlgo_t a, std::size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(c.cudnn, p.w, p.y, p.conv, p.x, a,
                                                            bytes);
      },
      "backward-data", s);
}

void choose_backward_filter(Context& c, Plan& p, const Conv2dShape& s, const float* x,
                            const float* dy, float* dw) {
  int max_count = 0;
  HALO_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(c.cudnn, &max_count));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(std::size_t(std::max(max_count, 1)));
  int returned = 0;
  HALO_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, search_math()));
  if (conv_algo_search() == ConvAlgoSearch::benchmark) {
    const std::size_t limit = workspace_limit();
    void* ws = workspace(c, limit);
    HALO_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        c.cudnn, p.x, x, p.y, dy, p.conv, p.w, dw, max_count, &returned, perf.data(), ws, limit));
  } else {
    HALO_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        c.cudnn, p.x, p.y, p.conv, p.w, max_count, &returned, perf.data()));
  }
  p.bwd_filter = choose(
      p, perf, returned,
      [&](cudnnConvolutionBwdFilterAlgo_t a, std::size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(c.cudnn, p.x, p.y, p.conv, p.w, a,
                                                              bytes);
      },
      "backward-filter", s);
}

const float kOne = 1.0f, kZero = 0.0f;

}  // namespace

void clear_conv_plans() {
  auto lock = lock_library();
  plans().clear();
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, void* stream) {
  check_shape(s, "conv2d_forward");
  auto lock = lock_library();
  Context& c = context(static_cast<cudaStream_t>(stream));
  Plan& p = plan_for(s);
  if (!p.fwd.ready) choose_forward(c, p, s, x, w, y);
  HALO_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.fwd.math));
  void* ws = workspace(c, p.fwd.workspace);
  HALO_CUDNN_CHECK(cudnnConvolutionForward(c.cudnn, &kOne, p.x, x, p.w, w, p.conv,
                                           cudnnConvolutionFwdAlgo_t(p.fwd.algo), ws,
                                           p.fwd.workspace, &kZero, p.y, y));
  if (bias) HALO_CUDNN_CHECK(cudnnAddTensor(c.cudnn, &kOne, p.bias, bias, &kOne, p.y, y));
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          void* stream) {
  check_shape(s, "conv2d_backward_data");
  auto lock = lock_library();
  Context& c = context(static_cast<cudaStream_t>(stream));
  Plan& p = plan_for(s);
  if (!p.bwd_data.ready) choose_backward_data(c, p, s, dy, w, dx);
  HALO_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.bwd_data.math));
  void* ws = workspace(c, p.bwd_data.workspace);
  HALO_CUDNN_CHECK(cudnnConvolutionBackwardData(c.cudnn, &kOne, p.w, w, p.y, dy, p.conv,
                                                cudnnConvolutionBwdDataAlgo_t(p.bwd_data.algo), ws,
                                                p.bwd_data.workspace, &kZero, p.x, dx));
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            void* stream) {
  check_shape(s, "conv2d_backward_weight");
  auto lock = lock_library();
  Context& c = context(static_cast<cudaStream_t>(stream));
  Plan& p = plan_for(s);
  if (!p.bwd_filter.ready) choose_backward_filter(c, p, s, x, dy, dw);
  HALO_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.bwd_filter.math));
  void* ws = workspace(c, p.bwd_filter.workspace);
  HALO_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      c.cudnn, &kOne, p.x, x, p.y, dy, p.conv, cudnnConvolutionBwdFilterAlgo_t(p.bwd_filter.algo),
      ws, p.bwd_filter.workspace, &kZero, p.w, dw));
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db, void* stream) {
  check_shape(s, "conv2d_backward_bias");
  auto lock = lock_library();
  Context& c = context(static_cast<cudaStream_t>(stream));
  Plan& p = plan_for(s);
  HALO_CUDNN_CHECK(cudnnConvolutionBackwardBias(c.cudnn, &kOne, p.y, dy, &kZero, p.bias, db));
}

}  // namespace halo::kernels::cudnn
