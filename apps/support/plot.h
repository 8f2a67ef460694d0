// halo::plot: PNG figures for the apps without Python — training curves (train and validation MSE
// per epoch, log y, a "predict the mean" baseline) and predicted-vs-true scatter plots, drawn on an
// RGB canvas with anti-aliased strokes and an embedded bitmap font, written with libpng.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace halo::plot {

// ---- colours -------------------------------------------------------------------------------

// 8-bit sRGB with straight (not premultiplied) alpha; a < 255 blends over what is underneath.
struct Color {
  uint8_t r = 0, g = 0, b = 0, a = 255;
  friend bool operator==(const Color&, const Color&) = default;
};

inline constexpr Color kWhite{255, 255, 255};
inline constexpr Color kBlack{0, 0, 0};
// matplotlib's "tab10" cycle, so figures look familiar next to Python ones.
inline constexpr Color kBlue{31, 119, 180};
inline constexpr Color kOrange{255, 127, 14};
inline constexpr Color kGreen{44, 160, 44};
inline constexpr Color kRed{214, 39, 40};
inline constexpr Color kPurple{148, 103, 189};
inline constexpr Color kBrown{140, 86, 75};
inline constexpr Color kPink{227, 119, 194};
inline constexpr Color kGrey{127, 127, 127};
inline constexpr Color kOlive{188, 189, 34};
inline constexpr Color kCyan{23, 190, 207};

// The i-th colour of the tab10 cycle (wrapping around).
Color palette(size_t i);

// ---- canvas --------------------------------------------------------------------------------

enum class HAlign { kLeft, kCenter, kRight };
enum class VAlign { kTop, kCenter, kBaseline, kBottom };

// An RGB image with drawing primitives. Coordinates are in pixels, x to the right and y down;
// pixel (i, j) covers [i, i+1) x [j, j+1), so its centre is (i + 0.5, j + 0.5). Everything drawn
// is limited to the clip rectangle (the whole canvas unless set_clip() says otherwise).
class Canvas {
 public:
  Canvas(int width, int height, Color background = kWhite);

  int width() const { return width_; }
  int height() const { return height_; }
  Color pixel(int x, int y) const;  // a = 255; throws std::out_of_range outside the canvas
  const std::vector<uint8_t>& rgb() const { return rgb_; }  // row-major, 3 bytes a pixel
  std::vector<uint8_t>& rgb() { return rgb_; }

  // Clip to the pixels [x0, x1) x [y0, y1) (intersected with the canvas).
  void set_clip(int x0, int y0, int x1, int y1);
  void reset_clip();

  // Blends c over pixel (x, y) with opacity coverage * c.a / 255; outside the clip it does nothing.
  void blend(int x, int y, Color c, double coverage = 1.0);

  // Axis-aligned filled rectangle [x0, x1) x [y0, y1) in whole pixels (crisp, for grids and boxes).
  void fill_rect(int x0, int y0, int x1, int y1, Color c);
  // A 1-pixel outline just inside [x0, x1) x [y0, y1).
  void rect_outline(int x0, int y0, int x1, int y1, Color c);

  // Anti-aliased strokes of the given width with round ends and joins. A polyline is painted as
  // one shape, so a translucent colour does not darken where its segments overlap. A dash
  // pattern {on, off} in pixels (empty for solid) runs on along the whole polyline.
  void line(double x0, double y0, double x1, double y1, Color c, double width = 1.0,
            const std::vector<double>& dash = {});
  void polyline(const std::vector<double>& xs, const std::vector<double>& ys, Color c,
                double width = 1.0, const std::vector<double>& dash = {});

  // Anti-aliased filled disc.
  void disc(double cx, double cy, double radius, Color c);

  // Text in the embedded 5x7 font (font.h) at `scale` pixels per font pixel. Whole scales are
  // crisp (1 as drawn, 2 and more with diagonals smoothed by Scale2x); other scales are
  // anti-aliased and look soft, half-covered rows and all. (x, y) is the
  // anchor point that `h` and `v` refer to. vertical = true turns the text 90 degrees
  // anticlockwise (reading upwards, as a y-axis label); the alignment then refers to the turned
  // box, h along x and v along y. '\n' starts a new line. bold widens every stroke by a pixel.
  void text(double x, double y, std::string_view s, Color c, double scale = 1.0,
            HAlign h = HAlign::kLeft, VAlign v = VAlign::kTop, bool vertical = false,
            bool bold = false);

 private:
  int width_, height_;
  std::vector<uint8_t> rgb_;
  int clip_x0_, clip_y0_, clip_x1_, clip_y1_;
};

// Size in pixels of `s` drawn by Canvas::text at `scale` (not turned): width of the widest line
// and height of all lines, descenders included.
int text_width(std::string_view s, double scale = 1.0, bool bold = false);
int text_height(std::string_view s, double scale = 1.0);

// ---- PNG files -----------------------------------------------------------------------------

// Writes an 8-bit RGB PNG to a temporary name beside `path` and renames it over `path`, so a
// reader never sees half a file. Throws std::runtime_error naming the file on any failure.
void write_png(const std::string& path, const Canvas& canvas);
// Reads any PNG libpng understands, converted to 8-bit RGB (alpha composited over white). Throws
// std::runtime_error naming the file if it cannot.
Canvas read_png(const std::string& path);

// ---- ticks ---------------------------------------------------------------------------------

struct Tick {
  double value;
  std::string label;  // empty for minor ticks
  bool major = true;  // major ticks get a label and a grid line, minor ones a short mark
};

// Ticks inside [lo, hi] on a linear axis, at multiples of a 1, 2, 2.5 or 5 x 10^k step: the
// smallest such step that gives at most max_ticks of them. Labels are compact: "0", "0.02",
// "1.5e-4", "2e5" (scientific when the largest |tick| is below 1e-3 or at least 1e5).
std::vector<Tick> linear_ticks(double lo, double hi, int max_ticks = 8);

// Ticks inside [lo, hi] (0 < lo < hi) on a log axis: whole decades ("1e-4", "1e-3", with unlabelled
// minor ticks at 2..9 x 10^k) when the range holds at least three of them; otherwise 1, 2, 5 x 10^k
// (minor ticks at the other multiples) if that gives three to max_ticks labels; for narrower
// ranges 1..9 x 10^k or linear_ticks(), whichever labels more.
std::vector<Tick> log_ticks(double lo, double hi, int max_ticks = 8);

// The shortest label for v that is within `tolerance` of it, in fixed ("0.025") or scientific
// ("2.5e-5", no '+' and no leading zeros in the exponent) notation.
std::string format_number(double v, bool scientific, double tolerance);

// ---- charts --------------------------------------------------------------------------------

struct Series {
  std::string label;  // legend text; a series with no label stays out of the legend
  std::vector<double> x, y;
  std::optional<Color> color;  // unset: the tab10 colour of the series' place, palette(i)
  bool line = true;
  bool markers = false;

  // A constructor rather than an aggregate, so that {"train", epochs, mse} builds one without
  // -Wmissing-field-initializers warnings.
  Series() = default;
  Series(std::string label_, std::vector<double> x_, std::vector<double> y_,
         std::optional<Color> color_ = std::nullopt, bool line_ = true, bool markers_ = false)
      : label(std::move(label_)),
        x(std::move(x_)),
        y(std::move(y_)),
        color(color_),
        line(line_),
        markers(markers_) {}
};

struct ChartOptions {
  std::string title, xlabel, ylabel;
  bool log_x = false;
  bool log_y = false;
  int width = 800, height = 500;
  std::optional<double> hline;  // a dashed horizontal reference, e.g. the "predict the mean" MSE
  std::string hline_label;
  // Fixed axis limits; unset ones follow the data (and the hline) with a 5% margin.
  std::optional<double> x_min, x_max, y_min, y_max;
  // Extra lines of text shown in the legend box under the entries, e.g. "MSE 1.2e-4".
  std::vector<std::string> notes;
  // The legend beside the plot (right of the frame, which narrows to make room) instead of in the
  // corner of the plot that hides the fewest data: for many series, which cover every corner.
  bool legend_outside = false;
};

// A line chart, e.g. training and validation loss per epoch. Non-finite points (and, on a log
// axis, points <= 0) are skipped and break the line there; a point with no neighbour to join is
// drawn as a marker. Throws std::invalid_argument if a series' x and y differ in length, the
// size is below 160 x 120 (or leaves no room for the plot beside its labels) or the fixed limits
// are unusable, and std::runtime_error naming the file if it cannot be written.
void line_chart(const std::string& png_path, const std::vector<Series>& series,
                const ChartOptions& options);

// Predicted against true values: small translucent markers, the same range on both axes, a
// square plot area and, if `diagonal`, the dashed line y = x. log_x or log_y makes both axes
// logarithmic. Pairs with a non-finite member are skipped. Throws like line_chart, and
// std::invalid_argument if truth and pred differ in length.
void scatter_chart(const std::string& png_path, const std::vector<double>& truth,
                   const std::vector<double>& pred, const ChartOptions& options,
                   bool diagonal = true);

}  // namespace halo::plot
