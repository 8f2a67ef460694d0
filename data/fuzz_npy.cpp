// libFuzzer target for the .npy / pickle / DeepLense readers (built by scripts/fuzz.sh with clang's
// -fsanitize=fuzzer,address,undefined; the main CMake build skips fuzz_*.cpp). Any input must
// either parse or throw std::runtime_error; anything else (a crash, a sanitizer report, another
// exception type) is a bug. Inputs that parse as a labelled DeepLense record are re-encoded and
// re-read, and must come back identical.
//
// Built with -DHALO_FUZZ_SEEDS instead, it is a small program that writes a seed corpus of small,
// valid files into the folder given as its argument.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/deeplense.h"
#include "data/npy.h"

using namespace halo::data;

#ifndef HALO_FUZZ_SEEDS

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  NpyFile f;
  try {
    f = read_npy_memory(std::span<const uint8_t>(data, size), "fuzz-input");
  } catch (const std::runtime_error&) {
    return 0;  // a clean, explained rejection
  }
  // Touch every value of what was read (catches wrong sizes that slipped through).
  double sink = 0;
  if (!f.is_object) {
    for (size_t i = 0; i < f.array.size(); ++i) sink += f.array.value(i);
  } else {
    for (const auto& it : f.items)
      if (it.kind == NpyItem::Kind::Array)
        for (size_t i = 0; i < it.array.size(); ++i) sink += it.array.value(i);
  }
  DeepLenseRecord r;
  try {
    r = deeplense_record_from(std::move(f), "fuzz-input");
  } catch (const std::runtime_error&) {
    return sink == 12345.678 ? 1 : 0;
  }
  if (r.label && !std::isnan(*r.label)) {
    // Round trip: what we write must read back to the same image and label.
    DeepLenseRecord back =
        read_deeplense_memory(encode_deeplense(r.image, *r.label), "fuzz-roundtrip");
    if (back.image.shape != r.image.shape || back.image.dtype != r.image.dtype ||
        back.image.bytes != r.image.bytes || !back.label || *back.label != *r.label) {
      std::fprintf(stderr, "round trip changed the record\n");
      std::abort();
    }
  }
  return 0;
}

#else  // HALO_FUZZ_SEEDS: write small valid seeds

static void put(const std::string& dir, const std::string& name, const std::vector<uint8_t>& b) {
  std::FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
  if (!f) {
    std::perror(name.c_str());
    std::exit(1);
  }
  std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
}

template <class T>
static NpyArray ramp(std::vector<int64_t> shape) {
  NpyArray a;
  a.dtype = dtype_of<T>();
  a.shape = shape;
  a.bytes.resize(a.size() * sizeof(T));
  T* p = a.data<T>();
  for (size_t i = 0; i < a.size(); ++i) p[i] = static_cast<T>((i * 7) % 23);
  return a;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  put(dir, "dl_i8_4x4.npy", encode_deeplense(ramp<int64_t>({4, 4}), 0.0421));
  put(dir, "dl_f4_3x5.npy", encode_deeplense(ramp<float>({3, 5}), 0.011));
  put(dir, "dl_u2_2x2.npy", encode_deeplense(ramp<uint16_t>({2, 2}), 0.09));
  put(dir, "dl_u1_300x1.npy", encode_deeplense(ramp<uint8_t>({300, 1}), 0.05));
  put(dir, "plain_f8_3x3.npy", encode_npy(ramp<double>({3, 3})));
  put(dir, "plain_i4_5.npy", encode_npy(ramp<int32_t>({5})));
  put(dir, "plain_u2_0d.npy", encode_npy(ramp<uint16_t>({})));
  // Big-endian and version 2 / 3 headers of the same small array.
  std::vector<uint8_t> be = encode_npy(ramp<int32_t>({2, 3}));
  for (size_t i = 0; i < be.size(); ++i)
    if (be[i] == '<') {
      be[i] = '>';
      break;
    }
  put(dir, "plain_be_i4.npy", be);
  std::vector<uint8_t> v2 = encode_npy(ramp<float>({2, 2}));
  v2[6] = 2;
  v2.insert(v2.begin() + 10, {0, 0});  // 4-byte header length: same value, two more zero bytes
  put(dir, "plain_v2_f4.npy", v2);
  v2[6] = 3;
  put(dir, "plain_v3_f4.npy", v2);
  return 0;
}

#endif
