// A learnable synthetic regression for demos and tests: images of one Gaussian blob whose width
// is the label. Plain floats, no engine types (data/ knows nothing of the engine).
#pragma once
#include <cstdint>
#include <vector>

namespace halo::data {

struct BlobBatch {
  int n = 0, size = 0;
  std::vector<float> images;  // [n, 1, size, size], roughly zero-mean, unit-variance
  std::vector<float> labels;  // [n], the blob's width sigma in pixels, standardised
};

// Batch number `index` of the stream for `seed` (deterministic). The blob centre is drawn near the
// middle, its width sigma from U(1, size/4); the label is (sigma - mean) / std of that uniform.
BlobBatch make_blob_batch(int n, int size, uint64_t seed, uint64_t index);

}  // namespace halo::data
