// halo::plot implementation: the canvas (coverage-based anti-aliasing: a pixel's opacity is the
// part of it that the shape covers, estimated from its centre's distance to the shape's edge), the
// bitmap-font text renderer, PNG input/output through libpng's simplified API, tick placement and
// the two chart layouts.
#include "apps/support/plot.h"

#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>

#include "apps/support/font.h"

namespace halo::plot {

Color palette(size_t i) {
  static constexpr Color kCycle[] = {kBlue,  kOrange, kGreen, kRed,   kPurple,
                                     kBrown, kPink,   kGrey,  kOlive, kCyan};
  return kCycle[i % (sizeof(kCycle) / sizeof(kCycle[0]))];
}

// ============================================================================================
// Canvas
// ============================================================================================

namespace {

constexpr int kMaxSide = 1 << 14;

// Coverage of a pixel whose centre is at signed distance `inside` within a shape's edge
// (positive inside): a box filter of one pixel's width, 0 beyond half a pixel outside the edge,
// 1 from half a pixel inside it.
inline double coverage_from_depth(double inside) {
  return std::clamp(inside + 0.5, 0.0, 1.0);
}

// Distance from p to the segment a-b.
double segment_distance(double px, double py, double ax, double ay, double bx, double by) {
  const double dx = bx - ax, dy = by - ay;
  const double len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0.0;
  t = std::clamp(t, 0.0, 1.0);
  const double qx = ax + t * dx - px, qy = ay + t * dy - py;
  return std::sqrt(qx * qx + qy * qy);
}

// Liang-Barsky: clips the segment to the box [x0, x1] x [y0, y1]; false if nothing is left.
bool clip_segment(double& ax, double& ay, double& bx, double& by, double x0, double y0, double x1,
                  double y1) {
  double t0 = 0, t1 = 1;
  const double dx = bx - ax, dy = by - ay;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {ax - x0, x1 - ax, ay - y0, y1 - ay};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0) {
      if (q[i] < 0) return false;
    } else {
      const double t = q[i] / p[i];
      if (p[i] < 0) {
        if (t > t1) return false;
        t0 = std::max(t0, t);
      } else {
        if (t < t0) return false;
        t1 = std::min(t1, t);
      }
    }
  }
  const double nax = ax + t0 * dx, nay = ay + t0 * dy;
  bx = ax + t1 * dx;
  by = ay + t1 * dy;
  ax = nax;
  ay = nay;
  return true;
}

struct Segment {
  double ax, ay, bx, by;
};

// Cuts a polyline into the "on" pieces of a dash pattern that runs on across its vertices.
std::vector<Segment> dash_polyline(const std::vector<double>& xs, const std::vector<double>& ys,
                                   const std::vector<double>& dash) {
  std::vector<Segment> out;
  if (dash.empty()) {
    for (size_t i = 0; i + 1 < xs.size(); ++i) out.push_back({xs[i], ys[i], xs[i + 1], ys[i + 1]});
    return out;
  }
  for (double d : dash) {
    if (!(d > 0) || !std::isfinite(d))
      throw std::invalid_argument("plot: dash lengths must be > 0");
  }
  size_t k = 0;
  double left = dash[0];
  for (size_t i = 0; i + 1 < xs.size(); ++i) {
    const double dx = xs[i + 1] - xs[i], dy = ys[i + 1] - ys[i];
    const double len = std::sqrt(dx * dx + dy * dy);
    if (!(len > 0)) continue;
    double t = 0;
    while (len - t > 1e-9) {
      const double step = std::min(left, len - t);
      if (k % 2 == 0) {
        out.push_back({xs[i] + dx * t / len, ys[i] + dy * t / len, xs[i] + dx * (t + step) / len,
                       ys[i] + dy * (t + step) / len});
      }
      t += step;
      left -= step;
      if (left <= 1e-9) {
        k = (k + 1) % dash.size();
        left = dash[k];
      }
    }
  }
  return out;
}

}  // namespace

Canvas::Canvas(int width, int height, Color background) : width_(width), height_(height) {
  if (width <= 0 || height <= 0 || width > kMaxSide || height > kMaxSide) {
    throw std::invalid_argument("plot: canvas size " + std::to_string(width) + " x " +
                                std::to_string(height) + " is outside 1 .. " +
                                std::to_string(kMaxSide));
  }
  rgb_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = background.r;
    rgb_[i + 1] = background.g;
    rgb_[i + 2] = background.b;
  }
  reset_clip();
}

Color Canvas::pixel(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) {
    throw std::out_of_range("plot: pixel (" + std::to_string(x) + ", " + std::to_string(y) +
                            ") is outside the canvas");
  }
  const uint8_t* p = &rgb_[(static_cast<size_t>(y) * width_ + x) * 3];
  return {p[0], p[1], p[2], 255};
}

void Canvas::set_clip(int x0, int y0, int x1, int y1) {
  clip_x0_ = std::clamp(x0, 0, width_);
  clip_y0_ = std::clamp(y0, 0, height_);
  clip_x1_ = std::clamp(x1, clip_x0_, width_);
  clip_y1_ = std::clamp(y1, clip_y0_, height_);
}

void Canvas::reset_clip() {
  set_clip(0, 0, width_, height_);
}

void Canvas::blend(int x, int y, Color c, double coverage) {
  if (x < clip_x0_ || y < clip_y0_ || x >= clip_x1_ || y >= clip_y1_) return;
  const double a = std::min(1.0, coverage * c.a / 255.0);
  if (!(a > 0)) return;
  uint8_t* p = &rgb_[(static_cast<size_t>(y) * width_ + x) * 3];
  const uint8_t src[3] = {c.r, c.g, c.b};
  for (int i = 0; i < 3; ++i) {
    p[i] = static_cast<uint8_t>(std::lround(p[i] + (src[i] - p[i]) * a));
  }
}

void Canvas::fill_rect(int x0, int y0, int x1, int y1, Color c) {
  x0 = std::max(x0, clip_x0_);
  y0 = std::max(y0, clip_y0_);
  x1 = std::min(x1, clip_x1_);
  y1 = std::min(y1, clip_y1_);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) blend(x, y, c);
  }
}

void Canvas::rect_outline(int x0, int y0, int x1, int y1, Color c) {
  if (x1 <= x0 || y1 <= y0) return;
  fill_rect(x0, y0, x1, y0 + 1, c);
  fill_rect(x0, y1 - 1, x1, y1, c);
  fill_rect(x0, y0 + 1, x0 + 1, y1 - 1, c);
  fill_rect(x1 - 1, y0 + 1, x1, y1 - 1, c);
}

void Canvas::line(double x0, double y0, double x1, double y1, Color c, double width,
                  const std::vector<double>& dash) {
  polyline({x0, x1}, {y0, y1}, c, width, dash);
}

void Canvas::polyline(const std::vector<double>& xs, const std::vector<double>& ys, Color c,
                      double width, const std::vector<double>& dash) {
  if (xs.size() != ys.size()) throw std::invalid_argument("plot: polyline x and y differ in size");
  if (!(width > 0) || xs.size() < 2) return;
  const double hw = width / 2;
  // Clip every piece to the clip box grown by the pen, so far-away points cost nothing.
  const double m = hw + 2;
  std::vector<Segment> segs;
  for (Segment s : dash_polyline(xs, ys, dash)) {
    if (!std::isfinite(s.ax) || !std::isfinite(s.ay) || !std::isfinite(s.bx) ||
        !std::isfinite(s.by)) {
      continue;
    }
    if (clip_segment(s.ax, s.ay, s.bx, s.by, clip_x0_ - m, clip_y0_ - m, clip_x1_ + m,
                     clip_y1_ + m)) {
      segs.push_back(s);
    }
  }
  if (segs.empty()) return;
  // One coverage mask for the whole polyline, taking the maximum over its pieces: joins are then
  // painted once.
  double bx0 = 1e300, by0 = 1e300, bx1 = -1e300, by1 = -1e300;
  for (const Segment& s : segs) {
    bx0 = std::min({bx0, s.ax, s.bx});
    by0 = std::min({by0, s.ay, s.by});
    bx1 = std::max({bx1, s.ax, s.bx});
    by1 = std::max({by1, s.ay, s.by});
  }
  const int mx0 = std::max(clip_x0_, static_cast<int>(std::floor(bx0 - hw - 1)));
  const int my0 = std::max(clip_y0_, static_cast<int>(std::floor(by0 - hw - 1)));
  const int mx1 = std::min(clip_x1_, static_cast<int>(std::ceil(bx1 + hw + 1)));
  const int my1 = std::min(clip_y1_, static_cast<int>(std::ceil(by1 + hw + 1)));
  if (mx1 <= mx0 || my1 <= my0) return;
  const int mw = mx1 - mx0;
  std::vector<float> mask(static_cast<size_t>(mw) * (my1 - my0), 0.f);
  for (const Segment& s : segs) {
    const int sx0 = std::max(mx0, static_cast<int>(std::floor(std::min(s.ax, s.bx) - hw - 1)));
    const int sy0 = std::max(my0, static_cast<int>(std::floor(std::min(s.ay, s.by) - hw - 1)));
    const int sx1 = std::min(mx1, static_cast<int>(std::ceil(std::max(s.ax, s.bx) + hw + 1)));
    const int sy1 = std::min(my1, static_cast<int>(std::ceil(std::max(s.ay, s.by) + hw + 1)));
    for (int y = sy0; y < sy1; ++y) {
      for (int x = sx0; x < sx1; ++x) {
        const double d = segment_distance(x + 0.5, y + 0.5, s.ax, s.ay, s.bx, s.by);
        // A pen thinner than a pixel paints a full-width line at proportionally lower opacity.
        const double cov =
            width >= 1 ? coverage_from_depth(hw - d) : width * coverage_from_depth(0.5 - d);
        float& slot = mask[static_cast<size_t>(y - my0) * mw + (x - mx0)];
        slot = std::max(slot, static_cast<float>(cov));
      }
    }
  }
  for (int y = my0; y < my1; ++y) {
    for (int x = mx0; x < mx1; ++x)
      blend(x, y, c, mask[static_cast<size_t>(y - my0) * mw + x - mx0]);
  }
}

void Canvas::disc(double cx, double cy, double radius, Color c) {
  if (!std::isfinite(cx) || !std::isfinite(cy) || !(radius > 0)) return;
  const int x0 = std::max(clip_x0_, static_cast<int>(std::floor(cx - radius - 1)));
  const int y0 = std::max(clip_y0_, static_cast<int>(std::floor(cy - radius - 1)));
  const int x1 = std::min(clip_x1_, static_cast<int>(std::ceil(cx + radius + 1)));
  const int y1 = std::min(clip_y1_, static_cast<int>(std::ceil(cy + radius + 1)));
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      const double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
      double cov = coverage_from_depth(radius - d);
      if (radius < 0.5) cov *= 2 * radius;  // a dot smaller than a pixel fades instead
      blend(x, y, c, cov);
    }
  }
}

// ============================================================================================
// Text
// ============================================================================================

namespace {

// A monochrome or grey image: row-major coverage in [0, 1].
struct Bitmap {
  int w = 0, h = 0;
  std::vector<float> v;
  Bitmap(int w_, int h_) : w(w_), h(h_), v(static_cast<size_t>(w_) * h_, 0.f) {}
  float at(int x, int y) const {
    return (x < 0 || y < 0 || x >= w || y >= h) ? 0.f : v[static_cast<size_t>(y) * w + x];
  }
  float& at(int x, int y) { return v[static_cast<size_t>(y) * w + x]; }
};

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (true) {
    const size_t nl = s.find('\n', start);
    lines.push_back(s.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return lines;
}

// Width of one line on the font grid, without the spacing after the last glyph.
int line_grid_width(std::string_view line) {
  int w = 0;
  for (char ch : line) w += font::advance(ch);
  return w > 0 ? w - font::kSpacing : 0;
}

// Distance between the tops of two lines, in font-grid rows.
constexpr int kLinePitch = font::kGlyphHeight + 2;

// The line's glyphs on the font grid, one cell a font pixel.
Bitmap rasterize_line(std::string_view line) {
  Bitmap b(std::max(1, line_grid_width(line)), font::kGlyphHeight);
  int pen = 0;
  for (char ch : line) {
    const font::Glyph& g = font::glyph(ch);
    for (int r = 0; r < font::kGlyphHeight; ++r) {
      for (int c = 0; c < g.width; ++c) {
        if ((g.rows[r] >> (g.left + c)) & 1u) b.at(pen + c, r) = 1.f;
      }
    }
    pen += g.width + font::kSpacing;
  }
  return b;
}

// Scale2x (EPX) doubles a binary image and fills the inner corner of every diagonal step, so
// diagonal strokes come out as 45-degree lines instead of staircases. One change to EPX: a corner
// is only filled (or cut) when the pixel diagonally beyond it agrees, i.e. at a real diagonal;
// plain EPX would also round the inside of T-junctions into blobs ('f', '1', '4').
Bitmap scale2x(const Bitmap& s) {
  Bitmap d(s.w * 2, s.h * 2);
  for (int y = 0; y < s.h; ++y) {
    for (int x = 0; x < s.w; ++x) {
      const float p = s.at(x, y);
      for (int dy = -1; dy <= 1; dy += 2) {
        for (int dx = -1; dx <= 1; dx += 2) {
          // h, v: the neighbours beside and above/below this corner; oh, ov: the opposite ones.
          const float h = s.at(x + dx, y), v = s.at(x, y + dy);
          const float oh = s.at(x - dx, y), ov = s.at(x, y - dy), diag = s.at(x + dx, y + dy);
          const bool step = h == v && h != oh && v != ov && diag != h;
          d.at(2 * x + (dx + 1) / 2, 2 * y + (dy + 1) / 2) = step ? h : p;
        }
      }
    }
  }
  return d;
}

// The whole (not turned) text at `scale` as a coverage bitmap of text_width x text_height.
Bitmap render_text(std::string_view s, double scale, bool bold) {
  const auto lines = split_lines(s);
  Bitmap out(std::max(1, text_width(s, scale, bold)), std::max(1, text_height(s, scale)));
  const int levels = scale >= 3.5 ? 2 : scale >= 1.5 ? 1 : 0;  // Scale2x passes before sampling
  for (size_t li = 0; li < lines.size(); ++li) {
    Bitmap src = rasterize_line(lines[li]);
    for (int i = 0; i < levels; ++i) src = scale2x(src);
    const double cell = scale / (1 << levels);  // output pixels per source cell
    const int top = static_cast<int>(std::lround(li * kLinePitch * scale));
    const int w = static_cast<int>(std::ceil(src.w * cell)),
              h = static_cast<int>(std::ceil(src.h * cell));
    const bool exact = std::abs(cell - std::round(cell)) < 1e-9 && cell >= 1;
    constexpr int kSub = 4;  // supersampling per axis when cells do not fall on whole pixels
    for (int y = 0; y < h && top + y < out.h; ++y) {
      for (int x = 0; x < w && x < out.w; ++x) {
        float cov;
        if (exact) {
          const int k = static_cast<int>(std::lround(cell));
          cov = src.at(x / k, y / k);
        } else {
          int hits = 0;
          for (int sy = 0; sy < kSub; ++sy) {
            for (int sx = 0; sx < kSub; ++sx) {
              const double u = (x + (sx + 0.5) / kSub) / cell, v = (y + (sy + 0.5) / kSub) / cell;
              hits += src.at(static_cast<int>(u), static_cast<int>(v)) > 0.5f;
            }
          }
          cov = static_cast<float>(hits) / (kSub * kSub);
        }
        float& o = out.at(x, top + y);
        o = std::max(o, cov);
        // Bold: every stroke one pixel wider, to the right.
        if (bold && x + 1 < out.w) out.at(x + 1, top + y) = std::max(out.at(x + 1, top + y), cov);
      }
    }
  }
  return out;
}

}  // namespace

int text_width(std::string_view s, double scale, bool bold) {
  int w = 0;
  for (std::string_view line : split_lines(s)) w = std::max(w, line_grid_width(line));
  return static_cast<int>(std::ceil(w * scale)) + (bold && w > 0 ? 1 : 0);
}

int text_height(std::string_view s, double scale) {
  const int n = static_cast<int>(split_lines(s).size());
  return static_cast<int>(std::ceil(((n - 1) * kLinePitch + font::kGlyphHeight) * scale));
}

void Canvas::text(double x, double y, std::string_view s, Color c, double scale, HAlign h, VAlign v,
                  bool vertical, bool bold) {
  if (s.empty() || !(scale > 0) || !std::isfinite(x) || !std::isfinite(y)) return;
  const Bitmap b = render_text(s, scale, bold);
  const int n = static_cast<int>(split_lines(s).size());
  // Extent of the box along x and along y after the optional turn.
  const int ex = vertical ? b.h : b.w, ey = vertical ? b.w : b.h;
  double left = x;
  if (h == HAlign::kCenter) left = x - ex / 2.0;
  if (h == HAlign::kRight) left = x - ex;
  double top = y;
  if (vertical) {
    if (v == VAlign::kCenter) top = y - ey / 2.0;
    if (v == VAlign::kBottom || v == VAlign::kBaseline) top = y - ey;
  } else {
    // Baseline and centre refer to the capitals: from the top of the first line down to the
    // baseline of the last, descenders hanging below.
    const double caps = ((n - 1) * kLinePitch + font::kAscent) * scale;
    if (v == VAlign::kCenter) top = y - caps / 2.0;
    if (v == VAlign::kBaseline) top = y - caps;
    if (v == VAlign::kBottom) top = y - ey;
  }
  const int ix = static_cast<int>(std::lround(left)), iy = static_cast<int>(std::lround(top));
  for (int j = 0; j < b.h; ++j) {
    for (int i = 0; i < b.w; ++i) {
      const float cov = b.at(i, j);
      if (cov <= 0) continue;
      // Turning anticlockwise: the start of the text goes to the bottom, its top to the left.
      if (vertical) {
        blend(ix + j, iy + (b.w - 1 - i), c, cov);
      } else {
        blend(ix + i, iy + j, c, cov);
      }
    }
  }
}

// ============================================================================================
// PNG
// ============================================================================================

void write_png(const std::string& path, const Canvas& canvas) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp =
      path + ".tmp" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    throw std::runtime_error("plot: cannot write '" + path + "': " + std::strerror(errno));
  }
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(canvas.width());
  image.height = static_cast<png_uint_32>(canvas.height());
  image.format = PNG_FORMAT_RGB;
  const int ok = png_image_write_to_stdio(&image, f, 0, canvas.rgb().data(), 0, nullptr);
  std::string why = ok ? "" : std::string("libpng: ") + image.message;
  png_image_free(&image);
  const bool flushed = std::fflush(f) == 0;
  const int flush_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (ok && !(flushed && closed)) why = std::strerror(flushed ? errno : flush_errno);
  if (!why.empty()) {
    std::remove(tmp.c_str());
    throw std::runtime_error("plot: cannot write '" + path + "': " + why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error("plot: cannot write '" + path + "' (renaming '" + tmp +
                             "' onto it failed): " + why);
  }
}

Canvas read_png(const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    const std::string why = image.message;
    png_image_free(&image);
    throw std::runtime_error("plot: cannot read PNG '" + path + "': " + why);
  }
  if (image.width == 0 || image.height == 0 || image.width > kMaxSide || image.height > kMaxSide) {
    png_image_free(&image);
    throw std::runtime_error("plot: PNG '" + path + "' has an unsupported size");
  }
  image.format = PNG_FORMAT_RGB;
  Canvas canvas(static_cast<int>(image.width), static_cast<int>(image.height));
  png_color white{255, 255, 255};
  if (!png_image_finish_read(&image, &white, canvas.rgb().data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    throw std::runtime_error("plot: cannot read PNG '" + path + "': " + why);
  }
  return canvas;
}

// ============================================================================================
// Ticks
// ============================================================================================

namespace {

// m x 10^k, exact to the last bit (parsed from its decimal spelling rather than built with pow).
double decimal(double m, int k) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17ge%d", m, k);
  return std::strtod(buf, nullptr);
}

// Labels for tick values, one notation for the whole axis.
void label_ticks(std::vector<Tick>& ticks, bool scientific, double tolerance_abs,
                 double tolerance_rel) {
  for (Tick& t : ticks) {
    if (t.major) {
      t.label =
          format_number(t.value, scientific, tolerance_abs + tolerance_rel * std::abs(t.value));
    }
  }
}

}  // namespace

std::string format_number(double v, bool scientific, double tolerance) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  tolerance = std::abs(tolerance);
  if (std::abs(v) <= tolerance || v == 0) return "0";
  char buf[64];
  for (int d = 0; d <= 17; ++d) {
    std::snprintf(buf, sizeof(buf), scientific ? "%.*e" : "%.*f", d, v);
    if (std::abs(std::strtod(buf, nullptr) - v) <= tolerance) break;
  }
  std::string s = buf;
  if (scientific) {
    // "2.50e-05" was never produced (the shortest mantissa wins), but the exponent still needs
    // tidying: "e-05" -> "e-5", "e+03" -> "e3".
    const size_t e = s.find('e');
    if (e != std::string::npos) {
      const int exponent = std::atoi(s.c_str() + e + 1);
      s = s.substr(0, e) + "e" + std::to_string(exponent);
    }
  }
  return s;
}

std::vector<Tick> linear_ticks(double lo, double hi, int max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) {
    return {{lo, format_number(lo, std::abs(lo) < 1e-3 || std::abs(lo) >= 1e5, std::abs(lo) * 1e-9),
             true}};
  }
  max_ticks = std::max(2, max_ticks);
  static constexpr double kMantissas[] = {1, 2, 2.5, 5};
  const int k0 = static_cast<int>(std::floor(std::log10((hi - lo) / max_ticks))) - 1;
  double step = 0;
  long first = 0, last = -1;
  for (int k = k0; k <= k0 + 4 && step == 0; ++k) {
    for (double m : kMantissas) {
      const double s = decimal(m, k);
      const long f = static_cast<long>(std::ceil(lo / s - 1e-9));
      const long l = static_cast<long>(std::floor(hi / s + 1e-9));
      if (l - f + 1 <= max_ticks) {
        step = s;
        first = f;
        last = l;
        break;
      }
    }
  }
  std::vector<Tick> ticks;
  double largest = 0;
  for (long i = first; i <= last; ++i) {
    double v = static_cast<double>(i) * step;
    if (std::abs(v) < step * 1e-9) v = 0;
    ticks.push_back({v, "", true});
    largest = std::max(largest, std::abs(v));
  }
  const bool scientific = largest >= 1e5 || (largest > 0 && largest < 1e-3);
  label_ticks(ticks, scientific, step * 1e-6, 0);
  return ticks;
}

std::vector<Tick> log_ticks(double lo, double hi, int max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (lo > hi) std::swap(lo, hi);
  if (!(lo > 0)) return {};
  if (lo == hi) return linear_ticks(lo, hi, max_ticks);
  max_ticks = std::max(2, max_ticks);
  const int d0 = static_cast<int>(std::ceil(std::log10(lo) - 1e-9));
  const int d1 = static_cast<int>(std::floor(std::log10(hi) + 1e-9));
  const int decades = d1 - d0 + 1;
  const auto inside = [&](double v) { return v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9); };
  // Every m x 10^k in range, for m in `mantissas`, in increasing order.
  const auto multiples = [&](std::initializer_list<int> mantissas) {
    std::vector<double> out;
    for (int k = d0 - 1; k <= d1; ++k) {
      for (int m : mantissas) {
        const double v = decimal(m, k);
        if (inside(v)) out.push_back(v);
      }
    }
    return out;
  };
  std::vector<Tick> ticks;
  const auto finish = [&](const std::vector<double>& major, const std::vector<double>& minor) {
    for (double v : major) ticks.push_back({v, "", true});
    for (double v : minor) {
      if (std::find(major.begin(), major.end(), v) == major.end()) ticks.push_back({v, "", false});
    }
    std::sort(ticks.begin(), ticks.end(),
              [](const Tick& a, const Tick& b) { return a.value < b.value; });
    bool plain = true;  // fixed notation when every label is between 0.01 and 1000
    for (double v : major) plain = plain && v >= 1e-2 && v < 1e3;
    label_ticks(ticks, !plain, 0, 1e-9);
    return ticks;
  };
  const std::vector<double> ones_to_nines = multiples({1, 2, 3, 4, 5, 6, 7, 8, 9});
  const auto decade_ticks = [&]() {
    const int stride = (decades + max_ticks - 1) / max_ticks;
    std::vector<double> major, minor;
    for (int k = d0; k <= d1; ++k) {
      (((k % stride) + stride) % stride == 0 ? major : minor).push_back(decimal(1, k));
    }
    if (stride == 1) minor = ones_to_nines;
    return finish(major, minor);
  };
  if (decades >= 3) return decade_ticks();
  const std::vector<double> one_two_five = multiples({1, 2, 5});
  if (one_two_five.size() >= 3) {
    if (static_cast<int>(one_two_five.size()) <= max_ticks)
      return finish(one_two_five, ones_to_nines);
    if (decades >= 2) return decade_ticks();
  }
  // A narrow range: 1..9 x 10^k, or plain linear ticks where they give more labels.
  std::vector<Tick> linear = linear_ticks(lo, hi, max_ticks);
  std::erase_if(linear, [](const Tick& t) { return !(t.value > 0); });
  const int n19 = static_cast<int>(ones_to_nines.size());
  if (n19 >= 3 && n19 <= max_ticks && n19 >= static_cast<int>(linear.size())) {
    return finish(ones_to_nines, {});
  }
  return linear;
}

// ============================================================================================
// Charts
// ============================================================================================

namespace {

// A data-to-pixel mapping along one axis.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  bool valid(double v) const { return std::isfinite(v) && (!log || v > 0); }
  double fraction(double v) const {
    return log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
               : (v - lo) / (hi - lo);
  }
  std::vector<Tick> ticks(int max_ticks) const {
    return log ? log_ticks(lo, hi, max_ticks) : linear_ticks(lo, hi, max_ticks);
  }
};

// The axis range: the data's, with a 5% margin (in log10 space on a log axis), a made-up width
// around constant data, and fixed limits where the options give them.
Axis make_axis(const std::vector<double>& values, bool log, std::optional<double> fixed_lo,
               std::optional<double> fixed_hi, const char* name) {
  Axis a;
  a.log = log;
  const auto bad_limit = [&](const char* which) {
    throw std::invalid_argument(std::string("plot: ") + name + "_" + which + " must be finite" +
                                (log ? " and > 0 on a log axis" : ""));
  };
  if (fixed_lo && !a.valid(*fixed_lo)) bad_limit("min");
  if (fixed_hi && !a.valid(*fixed_hi)) bad_limit("max");
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values) {
    if (a.valid(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  // Work in log10 on a log axis; map back at the end.
  const auto fwd = [&](double v) { return log ? std::log10(v) : v; };
  const auto back = [&](double v) { return log ? std::pow(10.0, v) : v; };
  double l, h;
  if (lo > hi) {  // no data: [0, 1], or [1, 10] on a log axis
    l = 0;
    h = 1;
  } else {
    l = fwd(lo);
    h = fwd(hi);
    if (h - l <= 1e-12 * std::max(1.0, std::abs(l))) {
      const double pad = log ? 0.3 : (l != 0 ? std::abs(l) * 0.1 : 1.0);
      l -= pad;
      h += pad;
    } else {
      const double pad = 0.05 * (h - l);
      l -= pad;
      h += pad;
    }
  }
  if (fixed_lo) l = fwd(*fixed_lo);
  if (fixed_hi) h = fwd(*fixed_hi);
  if (!(h > l)) {
    if (fixed_lo && fixed_hi) {
      throw std::invalid_argument(std::string("plot: ") + name + "_min must be below " + name +
                                  "_max");
    }
    const double span = log ? 1.0 : std::max(1.0, std::abs(fixed_lo ? l : h));
    if (fixed_lo)
      h = l + span;
    else
      l = h - span;
  }
  a.lo = back(l);
  a.hi = back(h);
  return a;
}

// Sizes that follow the figure size (tuned on an 800 x 500 figure).
struct Style {
  double ui;           // 1 at 800 x 500
  double tick_scale;   // font scale of tick labels and the legend
  double label_scale;  // axis labels
  double title_scale;
  double line_width, marker_radius, scatter_radius;
  int pad, tick_len, gap;
  Color ink{38, 38, 38}, frame{64, 64, 64}, grid{224, 224, 224}, reference{60, 60, 60};
};

Style make_style(int width, int height) {
  Style s;
  s.ui = std::clamp(std::sqrt(width * static_cast<double>(height) / (800.0 * 500.0)), 0.5, 4.0);
  // Text sizes snap to whole font pixels, which render crisply; the title is set in bold.
  const double text = std::max(1.0, std::round(2.0 * s.ui));
  s.tick_scale = s.label_scale = s.title_scale = text;
  s.line_width = 2.0 * s.ui;
  s.marker_radius = 3.5 * s.ui;
  s.scatter_radius = 2.4 * s.ui;
  s.pad = static_cast<int>(std::lround(12 * s.ui));
  s.tick_len = static_cast<int>(std::lround(5 * s.ui));
  s.gap = static_cast<int>(std::lround(6 * s.ui));
  return s;
}

struct LegendEntry {
  std::string label;
  Color color;
  bool line = true;
  bool marker = false;
  std::vector<double> dash;
  double marker_radius = 0;
  double width = 1;
};

// The chart's frame: pixel rectangle [x0, x1] x [y0, y1] of the plot area and the axes.
struct Frame {
  int x0, y0, x1, y1;
  Axis ax, ay;
  double px(double x) const { return x0 + ax.fraction(x) * (x1 - x0); }
  double py(double y) const { return y1 - ay.fraction(y) * (y1 - y0); }
};

// Draws a chart: layout, grid, the data (through `draw_data`), frame, ticks, labels and a legend
// in the corner where it hides the fewest of `occupied` (pixel positions of the data).
void draw_chart(const std::string& png_path, const ChartOptions& o, const Axis& ax, const Axis& ay,
                bool square, const std::function<void(Canvas&, const Frame&)>& draw_data,
                const std::function<std::vector<std::pair<double, double>>(const Frame&)>& occupied,
                const std::vector<LegendEntry>& legend, bool empty) {
  if (o.width < 160 || o.height < 120 || o.width > kMaxSide || o.height > kMaxSide) {
    throw std::invalid_argument("plot: figure size " + std::to_string(o.width) + " x " +
                                std::to_string(o.height) + " for '" + png_path +
                                "' must be at least 160 x 120 and at most " +
                                std::to_string(kMaxSide));
  }
  const Style st = make_style(o.width, o.height);
  Canvas cv(o.width, o.height);

  // ---- layout: margins from the text they hold ----
  const int tick_h = text_height("0", st.tick_scale);
  const int cap_h = static_cast<int>(std::ceil(font::kAscent * st.tick_scale));
  const int title_h = o.title.empty() ? 0 : text_height(o.title, st.title_scale);
  int top = st.pad + (o.title.empty() ? st.pad / 2 : title_h + st.pad);
  const int bottom = st.tick_len + st.gap + tick_h +
                     (o.xlabel.empty() ? 0 : st.gap + text_height(o.xlabel, st.label_scale)) +
                     st.pad;
  // The legend's size, known before the layout so that `legend_outside` can make room for it.
  const bool has_legend = !legend.empty() || !o.notes.empty();
  const double ts = st.tick_scale;
  const int row_h = static_cast<int>(std::lround(text_height("Ag", ts) * 1.25));
  const int sample_w = static_cast<int>(std::lround(28 * st.ui));
  const int inner = static_cast<int>(std::lround(8 * st.ui));
  const int handle_gap = static_cast<int>(std::lround(9 * st.ui));  // sample to text
  int text_w = 0;
  for (const LegendEntry& e : legend) text_w = std::max(text_w, text_width(e.label, ts));
  int notes_w = 0;
  for (const std::string& n : o.notes) notes_w = std::max(notes_w, text_width(n, ts));
  const int legend_w =
      std::max(legend.empty() ? 0 : sample_w + handle_gap + text_w, notes_w) + 2 * inner;
  const int legend_rows = static_cast<int>(legend.size() + o.notes.size());
  const int legend_h = legend_rows * row_h + 2 * inner - (row_h - text_height("Ag", ts));
  const bool outside = o.legend_outside && has_legend;

  const int tick_overhang = text_width("0.00", st.tick_scale) / 2 + st.gap;  // right of the frame
  const int right = st.pad + tick_overhang + (outside ? legend_w + st.gap : 0);
  const int plot_h0 = o.height - top - bottom;
  const int y_max_ticks = std::clamp(plot_h0 / (cap_h * 4), 3, 10);
  std::vector<Tick> yt = ay.ticks(y_max_ticks);
  int ylab_w = 0;
  for (const Tick& t : yt) ylab_w = std::max(ylab_w, text_width(t.label, st.tick_scale));
  const int left = st.pad +
                   (o.ylabel.empty() ? 0 : text_height(o.ylabel, st.label_scale) + st.gap) +
                   ylab_w + st.gap + st.tick_len;
  Frame f{left, top, o.width - right, o.height - bottom, ax, ay};
  if (f.x1 - f.x0 < 40 || f.y1 - f.y0 < 30) {
    throw std::invalid_argument("plot: figure '" + png_path + "' is too small for its labels");
  }
  if (square) {  // same scale on both axes: a square plot area, centred in the space there is
    const int side = std::min(f.x1 - f.x0, f.y1 - f.y0);
    const int dx = (f.x1 - f.x0 - side) / 2, dy = (f.y1 - f.y0 - side) / 2;
    f.x0 += dx;
    f.x1 = f.x0 + side;
    f.y0 += dy;
    f.y1 = f.y0 + side;
    top = f.y0;
  }
  // x ticks: as many as fit with a gap of a character and a half between labels.
  std::vector<Tick> xt;
  const int x_max_ticks = square ? y_max_ticks : std::clamp((f.x1 - f.x0) / (cap_h * 5), 2, 12);
  for (int n = x_max_ticks; n >= 2; --n) {
    xt = ax.ticks(n);
    int widest = 0, majors = 0;
    for (const Tick& t : xt) {
      widest = std::max(widest, text_width(t.label, st.tick_scale));
      majors += t.major;
    }
    if (majors * (widest + 3 * text_width("0", st.tick_scale) / 2) <= f.x1 - f.x0) break;
  }
  if (square) yt = xt;  // the same range on both axes: the same ticks

  // ---- grid ----
  const auto inside_x = [&](double px) { return px >= f.x0 - 0.5 && px <= f.x1 + 0.5; };
  const auto inside_y = [&](double py) { return py >= f.y0 - 0.5 && py <= f.y1 + 0.5; };
  // Grid lines at the major ticks only: at minor ones (2..9 x 10^k) they crowd the decades' tops.
  for (const Tick& t : xt) {
    const double px = f.px(t.value);
    if (!t.major || !inside_x(px)) continue;
    const int ix = std::clamp(static_cast<int>(std::floor(px)), f.x0, f.x1);
    cv.fill_rect(ix, f.y0, ix + 1, f.y1, st.grid);
  }
  for (const Tick& t : yt) {
    const double py = f.py(t.value);
    if (!t.major || !inside_y(py)) continue;
    const int iy = std::clamp(static_cast<int>(std::floor(py)), f.y0, f.y1);
    cv.fill_rect(f.x0, iy, f.x1, iy + 1, st.grid);
  }

  // ---- data, clipped to the plot area ----
  cv.set_clip(f.x0, f.y0, f.x1 + 1, f.y1 + 1);
  if (o.hline && ay.valid(*o.hline)) {
    const double py = f.py(*o.hline);
    cv.line(f.x0, py, f.x1 + 1, py, st.reference, 1.5 * st.ui, {7 * st.ui, 4 * st.ui});
  }
  draw_data(cv, f);
  cv.reset_clip();
  if (empty) {
    cv.text((f.x0 + f.x1) / 2.0, (f.y0 + f.y1) / 2.0, "no data", kGrey, st.label_scale,
            HAlign::kCenter, VAlign::kCenter);
  }

  // ---- frame, ticks, tick labels ----
  cv.rect_outline(f.x0 - 1, f.y0 - 1, f.x1 + 2, f.y1 + 2, st.frame);
  for (const Tick& t : xt) {
    const double px = f.px(t.value);
    if (!inside_x(px)) continue;
    const int ix = std::clamp(static_cast<int>(std::floor(px)), f.x0, f.x1);
    const int len = t.major ? st.tick_len : (st.tick_len + 1) / 2;
    cv.fill_rect(ix, f.y1 + 1, ix + 1, f.y1 + 1 + len, st.frame);
    if (t.major) {
      cv.text(ix + 0.5, f.y1 + 1 + st.tick_len + st.gap, t.label, st.ink, st.tick_scale,
              HAlign::kCenter, VAlign::kTop);
    }
  }
  for (const Tick& t : yt) {
    const double py = f.py(t.value);
    if (!inside_y(py)) continue;
    const int iy = std::clamp(static_cast<int>(std::floor(py)), f.y0, f.y1);
    const int len = t.major ? st.tick_len : (st.tick_len + 1) / 2;
    cv.fill_rect(f.x0 - 1 - len, iy, f.x0 - 1, iy + 1, st.frame);
    if (t.major) {
      cv.text(f.x0 - 1 - st.tick_len - st.gap, iy + 0.5, t.label, st.ink, st.tick_scale,
              HAlign::kRight, VAlign::kCenter);
    }
  }

  // ---- title and axis labels ----
  if (!o.title.empty()) {
    cv.text((f.x0 + f.x1) / 2.0, top - st.pad - title_h, o.title, st.ink, st.title_scale,
            HAlign::kCenter, VAlign::kTop, false, true);
  }
  if (!o.xlabel.empty()) {
    cv.text((f.x0 + f.x1) / 2.0, f.y1 + 1 + st.tick_len + st.gap + tick_h + st.gap, o.xlabel,
            st.ink, st.label_scale, HAlign::kCenter, VAlign::kTop);
  }
  if (!o.ylabel.empty()) {
    const int x = f.x0 - 1 - st.tick_len - st.gap - ylab_w - st.gap;
    cv.text(x, (f.y0 + f.y1) / 2.0, o.ylabel, st.ink, st.label_scale, HAlign::kRight,
            VAlign::kCenter, true);
  }

  // ---- legend ----
  if (has_legend) {
    const int w = legend_w, h = legend_h;
    const int m = static_cast<int>(std::lround(10 * st.ui));
    int bx = f.x1 + tick_overhang, by = f.y0;  // outside: right of the frame, at its top
    if (!outside) {
      // Candidate corners in matplotlib's order of preference; the one covering fewest data wins.
      const std::pair<int, int> corners[] = {{f.x1 - m - w, f.y0 + m},
                                             {f.x0 + m, f.y0 + m},
                                             {f.x0 + m, f.y1 - m - h},
                                             {f.x1 - m - w, f.y1 - m - h}};
      const std::vector<std::pair<double, double>> pts = occupied(f);
      size_t best = std::numeric_limits<size_t>::max();
      for (const auto& [cx, cy] : corners) {
        size_t hits = 0;
        for (const auto& [px, py] : pts) {
          hits += px >= cx - 4 && px <= cx + w + 4 && py >= cy - 4 && py <= cy + h + 4;
        }
        if (hits < best) {
          best = hits;
          bx = cx;
          by = cy;
        }
      }
    }
    cv.fill_rect(bx, by, bx + w, by + h, Color{255, 255, 255, 217});
    cv.rect_outline(bx, by, bx + w, by + h, Color{204, 204, 204});
    int y = by + inner;
    const double mid = cap_h / 2.0;
    for (const LegendEntry& e : legend) {
      const double sy = std::floor(y + mid) + 0.5;
      if (e.line) {
        cv.line(bx + inner, sy, bx + inner + sample_w, sy, e.color, e.width, e.dash);
      }
      if (e.marker) cv.disc(bx + inner + sample_w / 2.0, sy, e.marker_radius, e.color);
      cv.text(bx + inner + sample_w + handle_gap, y, e.label, st.ink, ts, HAlign::kLeft,
              VAlign::kTop);
      y += row_h;
    }
    for (const std::string& n : o.notes) {
      cv.text(bx + inner, y, n, st.ink, ts, HAlign::kLeft, VAlign::kTop);
      y += row_h;
    }
  }
  write_png(png_path, cv);
}

// Points along a pixel polyline, about every 3 pixels: what a legend box would cover.
void sample_polyline(const std::vector<double>& xs, const std::vector<double>& ys,
                     std::vector<std::pair<double, double>>& out) {
  for (size_t i = 0; i < xs.size(); ++i) {
    out.emplace_back(xs[i], ys[i]);
    if (i + 1 == xs.size()) break;
    const double len = std::hypot(xs[i + 1] - xs[i], ys[i + 1] - ys[i]);
    const int n = std::min(2000, static_cast<int>(len / 3));
    for (int k = 1; k < n; ++k) {
      out.emplace_back(xs[i] + (xs[i + 1] - xs[i]) * k / n, ys[i] + (ys[i + 1] - ys[i]) * k / n);
    }
  }
}

}  // namespace

void line_chart(const std::string& png_path, const std::vector<Series>& series,
                const ChartOptions& o) {
  for (const Series& s : series) {
    if (s.x.size() != s.y.size()) {
      throw std::invalid_argument("plot: series '" + s.label + "' for '" + png_path + "' has " +
                                  std::to_string(s.x.size()) + " x values but " +
                                  std::to_string(s.y.size()) + " y values");
    }
  }
  Axis probe_x, probe_y;
  probe_x.log = o.log_x;
  probe_y.log = o.log_y;
  // Only points valid on both axes count for either range.
  std::vector<double> xs, ys;
  for (const Series& s : series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (probe_x.valid(s.x[i]) && probe_y.valid(s.y[i])) {
        xs.push_back(s.x[i]);
        ys.push_back(s.y[i]);
      }
    }
  }
  const bool empty = xs.empty();
  if (o.hline && probe_y.valid(*o.hline) && !empty) ys.push_back(*o.hline);
  const Axis ax = make_axis(xs, o.log_x, o.x_min, o.x_max, "x");
  const Axis ay = make_axis(ys, o.log_y, o.y_min, o.y_max, "y");
  const Style st = make_style(o.width, o.height);

  // Pixel polylines of each series, broken at invalid points.
  const auto runs_of = [&](const Series& s, const Frame& f) {
    std::vector<std::pair<std::vector<double>, std::vector<double>>> runs(1);
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (f.ax.valid(s.x[i]) && f.ay.valid(s.y[i])) {
        runs.back().first.push_back(f.px(s.x[i]));
        runs.back().second.push_back(f.py(s.y[i]));
      } else if (!runs.back().first.empty()) {
        runs.emplace_back();
      }
    }
    return runs;
  };
  const auto color_of = [&](size_t i) { return series[i].color.value_or(palette(i)); };

  std::vector<LegendEntry> legend;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    if (s.label.empty()) continue;
    legend.push_back(
        {s.label, color_of(i), s.line, s.markers || !s.line, {}, st.marker_radius, st.line_width});
  }
  if (o.hline && !o.hline_label.empty()) {
    legend.push_back(
        {o.hline_label, st.reference, true, false, {7 * st.ui, 4 * st.ui}, 0, 1.5 * st.ui});
  }

  const auto draw = [&](Canvas& cv, const Frame& f) {
    for (size_t i = 0; i < series.size(); ++i) {
      const Series& s = series[i];
      const Color c = color_of(i);
      for (const auto& [px, py] : runs_of(s, f)) {
        if (s.line) cv.polyline(px, py, c, st.line_width);
        // A point with no neighbour would be invisible as a line: give it a marker.
        const bool lonely = s.line && px.size() == 1;
        if (s.markers || !s.line || lonely) {
          for (size_t k = 0; k < px.size(); ++k) cv.disc(px[k], py[k], st.marker_radius, c);
        }
      }
    }
  };
  const auto occupied = [&](const Frame& f) {
    std::vector<std::pair<double, double>> pts;
    for (const Series& s : series) {
      for (const auto& [px, py] : runs_of(s, f)) {
        if (s.line) {
          sample_polyline(px, py, pts);
        } else {
          for (size_t k = 0; k < px.size(); ++k) pts.emplace_back(px[k], py[k]);
        }
      }
    }
    if (o.hline && f.ay.valid(*o.hline)) {
      sample_polyline({double(f.x0), double(f.x1)}, {f.py(*o.hline), f.py(*o.hline)}, pts);
    }
    return pts;
  };
  draw_chart(png_path, o, ax, ay, false, draw, occupied, legend, empty);
}

void scatter_chart(const std::string& png_path, const std::vector<double>& truth,
                   const std::vector<double>& pred, const ChartOptions& o, bool diagonal) {
  if (truth.size() != pred.size()) {
    throw std::invalid_argument("plot: scatter for '" + png_path + "' has " +
                                std::to_string(truth.size()) + " true values but " +
                                std::to_string(pred.size()) + " predictions");
  }
  const bool log = o.log_x || o.log_y;
  Axis probe;
  probe.log = log;
  std::vector<double> both;
  size_t n = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (probe.valid(truth[i]) && probe.valid(pred[i])) {
      both.push_back(truth[i]);
      both.push_back(pred[i]);
      ++n;
    }
  }
  // One range for both axes; a fixed limit on either axis applies to both.
  const std::optional<double> lo = o.x_min ? o.x_min : o.y_min;
  const std::optional<double> hi = o.x_max ? o.x_max : o.y_max;
  const Axis a = make_axis(both, log, lo, hi, o.x_min || o.x_max ? "x" : "y");
  const Style st = make_style(o.width, o.height);
  // Smaller and fainter markers as the cloud gets denser, so its shape stays visible.
  const double alpha = std::clamp(15.0 / std::sqrt(std::max<size_t>(n, 1)), 0.15, 0.8);
  Color c = kBlue;
  c.a = static_cast<uint8_t>(std::lround(alpha * 255));

  std::vector<LegendEntry> legend;
  legend.push_back({std::to_string(n) + (n == 1 ? " point" : " points"),
                    kBlue,
                    false,
                    true,
                    {},
                    st.marker_radius,
                    1});
  if (diagonal) {
    legend.push_back({"y = x", st.reference, true, false, {7 * st.ui, 4 * st.ui}, 0, 1.5 * st.ui});
  }
  const auto draw = [&](Canvas& cv, const Frame& f) {
    if (diagonal && n > 0) {
      cv.line(f.px(a.lo), f.py(a.lo), f.px(a.hi), f.py(a.hi), st.reference, 1.5 * st.ui,
              {7 * st.ui, 4 * st.ui});
    }
    for (size_t i = 0; i < truth.size(); ++i) {
      if (a.valid(truth[i]) && a.valid(pred[i])) {
        cv.disc(f.px(truth[i]), f.py(pred[i]), st.scatter_radius, c);
      }
    }
  };
  const auto occupied = [&](const Frame& f) {
    std::vector<std::pair<double, double>> pts;
    for (size_t i = 0; i < truth.size(); ++i) {
      if (a.valid(truth[i]) && a.valid(pred[i])) pts.emplace_back(f.px(truth[i]), f.py(pred[i]));
    }
    if (diagonal) {
      sample_polyline({f.px(a.lo), f.px(a.hi)}, {f.py(a.lo), f.py(a.hi)}, pts);
    }
    return pts;
  };
  draw_chart(png_path, o, a, a, true, draw, occupied, legend, n == 0);
}

}  // namespace halo::plot
