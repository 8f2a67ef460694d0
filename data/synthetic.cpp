// The Gaussian-blob regression of synthetic.h.
#include "data/synthetic.h"

#include <cmath>
#include <random>

namespace halo::data {

BlobBatch make_blob_batch(int n, int size, uint64_t seed, uint64_t index) {
  BlobBatch b;
  b.n = n;
  b.size = size;
  b.images.resize(static_cast<std::size_t>(n) * size * size);
  b.labels.resize(n);
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + index);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  const double lo = 1.0, hi = size / 4.0;
  const double mean = 0.5 * (lo + hi), sd = (hi - lo) / std::sqrt(12.0);
  for (int i = 0; i < n; ++i) {
    const double sigma = lo + (hi - lo) * u01(rng);
    const double cx = size / 2.0 + (u01(rng) - 0.5) * size / 4.0;
    const double cy = size / 2.0 + (u01(rng) - 0.5) * size / 4.0;
    float* img = &b.images[static_cast<std::size_t>(i) * size * size];
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const double r2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
        img[y * size + x] = static_cast<float>(4.0 * std::exp(-r2 / (2 * sigma * sigma)) - 1.0 +
                                               0.05 * (u01(rng) - 0.5));
      }
    b.labels[i] = static_cast<float>((sigma - mean) / sd);
  }
  return b;
}

}  // namespace halo::data
