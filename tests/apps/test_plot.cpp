// Tests for halo::plot (apps/support/plot.h): tick placement and labels, the canvas and its text,
// PNG files read back with libpng, and the charts' geometry: series land where their data says
// (a flipped axis would fail), a log axis straightens exponential data, bad input throws.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/support/plot.h"

namespace halo::plot {
namespace {

namespace fs = std::filesystem;

// An RGB image read with libpng itself, independently of plot::read_png.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  Color at(int x, int y) const {
    const uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
    return {p[0], p[1], p[2], 255};
  }
};

Image load_png(const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    ADD_FAILURE() << "libpng cannot read " << path << ": " << image.message;
    return {};
  }
  image.format = PNG_FORMAT_RGB;
  Image out;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr)) {
    ADD_FAILURE() << "libpng cannot decode " << path << ": " << image.message;
    png_image_free(&image);
    return {};
  }
  return out;
}

bool near(Color a, Color b, int tol) {
  return std::abs(a.r - b.r) <= tol && std::abs(a.g - b.g) <= tol && std::abs(a.b - b.b) <= tol;
}

struct Pixel {
  int x, y;
};

std::vector<Pixel> pixels_of(const Image& im, Color c, int tol = 12) {
  std::vector<Pixel> out;
  for (int y = 0; y < im.height; ++y) {
    for (int x = 0; x < im.width; ++x) {
      if (near(im.at(x, y), c, tol)) out.push_back({x, y});
    }
  }
  return out;
}

double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A fresh directory per test, removed afterwards.
class PlotFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("halo_test_plot_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

constexpr Color kMagenta{200, 0, 200};  // a colour nothing else in a chart uses

std::vector<double> values(const std::vector<Tick>& ticks, bool major_only = true) {
  std::vector<double> v;
  for (const Tick& t : ticks) {
    if (t.major || !major_only) v.push_back(t.value);
  }
  return v;
}

std::vector<std::string> labels(const std::vector<Tick>& ticks) {
  std::vector<std::string> v;
  for (const Tick& t : ticks) {
    if (t.major) v.push_back(t.label);
  }
  return v;
}

// ---- ticks and labels ----------------------------------------------------------------------

TEST(PlotTicks, LinearZeroToPointEleven) {
  const auto t = linear_ticks(0, 0.11, 8);
  EXPECT_EQ(labels(t), (std::vector<std::string>{"0", "0.02", "0.04", "0.06", "0.08", "0.1"}));
  const auto v = values(t);
  ASSERT_EQ(v.size(), 6u);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], 0.02 * i, 1e-15);
}

TEST(PlotTicks, LinearStepsAreOneTwoFiveAndStayInRange) {
  for (auto [lo, hi] : {std::pair{-3.2e5, 2.9e5}, {0.8, 31.2}, {1e-4, 2.3e-4}, {-1.0, -0.2}}) {
    for (int max_ticks : {3, 5, 8, 12}) {
      const auto v = values(linear_ticks(lo, hi, max_ticks));
      ASSERT_GE(v.size(), 2u) << lo << " " << hi << " " << max_ticks;
      EXPECT_LE(static_cast<int>(v.size()), max_ticks);
      const double step = v[1] - v[0];
      const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
      EXPECT_TRUE(std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 ||
                  std::abs(mantissa - 2.5) < 1e-9 || std::abs(mantissa - 5) < 1e-9)
          << "step " << step;
      for (size_t i = 0; i < v.size(); ++i) {
        EXPECT_GE(v[i], lo - 1e-12 * std::abs(lo));
        EXPECT_LE(v[i], hi + 1e-12 * std::abs(hi));
        EXPECT_NEAR(v[i] - v[0], step * i, 1e-9 * step);
      }
    }
  }
}

TEST(PlotTicks, LinearLabelsAreCompact) {
  EXPECT_EQ(labels(linear_ticks(0, 31.5, 7)),
            (std::vector<std::string>{"0", "5", "10", "15", "20", "25", "30"}));
  EXPECT_EQ(labels(linear_ticks(-3.2e5, 3.1e5, 7)),
            (std::vector<std::string>{"-3e5", "-2e5", "-1e5", "0", "1e5", "2e5", "3e5"}));
  EXPECT_EQ(labels(linear_ticks(0.9e-4, 1.6e-4, 4)),
            (std::vector<std::string>{"1e-4", "1.2e-4", "1.4e-4", "1.6e-4"}));
}

TEST(PlotTicks, LogTicksAtDecadesAndRoundMultiples) {
  const auto t = log_ticks(3e-5, 2e-3, 8);
  const auto v = values(t);
  const auto l = labels(t);
  ASSERT_FALSE(v.empty());
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  for (double x : v) {
    EXPECT_GE(x, 3e-5);
    EXPECT_LE(x, 2e-3 * (1 + 1e-12));
    const double m = x / std::pow(10.0, std::floor(std::log10(x) + 1e-9));
    EXPECT_TRUE(std::abs(m - 1) < 1e-9 || std::abs(m - 2) < 1e-9 || std::abs(m - 5) < 1e-9) << x;
  }
  const auto has = [&](double x, const std::string& label) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (std::abs(v[i] - x) < 1e-12 * x) return l[i] == label;
    }
    return false;
  };
  EXPECT_TRUE(has(1e-4, "1e-4"));
  EXPECT_TRUE(has(1e-3, "1e-3"));
  EXPECT_TRUE(has(5e-5, "5e-5"));
}

TEST(PlotTicks, LogTicksOverManyDecadesAreDecadesWithMinorTicks) {
  const auto t = log_ticks(2e-7, 3.0, 8);
  EXPECT_EQ(labels(t),
            (std::vector<std::string>{"1e-6", "1e-5", "1e-4", "1e-3", "1e-2", "1e-1", "1e0"}));
  size_t minor = 0;
  for (const Tick& k : t) minor += !k.major && k.label.empty();
  EXPECT_GE(minor, 8u * 6);  // 2..9 x 10^k in each decade
  // Too many decades for max_ticks: every other one is labelled.
  const auto sparse = labels(log_ticks(1e-12, 1e3, 8));
  EXPECT_LE(sparse.size(), 8u);
  EXPECT_GE(sparse.size(), 4u);
  EXPECT_TRUE(std::find(sparse.begin(), sparse.end(), "1e0") != sparse.end());
}

TEST(PlotTicks, LogTicksOnANarrowRangeStillLabelSeveralValues) {
  const auto t = log_ticks(8.5e-5, 2.2e-4, 7);
  const auto v = values(t);
  EXPECT_GE(v.size(), 3u);
  for (double x : v) {
    EXPECT_GE(x, 8.5e-5);
    EXPECT_LE(x, 2.2e-4);
  }
  for (const std::string& s : labels(t)) EXPECT_FALSE(s.empty());
  // Within [0.01, 1000) log labels are plain numbers.
  EXPECT_EQ(labels(log_ticks(0.005, 200, 8)),
            (std::vector<std::string>{"0.01", "0.1", "1", "10", "100"}));
}

TEST(PlotTicks, DegenerateRanges) {
  EXPECT_TRUE(log_ticks(-1, 10).empty());
  EXPECT_TRUE(linear_ticks(0, std::numeric_limits<double>::infinity()).empty());
  ASSERT_EQ(linear_ticks(0.5, 0.5).size(), 1u);
  EXPECT_EQ(linear_ticks(0.5, 0.5)[0].label, "0.5");
  EXPECT_EQ(values(linear_ticks(10, 0, 3)), values(linear_ticks(0, 10, 3)));
}

TEST(PlotTicks, FormatNumber) {
  EXPECT_EQ(format_number(2.5e-5, true, 1e-15), "2.5e-5");
  EXPECT_EQ(format_number(1e-4, true, 1e-15), "1e-4");
  EXPECT_EQ(format_number(1.2e5, true, 1e-6), "1.2e5");
  EXPECT_EQ(format_number(-3e5, true, 1e-6), "-3e5");
  EXPECT_EQ(format_number(0.02, false, 1e-9), "0.02");
  EXPECT_EQ(format_number(0.1 + 0.2, false, 1e-9), "0.3");
  EXPECT_EQ(format_number(12.0, false, 1e-9), "12");
  EXPECT_EQ(format_number(-1e-17, false, 1e-9), "0");
  EXPECT_EQ(format_number(std::numeric_limits<double>::quiet_NaN(), false, 0), "nan");
}

// ---- canvas and text -------------------------------------------------------------------------

TEST(PlotCanvas, TextInkStaysInsideItsMeasuredBox) {
  for (double scale : {1.0, 2.0, 3.0}) {
    Canvas c(700, 120);
    const std::string s = "Epoch 12: MSE 2.5e-5 (gjpqy)";
    c.text(10, 20, s, kBlack, scale);
    int x0 = 1 << 20, x1 = -1, y0 = 1 << 20, y1 = -1;
    for (int y = 0; y < c.height(); ++y) {
      for (int x = 0; x < c.width(); ++x) {
        if (c.pixel(x, y).r < 128) {
          x0 = std::min(x0, x);
          x1 = std::max(x1, x);
          y0 = std::min(y0, y);
          y1 = std::max(y1, y);
        }
      }
    }
    ASSERT_GE(x1, 0) << "no ink at scale " << scale;
    EXPECT_GE(x0, 10);
    EXPECT_GE(y0, 20);
    EXPECT_LT(x1, 10 + text_width(s, scale));
    EXPECT_LT(y1, 20 + text_height(s, scale));
    EXPECT_GT(x1 - x0 + 1, text_width(s, scale) - 2 * scale);   // it is not much smaller either
    EXPECT_GT(y1 - y0 + 1, text_height(s, scale) - 1 * scale);  // the descenders reach down
  }
}

TEST(PlotCanvas, VerticalTextReadsUpwards) {
  Canvas c(60, 200);
  // "L" then a long run of "-": the L, at the start, must end up at the bottom.
  c.text(30, 100, "L-----------", kBlack, 2, HAlign::kCenter, VAlign::kCenter, true);
  int first = -1, last = -1;
  for (int y = 0; y < c.height(); ++y) {
    for (int x = 0; x < c.width(); ++x) {
      if (c.pixel(x, y).r < 128) {
        if (first < 0) first = y;
        last = y;
      }
    }
  }
  ASSERT_GE(first, 0);
  EXPECT_NEAR((first + last) / 2.0, 100, 2);  // centred where asked
  EXPECT_NEAR(last - first + 1, text_width("L-----------", 2), 3);
  // The L's upright is 7 font pixels long: a tall-ish horizontal run of ink near the bottom.
  int widest_low = 0;
  for (int y = last - 6; y <= last; ++y) {
    int run = 0;
    for (int x = 0; x < c.width(); ++x) run += c.pixel(x, y).r < 128;
    widest_low = std::max(widest_low, run);
  }
  EXPECT_GE(widest_low, 12);
}

TEST(PlotCanvas, TranslucentPolylineJoinsAreNotDoublePainted) {
  Canvas c(100, 100);
  c.polyline({10, 50, 90}, {50, 50, 50}, Color{0, 0, 0, 128}, 3);
  // The joint at x = 50 is as dark as the middle of each segment.
  EXPECT_EQ(c.pixel(50, 50), c.pixel(30, 50));
  EXPECT_EQ(c.pixel(50, 50), c.pixel(70, 50));
  EXPECT_NEAR(c.pixel(30, 50).r, 127, 1);
}

TEST_F(PlotFiles, PngRoundTripAndAtomicReplace) {
  Canvas c(37, 23, Color{10, 20, 30});
  c.fill_rect(5, 6, 7, 8, Color{250, 128, 1});
  const std::string p = path("round.png");
  write_png(p, c);
  write_png(p, c);  // replacing an existing file goes through a temporary too
  EXPECT_EQ(files(), std::vector<std::string>{"round.png"});  // no temporary left behind
  const Image im = load_png(p);
  ASSERT_EQ(im.width, 37);
  ASSERT_EQ(im.height, 23);
  EXPECT_EQ(im.at(5, 6), (Color{250, 128, 1}));
  EXPECT_EQ(im.at(0, 0), (Color{10, 20, 30}));
  EXPECT_EQ(read_png(p).rgb(), c.rgb());
}

// ---- charts ----------------------------------------------------------------------------------

TEST_F(PlotFiles, LineChartIsAPngOfTheRequestedSize) {
  ChartOptions o;
  o.width = 640;
  o.height = 400;
  o.title = "MSE";
  line_chart(path("a.png"), {{"train", {1, 2, 3}, {3, 2, 1}}}, o);
  const Image im = load_png(path("a.png"));
  EXPECT_EQ(im.width, 640);
  EXPECT_EQ(im.height, 400);
  EXPECT_EQ(files(), std::vector<std::string>{"a.png"});
}

// A flat run then a rise: (0, 0) -> (0.5, 0) -> (1, 1). Flipping x puts the flat part on the
// right, flipping y puts it at the top; either (or both) fails this.
TEST_F(PlotFiles, SeriesPixelsLandWhereTheDataSays) {
  ChartOptions o;
  line_chart(path("kink.png"), {{"", {0, 0.5, 1}, {0, 0, 1}, kMagenta}}, o);
  const Image im = load_png(path("kink.png"));
  const auto px = pixels_of(im, kMagenta);
  ASSERT_GT(px.size(), 200u);
  int xmin = im.width, xmax = 0, ymin = im.height, ymax = 0;
  for (const Pixel& p : px) {
    xmin = std::min(xmin, p.x);
    xmax = std::max(xmax, p.x);
    ymin = std::min(ymin, p.y);
    ymax = std::max(ymax, p.y);
  }
  EXPECT_GT(xmax - xmin, im.width / 2);  // the series spans most of the width
  std::vector<double> left, right;
  for (const Pixel& p : px) {
    if (p.x < xmin + 0.3 * (xmax - xmin)) left.push_back(p.y);
    if (p.x > xmin + 0.95 * (xmax - xmin)) right.push_back(p.y);
  }
  ASSERT_FALSE(left.empty());
  ASSERT_FALSE(right.empty());
  // Image rows grow downwards: the flat low part is at the bottom, the end of the rise at the top.
  EXPECT_NEAR(median(left), ymax, 2.5);
  EXPECT_LT(median(right), ymin + 0.1 * (ymax - ymin));
  // And the flat part really is flat.
  for (double y : left) EXPECT_NEAR(y, median(left), 2);
}

// Per column, the mean row of the series' pixels; largest distance from the straight line
// through the first and last column.
double curvature_px(const Image& im, Color c) {
  std::vector<double> sum(im.width, 0), count(im.width, 0);
  for (const Pixel& p : pixels_of(im, c)) {
    sum[p.x] += p.y;
    count[p.x] += 1;
  }
  int a = -1, b = -1;
  for (int x = 0; x < im.width; ++x) {
    if (count[x] > 0) {
      if (a < 0) a = x;
      b = x;
    }
  }
  if (a < 0 || b - a < 10) return std::numeric_limits<double>::infinity();
  // Ends are round caps: measure between points a few pixels in.
  a += 4;
  b -= 4;
  while (count[a] == 0) ++a;
  while (count[b] == 0) --b;
  const double ya = sum[a] / count[a], yb = sum[b] / count[b];
  double worst = 0;
  for (int x = a; x <= b; ++x) {
    if (count[x] == 0) continue;
    worst = std::max(worst, std::abs(sum[x] / count[x] - (ya + (yb - ya) * (x - a) / (b - a))));
  }
  return worst;
}

TEST_F(PlotFiles, LogYStraightensExponentialData) {
  std::vector<double> x, y;
  for (int i = 0; i <= 40; ++i) {
    x.push_back(i);
    y.push_back(3e-5 * std::pow(10.0, i / 10.0));  // 3e-5 .. 0.3
  }
  ChartOptions o;
  o.log_y = true;
  line_chart(path("log.png"), {{"", x, y, kMagenta}}, o);
  o.log_y = false;
  line_chart(path("lin.png"), {{"", x, y, kMagenta}}, o);
  EXPECT_LT(curvature_px(load_png(path("log.png")), kMagenta), 2.0);
  EXPECT_GT(curvature_px(load_png(path("lin.png")), kMagenta), 50.0);
}

// First row from the top in which most pixels have the frame's colour.
int frame_top(const Image& im) {
  for (int y = 0; y < im.height; ++y) {
    int n = 0;
    for (int x = 0; x < im.width; ++x) n += near(im.at(x, y), Color{64, 64, 64}, 8);
    if (n > im.width / 3) return y;
  }
  return -1;
}

int dark_pixels(const Image& im, int x0, int y0, int x1, int y1) {
  int n = 0;
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) n += im.at(x, y).r < 100;
  }
  return n;
}

TEST_F(PlotFiles, TitlePutsInkAboveThePlot) {
  ChartOptions o;
  o.title = "Validation MSE per epoch";
  const std::vector<Series> s = {{"train", {1, 2, 3}, {1, 2, 3}}};
  line_chart(path("titled.png"), s, o);
  o.title.clear();
  line_chart(path("plain.png"), s, o);
  const Image titled = load_png(path("titled.png")), plain = load_png(path("plain.png"));
  const int t = frame_top(titled), p = frame_top(plain);
  ASSERT_GT(t, 0);
  ASSERT_GT(p, 0);
  EXPECT_GT(t, p);  // the title pushes the plot down
  const int w = titled.width;
  EXPECT_GT(dark_pixels(titled, w / 4, 0, 3 * w / 4, t), 100);
  EXPECT_EQ(dark_pixels(plain, w / 4, 0, 3 * w / 4, p), 0);
}

// The longest horizontal run of pixels near colour c (a legend's line sample is one): its length
// and first column.
struct ColourRun {
  int length = 0, x0 = -1;
};
ColourRun longest_run(const Image& im, Color c) {
  ColourRun best;
  for (int y = 0; y < im.height; ++y) {
    int run = 0;
    for (int x = 0; x < im.width; ++x) {
      run = near(im.at(x, y), c, 12) ? run + 1 : 0;
      if (run > best.length) best = {run, x - run + 1};
    }
  }
  return best;
}

TEST_F(PlotFiles, AxisLabelsAndLegendAreDrawn) {
  ChartOptions o;
  o.xlabel = "epoch";
  o.ylabel = "MSE";
  o.hline = 2.13e-4;
  o.hline_label = "predict the mean";
  line_chart(path("full.png"), {{"train", {1, 2, 3}, {2e-4, 1.5e-4, 1e-4}, kMagenta}}, o);
  const Image im = load_png(path("full.png"));
  // The y label leaves ink in the leftmost strip, the x label along the bottom.
  EXPECT_GT(dark_pixels(im, 0, im.height / 3, 30, 2 * im.height / 3), 20);
  EXPECT_GT(dark_pixels(im, im.width / 3, im.height - 30, 2 * im.width / 3, im.height), 20);
  // The legend's line sample is a long horizontal run of the series' colour; the data line
  // itself falls too steeply to make one.
  EXPECT_GE(longest_run(im, kMagenta).length, 20);
}

// Rightmost column in which most rows have the frame's colour.
int frame_right(const Image& im) {
  for (int x = im.width - 1; x >= 0; --x) {
    int n = 0;
    for (int y = 0; y < im.height; ++y) n += near(im.at(x, y), Color{64, 64, 64}, 8);
    if (n > im.height / 3) return x;
  }
  return -1;
}

TEST_F(PlotFiles, LegendOutsideSitsRightOfANarrowerFrame) {
  ChartOptions o;
  const std::vector<Series> s = {{"a long label for one run", {1, 2, 3}, {3, 1, 2}, kMagenta}};
  line_chart(path("inside.png"), s, o);
  o.legend_outside = true;
  line_chart(path("outside.png"), s, o);
  const Image in = load_png(path("inside.png")), out = load_png(path("outside.png"));
  ASSERT_EQ(out.width, in.width);
  const int r_in = frame_right(in), r_out = frame_right(out);
  ASSERT_GT(r_in, 0);
  ASSERT_GT(r_out, 0);
  EXPECT_LT(r_out, r_in - 150);  // the frame gives up the legend's width
  // The legend's line sample (the longest horizontal run of the series' colour) starts right of
  // the frame, and the label's ink is there too.
  const ColourRun sample = longest_run(out, kMagenta);
  EXPECT_GE(sample.length, 20);
  EXPECT_GT(sample.x0, r_out);
  EXPECT_GT(dark_pixels(out, r_out + 1, 0, out.width, out.height), 100);
}

TEST_F(PlotFiles, BadPointsAndOddSeriesDoNotCrash) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  ChartOptions o;
  o.log_y = true;
  o.hline = -1;  // invisible on a log axis: skipped
  const std::vector<Series> s = {
      {"gaps", {0, 1, 2, 3, 4, 5}, {1e-3, nan, 2e-3, inf, -1, 0}},
      {"empty", {}, {}},
      {"single", {2.5}, {5e-4}, kMagenta},
      {"all bad", {nan, 1}, {1, nan}},
  };
  EXPECT_NO_THROW(line_chart(path("bad.png"), s, o));
  const Image im = load_png(path("bad.png"));
  EXPECT_EQ(im.width, 800);
  // The single point is drawn (as a marker), and its legend entry too.
  EXPECT_GT(pixels_of(im, kMagenta).size(), 20u);

  ChartOptions flat;
  EXPECT_NO_THROW(line_chart(path("flat.png"), {{"c", {1, 2, 3}, {7, 7, 7}}}, flat));
  EXPECT_NO_THROW(line_chart(path("zero.png"), {{"z", {0, 0}, {0, 0}}}, flat));
  EXPECT_NO_THROW(line_chart(path("none.png"), {}, flat));
  EXPECT_NO_THROW(scatter_chart(path("s.png"), {nan, 1, inf}, {1, nan, 2}, flat));
  EXPECT_NO_THROW(scatter_chart(path("s0.png"), {}, {}, flat));
  EXPECT_NO_THROW(scatter_chart(path("s1.png"), {0.5}, {0.5}, flat));
}

TEST_F(PlotFiles, UnwritablePathThrowsNamingTheFile) {
  const std::string missing = "/nonexistent-halo-dir/sub/curves.png";
  try {
    line_chart(missing, {{"a", {1, 2}, {1, 2}}}, ChartOptions{});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  // A directory in the way: the rename fails, and the temporary is cleaned up.
  fs::create_directories(dir_ / "taken.png");
  try {
    scatter_chart(path("taken.png"), {1, 2}, {1, 2}, ChartOptions{});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path("taken.png")), std::string::npos) << e.what();
  }
  EXPECT_EQ(files(), std::vector<std::string>{"taken.png"});
}

TEST_F(PlotFiles, BadArgumentsThrow) {
  ChartOptions o;
  EXPECT_THROW(line_chart(path("x.png"), {{"a", {1, 2, 3}, {1, 2}}}, o), std::invalid_argument);
  EXPECT_THROW(scatter_chart(path("x.png"), {1, 2}, {1}, o), std::invalid_argument);
  o.width = 50;
  EXPECT_THROW(line_chart(path("x.png"), {}, o), std::invalid_argument);
  o = ChartOptions{};
  o.y_min = 2;
  o.y_max = 1;
  EXPECT_THROW(line_chart(path("x.png"), {}, o), std::invalid_argument);
  o = ChartOptions{};
  o.log_y = true;
  o.y_min = 0;
  EXPECT_THROW(line_chart(path("x.png"), {}, o), std::invalid_argument);
  EXPECT_TRUE(files().empty());
}

TEST_F(PlotFiles, ScatterIsSquareAndFollowsTheDiagonal) {
  std::vector<double> t, p;
  for (int i = 0; i < 500; ++i) {
    t.push_back(0.003 + 0.107 * i / 499.0);
    p.push_back(t.back() * (1 + 0.05 * std::sin(i)));
  }
  ChartOptions o;
  o.width = 700;
  o.height = 500;
  scatter_chart(path("sc.png"), t, p, o);
  const Image im = load_png(path("sc.png"));
  ASSERT_EQ(im.width, 700);
  // Translucent blue markers: blue clearly above red.
  std::vector<Pixel> blue;
  for (int y = 0; y < im.height; ++y) {
    for (int x = 0; x < im.width; ++x) {
      const Color c = im.at(x, y);
      if (c.b > c.r + 60 && c.b > 150) blue.push_back({x, y});
    }
  }
  ASSERT_GT(blue.size(), 500u);
  int xmin = im.width, xmax = 0;
  for (const Pixel& q : blue) {
    xmin = std::min(xmin, q.x);
    xmax = std::max(xmax, q.x);
  }
  std::vector<double> left, right;
  for (const Pixel& q : blue) {
    if (q.x < xmin + (xmax - xmin) / 4) left.push_back(q.y);
    if (q.x > xmax - (xmax - xmin) / 4) right.push_back(q.y);
  }
  EXPECT_GT(median(left), median(right) + 100);  // rising left to right, as y = x does
  // The plot area is square: the frame's width equals its height. Its sides are the columns that
  // are frame-coloured all along the first 50 rows of the plot.
  const Color frame{64, 64, 64};
  const int top = frame_top(im);
  ASSERT_GT(top, 0);
  std::vector<int> sides;
  for (int x = 0; x < im.width; ++x) {
    int n = 0;
    for (int y = top; y < top + 50; ++y) n += near(im.at(x, y), frame, 2);
    if (n == 50) sides.push_back(x);
  }
  ASSERT_EQ(sides.size(), 2u);
  const int fx0 = sides[0], fx1 = sides[1];
  // The bottom edge, found upwards from the image's foot next to the right side, where no tick
  // mark or data is.
  int bottom = im.height - 1;
  while (bottom > top && !near(im.at(fx1 - 2, bottom), frame, 2)) --bottom;
  EXPECT_NEAR(fx1 - fx0, bottom - top, 1);
}

// Writes the example figures of docs/img/ (realistic training curves and a predicted-vs-true
// scatter) into the folder named by HALO_PLOT_EXAMPLES, e.g.
//   HALO_PLOT_EXAMPLES=docs/img build/tests/test_apps --gtest_filter='PlotExamples.*'
TEST(PlotExamples, WriteDocsImages) {
  const char* dir = std::getenv("HALO_PLOT_EXAMPLES");
  if (dir == nullptr || *dir == '\0')
    GTEST_SKIP() << "set HALO_PLOT_EXAMPLES=<folder> to write them";
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 1);
  std::vector<double> epoch, train, val;
  for (int e = 1; e <= 30; ++e) {
    epoch.push_back(e);
    train.push_back(0.98e-4 + 2.3e-4 * std::exp(-e / 5.0) * (1 + 0.03 * noise(rng)));
    val.push_back(1.22e-4 + 1.7e-4 * std::exp(-e / 6.0) + 3.5e-6 * noise(rng));
  }
  ChartOptions c;
  c.title = "ResNet-18: mean squared error per epoch";
  c.xlabel = "epoch";
  c.ylabel = "MSE";
  c.log_y = true;
  c.hline = 2.13e-4;
  c.hline_label = "predict the mean";
  line_chart(std::string(dir) + "/example_curves.png",
             {{"train", epoch, train}, {"validation", epoch, val, std::nullopt, true, true}}, c);

  std::vector<double> truth, pred;
  std::uniform_real_distribution<double> label(0.003, 0.11);
  double se = 0, var = 0, mean = 0;
  for (int i = 0; i < 2000; ++i) {
    truth.push_back(label(rng));
    mean += truth.back() / 2000;
  }
  for (double t : truth) {
    // A regressor that shrinks towards the mean a little and is noisy.
    pred.push_back(t + 0.12 * (0.0565 - t) + 0.0075 * noise(rng));
    se += (pred.back() - t) * (pred.back() - t);
    var += (t - mean) * (t - mean);
  }
  ChartOptions s;
  s.title = "Validation set: predicted vs true";
  s.xlabel = "true substructure mass fraction";
  s.ylabel = "predicted";
  s.width = 640;
  s.height = 600;
  const double mse = se / truth.size(), r2 = 1 - se / var;
  s.notes = {"MSE " + format_number(mse, true, mse * 5e-3),
             "R^2 " + format_number(r2, false, 5e-4)};
  scatter_chart(std::string(dir) + "/example_scatter.png", truth, pred, s);
}

}  // namespace
}  // namespace halo::plot
