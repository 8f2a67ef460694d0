// The layer shapes that ResNet-18, ResNet-26 and ConvNeXt-pico meet on a 1 x size x size input
// (../shared/reference/architectures.md), for the CUDA parity tests (batch 2) and the CUDA kernel
// benchmarks (batch 256), plus small odd shapes. Plain C++: no gtest, no CUDA.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/blas.h"
#include "kernels/conv.h"
#include "kernels/norm.h"
#include "kernels/pool.h"

namespace halo::test::shapes {

struct ConvCase {
  std::string model, name;  // name: the first layer with this shape, e.g. "layer2.0.conv1"
  kernels::Conv2dShape s;
  bool bias = false;
  int count = 1;  // layers of the model with this exact shape
};
struct NormCase {
  std::string model, name;
  kernels::NormShape s;
  int count = 1;
};
struct ChannelCase {  // per-channel ops on [n, c, hw]: layer scale, global pooling
  std::string model, name;
  int n, c, hw;
};
struct SizeCase {  // pointwise ops: ReLU, GELU, residual add
  std::string model, name;
  std::size_t n;
};
struct LinearCase {
  std::string model, name;
  kernels::LinearShape s;
};

struct ModelShapes {
  std::string model;
  std::vector<ConvCase> convs;
  std::vector<NormCase> batch_norms, layer_norms;
  std::vector<ChannelCase> layer_scales, global_pools;
  std::vector<SizeCase> relus, gelus, adds;
  std::vector<kernels::Pool2dShape> max_pools;
  std::vector<LinearCase> linears;
  std::vector<std::size_t> parameter_sizes;  // every parameter tensor, in model order
};

inline kernels::Conv2dShape conv_shape(int n, int c_in, int h, int c_out, int k, int stride,
                                       int pad, int groups = 1) {
  kernels::Conv2dShape s;
  s.n = n, s.c_in = c_in, s.h = h, s.w = h, s.c_out = c_out, s.kh = k, s.kw = k;
  s.stride = stride, s.pad = pad, s.groups = groups;
  return s;
}

inline bool same_shape(const kernels::Conv2dShape& a, const kernels::Conv2dShape& b) {
  return std::tie(a.n, a.c_in, a.h, a.w, a.c_out, a.kh, a.kw, a.stride, a.pad, a.groups) ==
         std::tie(b.n, b.c_in, b.h, b.w, b.c_out, b.kh, b.kw, b.stride, b.pad, b.groups);
}

// Collects layers, merging repeats of the same shape into one case with a count.
class Builder {
 public:
  Builder(std::string model, int n) : n_(n) { m_.model = std::move(model); }

  // A convolution (and, for ResNets, the batch norm and ReLU after it). Returns h_out.
  int conv(const std::string& name, int c_in, int h, int c_out, int k, int stride, int pad,
           int groups = 1, bool bias = false) {
    const auto s = conv_shape(n_, c_in, h, c_out, k, stride, pad, groups);
    bool seen = false;
    for (auto& c : m_.convs)
      if (same_shape(c.s, s) && c.bias == bias) {
        c.count++;
        seen = true;
        break;
      }
    if (!seen) m_.convs.push_back({m_.model, name, s, bias, 1});
    m_.parameter_sizes.push_back(std::size_t(s.w_size()));
    if (bias) m_.parameter_sizes.push_back(std::size_t(c_out));
    return s.h_out();
  }
  void batch_norm(const std::string& name, int c, int h) {
    add_norm(m_.batch_norms, name, c, h * h);
    m_.parameter_sizes.push_back(std::size_t(c));
    m_.parameter_sizes.push_back(std::size_t(c));
  }
  void layer_norm(const std::string& name, int c, int hw) {
    add_norm(m_.layer_norms, name, c, hw);
    m_.parameter_sizes.push_back(std::size_t(c));
    m_.parameter_sizes.push_back(std::size_t(c));
  }
  void relu(const std::string& name, int c, int h) { add_size(m_.relus, name, 1ULL * c * h * h); }
  void gelu(const std::string& name, int c, int h) { add_size(m_.gelus, name, 1ULL * c * h * h); }
  void add(const std::string& name, int c, int h) { add_size(m_.adds, name, 1ULL * c * h * h); }
  void layer_scale(const std::string& name, int c, int h) {
    m_.parameter_sizes.push_back(std::size_t(c));
    for (auto& e : m_.layer_scales)
      if (e.c == c && e.hw == h * h) return;
    m_.layer_scales.push_back({m_.model, name, n_, c, h * h});
  }
  void max_pool(int c, int h) {
    kernels::Pool2dShape p;
    p.n = n_, p.c = c, p.h = h, p.w = h, p.k = 3, p.stride = 2, p.pad = 1;
    m_.max_pools.push_back(p);
  }
  void global_pool(const std::string& name, int c, int hw) {
    m_.global_pools.push_back({m_.model, name, n_, c, hw});
  }
  void linear(const std::string& name, int in, int out) {
    kernels::LinearShape s;
    s.n = n_, s.in = in, s.out = out;
    m_.linears.push_back({m_.model, name, s});
    m_.parameter_sizes.push_back(std::size_t(in) * out);
    m_.parameter_sizes.push_back(std::size_t(out));
  }
  ModelShapes take() { return std::move(m_); }

 private:
  void add_norm(std::vector<NormCase>& v, const std::string& name, int c, int hw) {
    for (auto& e : v)
      if (e.s.c == c && e.s.hw == hw) {
        e.count++;
        return;
      }
    kernels::NormShape s;
    s.n = n_, s.c = c, s.hw = hw;
    v.push_back({m_.model, name, s, 1});
  }
  void add_size(std::vector<SizeCase>& v, const std::string& name, unsigned long long per_image) {
    const std::size_t n = std::size_t(per_image) * n_;
    for (auto& e : v)
      if (e.n == n) return;
    v.push_back({m_.model, name, n});
  }
  int n_;
  ModelShapes m_;
};

// timm resnet18 / resnet26 (in_chans 1): 7x7/2 stem, 3x3/2 max pool, four stages.
inline ModelShapes resnet(bool bottleneck, int n, int size = 150) {
  Builder b(bottleneck ? "resnet26" : "resnet18", n);
  int h = b.conv("conv1", 1, size, 64, 7, 2, 3);
  b.batch_norm("bn1", 64, h);
  b.relu("act1", 64, h);
  b.max_pool(64, h);
  h = (h + 2 - 3) / 2 + 1;
  int c_in = 64;
  for (int stage = 1; stage <= 4; ++stage) {
    const int width = 64 << (stage - 1), out = bottleneck ? 4 * width : width;
    const int stride = stage == 1 ? 1 : 2;
    for (int blk = 0; blk < 2; ++blk) {
      const std::string p = "layer" + std::to_string(stage) + "." + std::to_string(blk) + ".";
      const int s = blk == 0 ? stride : 1;
      int h2;
      if (!bottleneck) {
        h2 = b.conv(p + "conv1", c_in, h, width, 3, s, 1);
        b.batch_norm(p + "bn1", width, h2);
        b.relu(p + "act1", width, h2);
        b.conv(p + "conv2", width, h2, width, 3, 1, 1);
        b.batch_norm(p + "bn2", width, h2);
      } else {
        b.conv(p + "conv1", c_in, h, width, 1, 1, 0);
        b.batch_norm(p + "bn1", width, h);
        b.relu(p + "act1", width, h);
        h2 = b.conv(p + "conv2", width, h, width, 3, s, 1);
        b.batch_norm(p + "bn2", width, h2);
        b.relu(p + "act2", width, h2);
        b.conv(p + "conv3", width, h2, out, 1, 1, 0);
        b.batch_norm(p + "bn3", out, h2);
      }
      if (s != 1 || c_in != out) {
        b.conv(p + "downsample.0", c_in, h, out, 1, s, 0);
        b.batch_norm(p + "downsample.1", out, h2);
      }
      b.add(p + "add", out, h2);
      b.relu(p + "act_out", out, h2);
      c_in = out;
      h = h2;
    }
  }
  b.global_pool("global_pool", c_in, h * h);
  b.linear("fc", c_in, 1);
  return b.take();
}

// timm convnext_pico (conv_mlp): 4x4/4 patch stem + LayerNorm2d, stages (2, 2, 6, 2) of
// (64, 128, 256, 512) channels, LayerNorm + 2x2/2 downsampling between stages.
inline ModelShapes convnext_pico(int n, int size = 150) {
  Builder b("convnext_pico", n);
  int h = b.conv("stem.0", 1, size, 64, 4, 4, 0, 1, true);
  b.layer_norm("stem.1", 64, h * h);
  const int dims[4] = {64, 128, 256, 512}, depths[4] = {2, 2, 6, 2};
  int c = 64;
  for (int st = 0; st < 4; ++st) {
    const std::string ps = "stages." + std::to_string(st) + ".";
    if (st > 0) {
      b.layer_norm(ps + "downsample.0", c, h * h);
      h = b.conv(ps + "downsample.1", c, h, dims[st], 2, 2, 0, 1, true);
      c = dims[st];
    }
    for (int blk = 0; blk < depths[st]; ++blk) {
      const std::string p = ps + "blocks." + std::to_string(blk) + ".";
      b.layer_scale(p + "gamma", c, h);
      b.conv(p + "conv_dw", c, h, c, 7, 1, 3, c, true);
      b.layer_norm(p + "norm", c, h * h);
      b.conv(p + "mlp.fc1", c, h, 4 * c, 1, 1, 0, 1, true);
      b.gelu(p + "mlp.act", 4 * c, h);
      b.conv(p + "mlp.fc2", 4 * c, h, c, 1, 1, 0, 1, true);
      b.add(p + "add", c, h);
    }
  }
  b.global_pool("head.global_pool", c, h * h);
  b.layer_norm("head.norm", c, 1);
  b.linear("head.fc", c, 1);
  return b.take();
}

inline std::vector<ModelShapes> all_models(int n, int size = 150) {
  return {resnet(false, n, size), resnet(true, n, size), convnext_pico(n, size)};
}

// Odd convolution shapes: every size from {1, 3, 7, 37} somewhere, batch 1, all kernel sizes,
// strides, pads and group counts, including depthwise with kernels the dedicated CUDA path
// specialises (3x3, 7x7) and ones it does not (1x1, 5x5, 3x1), and dense ones where the
// implicit GEMM's tiles are mostly padding. Each with and without bias.
inline std::vector<ConvCase> odd_conv_cases() {
  struct R {
    const char* name;
    int c_in, h, w, c_out, kh, kw, stride, pad, groups;
  };
  const R rows[] = {
      {"all1", 1, 1, 1, 1, 1, 1, 1, 0, 1},
      {"c3_h1_k3_pad1", 3, 1, 1, 7, 3, 3, 1, 1, 1},
      {"c7_h3_k3_s2_pad2", 7, 3, 3, 3, 3, 3, 2, 2, 1},
      {"c1_h37_k7_s2_pad3", 1, 37, 37, 37, 7, 7, 2, 3, 1},
      {"c37_h7_k3", 37, 7, 7, 37, 3, 3, 1, 1, 1},
      {"c37_h37_k1", 37, 37, 37, 3, 1, 1, 1, 0, 1},
      {"c3_h37x7_k3x1_s3", 3, 37, 7, 7, 3, 1, 3, 0, 1},
      {"c7_h7_k7_valid", 7, 7, 7, 1, 7, 7, 1, 0, 1},
      {"c3_h37_k4_s4", 3, 37, 37, 7, 4, 4, 4, 0, 1},
      {"c37_h7_k2_s2", 37, 7, 7, 3, 2, 2, 2, 0, 1},
      {"c37_h3_k1_s2", 37, 3, 3, 37, 1, 1, 2, 0, 1},
      {"grouped_c6_c9_g3", 6, 7, 7, 9, 3, 3, 1, 1, 3},
      {"grouped_mult2_c3_c6_g3", 3, 7, 7, 6, 3, 3, 2, 1, 3},
      {"dw_c1_h37_k7", 1, 37, 37, 1, 7, 7, 1, 3, 1},
      {"dw_c3_h7_k7", 3, 7, 7, 3, 7, 7, 1, 3, 3},
      {"dw_c37_h37_k7", 37, 37, 37, 37, 7, 7, 1, 3, 37},
      {"dw_c7_h1_k7", 7, 1, 1, 7, 7, 7, 1, 3, 7},
      {"dw_c7_h37_k3_s2", 7, 37, 37, 7, 3, 3, 2, 1, 7},
      {"dw_c37_h7_k5_s3_pad2", 37, 7, 7, 37, 5, 5, 3, 2, 37},
      {"dw_c3_h37x7_k3x1", 3, 37, 7, 3, 3, 1, 1, 1, 3},
      {"dw_c37_h3_k1", 37, 3, 3, 37, 1, 1, 1, 0, 37},
      {"wide_c37_to_131_h37", 37, 37, 37, 131, 3, 3, 1, 1, 1},  // M > 128: two row tiles
      {"deep_k_c131_h7", 131, 7, 7, 37, 3, 3, 1, 1, 1},         // K = 1179, not a multiple of 8
  };
  std::vector<ConvCase> v;
  bool bias = false;
  for (const R& r : rows) {
    kernels::Conv2dShape s;
    s.n = 1, s.c_in = r.c_in, s.h = r.h, s.w = r.w, s.c_out = r.c_out, s.kh = r.kh, s.kw = r.kw;
    s.stride = r.stride, s.pad = r.pad, s.groups = r.groups;
    v.push_back({"odd", r.name, s, bias, 1});
    bias = !bias;
  }
  // Several images of few channels: the depthwise weight gradient splits the batch over blocks
  // and sums the splits (a launcher branch no model shape reaches at batch 2 on a small device).
  kernels::Conv2dShape s;
  s.n = 5, s.c_in = 3, s.h = 9, s.w = 9, s.c_out = 3, s.kh = 7, s.kw = 7;
  s.stride = 1, s.pad = 3, s.groups = 3;
  v.push_back({"odd", "dw_n5_c3_h9_k7", s, true, 1});
  return v;
}

// Odd [n, c, hw] shapes for the norms and per-channel ops: batch 1, sizes 1, 3, 7, 37.
inline std::vector<NormCase> odd_norm_cases() {
  std::vector<NormCase> v;
  for (int c : {1, 3, 7, 37})
    for (int h : {1, 3, 7, 37}) {
      kernels::NormShape s;
      s.n = 1, s.c = c, s.hw = h * h;
      std::string name = "c";  // (built in steps: GCC 12 warns falsely on a + b + c here)
      name += std::to_string(c);
      name += "_h";
      name += std::to_string(h);
      v.push_back({"odd", name, s, 1});
    }
  kernels::NormShape s;
  s.n = 3, s.c = 7, s.hw = 37;  // several images: the per-channel index wraps across images
  v.push_back({"odd", "n3_c7_hw37", s, 1});
  s.n = 2, s.c = 3, s.hw = 37 * 37;  // 2738 values per channel: split over 2 blocks per channel
  v.push_back({"odd", "n2_c3_h37", s, 1});
  return v;
}

// Readable parameters in gtest's listings and failure messages (found by argument-dependent
// lookup).
inline void PrintTo(const ConvCase& c, std::ostream* os) {
  const auto& s = c.s;
  *os << c.model << "/" << c.name << " n=" << s.n << " " << s.c_in << "x" << s.h << "x" << s.w
      << " -> " << s.c_out << " k=" << s.kh << "x" << s.kw << " stride=" << s.stride
      << " pad=" << s.pad << " groups=" << s.groups << (c.bias ? " bias" : "");
}
inline void PrintTo(const NormCase& c, std::ostream* os) {
  *os << c.model << "/" << c.name << " n=" << c.s.n << " c=" << c.s.c << " hw=" << c.s.hw;
}

}  // namespace halo::test::shapes
