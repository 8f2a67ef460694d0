// A small embedded bitmap font for the PNG plots (halo::plot): printable ASCII 32..126, each glyph
// drawn on a 5-wide, 9-tall grid (7 rows down to the baseline, 2 for descenders), kept here as a
// readable "font sheet" and turned into bit rows at compile time. No FreeType, no files to ship.
#pragma once

#include <array>
#include <cstdint>

namespace halo::plot::font {

inline constexpr int kGlyphWidth = 5;    // columns on the grid
inline constexpr int kGlyphHeight = 9;   // rows on the grid: 7 above and on the baseline, 2 below
inline constexpr int kAscent = 7;        // rows from the top of the grid to below the baseline
inline constexpr int kSpacing = 1;       // blank columns between neighbouring glyphs
inline constexpr int kSpaceAdvance = 4;  // advance of ' '
inline constexpr int kFirstChar = 32, kLastChar = 126;

// One glyph: bit c of rows[r] (c = 0 is the leftmost column) is ink. The font is proportional:
// `left` is the first inked column and `width` the inked width, except for digits, which keep the
// full 5 columns so that tick labels line up.
struct Glyph {
  std::array<uint8_t, kGlyphHeight> rows{};
  int left = 0;
  int width = 0;
};

namespace detail {

inline constexpr int kPerStrip = 12;  // glyphs side by side on one line of the sheet

// Glyphs kPerStrip to a strip, in code order from ' '; '#' is ink, '.' is paper, one blank
// column between glyphs. Regenerating it by hand is fine: build() checks every row's shape.
inline constexpr const char* kSheet[] = {
    // space !     "     #     $     %     &     '     (     )     *     +
    "..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... .....",
    "..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#..",
    "..... ..#.. .#.#. ##### #.#.. ...#. #.#.. .#... .#... ...#. #.#.# ..#..",
    "..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. #####",
    "..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#..",
    "..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#..",
    "..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    // ,     -     .     /     0     1     2     3     4     5     6     7
    "..... ..... ..... ....# .###. ..#.. .###. ##### ...#. ##### ..##. #####",
    "..... ..... ..... ....# #...# .##.. #...# ...#. ..##. #.... .#... ....#",
    "..... ..... ..... ...#. #..## ..#.. ....# ..#.. .#.#. ####. #.... ...#.",
    "..... .###. ..... ..#.. #.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#..",
    "..... ..... ..... .#... ##..# ..#.. ..#.. ....# ##### ....# #...# .#...",
    "..#.. ..... ..... #.... #...# ..#.. .#... #...# ...#. #...# #...# .#...",
    "..#.. ..... ..#.. #.... .###. .###. ##### .###. ...#. .###. .###. .#...",
    ".#... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    // 8     9     :     ;     <     =     >     ?     @     A     B     C
    ".###. .###. ..... ..... ...#. ..... .#... .###. .###. .###. ####. .###.",
    "#...# #...# ..... ..... ..#.. ..... ..#.. #...# #...# #...# #...# #...#",
    "#...# #...# ..#.. ..#.. .#... ##### ...#. ....# #.### #...# #...# #....",
    ".###. .#### ..... ..... #.... ..... ....# ...#. #.#.# ##### ####. #....",
    "#...# ....# ..... ..... .#... ##### ...#. ..#.. #.### #...# #...# #....",
    "#...# ...#. ..#.. ..#.. ..#.. ..... ..#.. ..... #.... #...# #...# #...#",
    ".###. .##.. ..... ..#.. ...#. ..... .#... ..#.. .###. #...# ####. .###.",
    "..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    // D     E     F     G     H     I     J     K     L     M     N     O
    "####. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.",
    "#...# #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#",
    "#...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#",
    "#...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#",
    "#...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#",
    "#...# #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#",
    "####. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    // P     Q     R     S     T     U     V     W     X     Y     Z     [
    "####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###.",
    "#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#...",
    "#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#...",
    "####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#...",
    "#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#...",
    "#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#...",
    "#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###.",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    // \     ]     ^     _     `     a     b     c     d     e     f     g
    "#.... .###. ..#.. ..... .#... ..... #.... ..... ....# ..... ..##. .....",
    "#.... ...#. .#.#. ..... ..#.. ..... #.... ..... ....# ..... .#..# .....",
    ".#... ...#. #...# ..... ...#. .###. #.##. .###. .##.# .###. .#... .####",
    "..#.. ...#. ..... ..... ..... ....# ##..# #.... #..## #...# ###.. #...#",
    "...#. ...#. ..... ..... ..... .#### #...# #.... #...# ##### .#... #...#",
    "....# ...#. ..... ..... ..... #...# #...# #...# #...# #.... .#... #...#",
    "....# .###. ..... ..... ..... .#### ####. .###. .#### .###. .#... .####",
    "..... ..... ..... ##### ..... ..... ..... ..... ..... ..... ..... ....#",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .###.",
    // h     i     j     k     l     m     n     o     p     q     r     s
    "#.... ..#.. ...#. #.... .##.. ..... ..... ..... ..... ..... ..... .....",
    "#.... ..... ..... #.... ..#.. ..... ..... ..... ..... ..... ..... .....",
    "#.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###. ####. .#### #.##. .####",
    "##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...# #...# #...# ##..# #....",
    "#...# ..#.. ...#. ##... ..#.. #.#.# #...# #...# #...# #...# #.... .###.",
    "#...# ..#.. ...#. #.#.. ..#.. #...# #...# #...# #...# #...# #.... ....#",
    "#...# .###. ...#. #..#. .###. #...# #...# .###. ####. .#### #.... ####.",
    "..... ..... #..#. ..... ..... ..... ..... ..... #.... ....# ..... .....",
    "..... ..... .##.. ..... ..... ..... ..... ..... #.... ....# ..... .....",
    // t     u     v     w     x     y     z     {     |     }     ~
    ".#... ..... ..... ..... ..... ..... ..... ...## ..#.. ##... .....",
    ".#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. .....",
    "###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#...",
    ".#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.#",
    ".#... #...# #...# #.#.# ..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#.",
    ".#..# #..## .#.#. #.#.# .#.#. #...# .#... ..#.. ..#.. ..#.. .....",
    "..##. .##.# ..#.. .#.#. #...# .#### ##### ...## ..#.. ##... .....",
    "..... ..... ..... ..... ..... ....# ..... ..... ..#.. ..... .....",
    "..... ..... ..... ..... ..... .###. ..... ..... ..... ..... .....",
};

inline constexpr int kCount = kLastChar - kFirstChar + 1;
inline constexpr int kStrips = (kCount + kPerStrip - 1) / kPerStrip;
static_assert(sizeof(kSheet) / sizeof(kSheet[0]) == kStrips * kGlyphHeight,
              "font sheet: wrong number of lines");

constexpr int length(const char* s) {
  int n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

// Parses the sheet; a malformed line makes this throw, which in a constant expression is a
// compile error pointing here.
constexpr std::array<Glyph, kCount> build() {
  std::array<Glyph, kCount> glyphs{};
  for (int i = 0; i < kCount; ++i) {
    const int strip = i / kPerStrip, slot = i % kPerStrip;
    const int in_strip = (strip == kStrips - 1) ? kCount - strip * kPerStrip : kPerStrip;
    Glyph& g = glyphs[i];
    int lo = kGlyphWidth, hi = -1;
    for (int r = 0; r < kGlyphHeight; ++r) {
      const char* line = kSheet[strip * kGlyphHeight + r];
      if (length(line) != in_strip * (kGlyphWidth + 1) - 1) throw "font sheet: bad line length";
      for (int c = 0; c < kGlyphWidth; ++c) {
        const char p = line[slot * (kGlyphWidth + 1) + c];
        if (p != '#' && p != '.') throw "font sheet: only '#' and '.' allowed";
        if (p == '#') {
          g.rows[r] = static_cast<uint8_t>(g.rows[r] | (1u << c));
          lo = c < lo ? c : lo;
          hi = c > hi ? c : hi;
        }
      }
    }
    const char ch = static_cast<char>(kFirstChar + i);
    if (hi < 0 || (ch >= '0' && ch <= '9')) {
      g.left = 0;
      g.width = hi < 0 ? kSpaceAdvance - kSpacing : kGlyphWidth;
    } else {
      g.left = lo;
      g.width = hi - lo + 1;
    }
  }
  return glyphs;
}

inline constexpr std::array<Glyph, kCount> kGlyphs = build();

}  // namespace detail

// The glyph for c; characters outside 32..126 draw as '?'.
constexpr const Glyph& glyph(char c) {
  const int code = static_cast<unsigned char>(c);
  const int i = (code < kFirstChar || code > kLastChar) ? '?' - kFirstChar : code - kFirstChar;
  return detail::kGlyphs[i];
}

// Horizontal distance from this glyph's origin to the next one's, in grid columns.
constexpr int advance(char c) {
  return glyph(c).width + kSpacing;
}

}  // namespace halo::plot::font
