// Test helpers shared by the data and app tests: a temporary folder removed at the end of the test,
// and a check that a call throws std::runtime_error with a message naming what went wrong.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace halo::test {

// A fresh folder under the system's temporary directory, unique per process and instance.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "halo_test") {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// Expects `fn` to throw std::runtime_error whose message contains every one of `parts`.
template <class F>
void expect_error(F fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-runtime_error: " << e.what();
    return;
  }
  ADD_FAILURE() << "did not throw (expected an error mentioning '" << (parts.empty() ? "" : parts[0]) << "')";
}

}  // namespace halo::test
