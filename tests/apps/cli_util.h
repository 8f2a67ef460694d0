// Helpers for the tests that run the executables as a user does: a shell command with its output,
// the path of a built app (skipping a test whose app was not built), files and CSV tables read
// back, and small tools for the numbers the apps write.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace halo::test {

struct CmdResult {
  int code = -1;       // exit status; -1 if the command did not exit normally (a signal)
  std::string output;  // stdout and stderr together
};

// Runs a shell command, capturing stdout and stderr together.
inline CmdResult run_cmd(const std::string& cmd) {
  CmdResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf;
  while (p && fgets(buf.data(), buf.size(), p)) r.output += buf.data();
  const int st = p ? pclose(p) : -1;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline std::string app_path(const std::string& name) {
  return std::string(HALO_BINARY_DIR) + "/apps/" + name;
}
// The command that runs app `name` with one OpenMP thread: ctest runs two tests at once on CI's two
// cores, and the runs here are too small to gain from more.
inline std::string app(const std::string& name) {
  return "OMP_NUM_THREADS=1 " + app_path(name);
}

// The tests of apps that test_apps does not depend on in the build (model_tool, halo_demo,
// simulate_lenses) skip, saying so, where the app was not built.
#define HALO_REQUIRE_APP(name)                                                       \
  do {                                                                               \
    if (!std::filesystem::exists(::halo::test::app_path(name)))                      \
      GTEST_SKIP() << ::halo::test::app_path(name)                                   \
                   << " is not built (cmake --build build --target " << name << ")"; \
  } while (0)

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A comma-separated table with a header line (metrics.csv, predictions.csv).
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int col(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return int(i);
    ADD_FAILURE() << "no column '" << name << "'";
    return 0;
  }
  double num(std::size_t row, const std::string& name) const {
    return std::stod(rows.at(row).at(col(name)));
  }
  std::vector<double> column(const std::string& name) const {
    std::vector<double> v;
    for (std::size_t r = 0; r < rows.size(); ++r) v.push_back(num(r, name));
    return v;
  }
  std::vector<std::string> text_column(const std::string& name) const {
    std::vector<std::string> v;
    for (const auto& r : rows) v.push_back(r.at(col(name)));
    return v;
  }
};

inline std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string f; std::getline(ss, f, ',');) out.push_back(f);
  return out;
}

inline Csv read_csv(const std::string& path) {
  Csv c;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) {
    ADD_FAILURE() << path << ": missing or empty";
    return c;
  }
  c.header = split_commas(line);
  while (std::getline(in, line))
    if (!line.empty()) c.rows.push_back(split_commas(line));
  return c;
}

// The number that follows `key` in `text` (e.g. "MSE " in "MSE 1.2e-04  R2 0.5"); NaN if absent.
inline double number_after(const std::string& text, const std::string& key) {
  const std::size_t at = text.find(key);
  if (at == std::string::npos) return NAN;
  return std::strtod(text.c_str() + at + key.size(), nullptr);
}

// Every line of `text` that contains `part`.
inline std::vector<std::string> lines_with(const std::string& text, const std::string& part) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);)
    if (contains(l, part)) out.push_back(l);
  return out;
}

}  // namespace halo::test
