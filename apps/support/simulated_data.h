// The default data of train_halo: a simulated preset written once to an HDF5 file in a cache
// folder and reused by later runs with the same settings.
#pragma once
#include <cstdint>
#include <string>

namespace halo::apps {

// Path of "<cache_dir>/<preset>_<count>x<size>_seed<seed>.h5", simulating it first (all cores,
// progress on stderr unless `progress` is false) if it does not exist yet. A cached file that
// cannot be opened is an error naming it (delete it to re-simulate); the file is written to a
// temporary name and renamed.
std::string simulated_dataset(const std::string& cache_dir, const std::string& preset, int count, int size,
                              uint64_t seed, bool progress = true);

// Simulates `count` images of `preset` at `size` into the HDF5 file `path` (attributes record
// every setting; the per-image parameter table goes under params/). Progress on stderr: redrawn
// in place on a terminal, otherwise one line at the end (no carriage returns in logs); none
// without `progress`.
void write_simulated_hdf5(const std::string& path, const std::string& preset, int count, int size, uint64_t seed,
                          int threads = 0, bool progress = true);

}  // namespace halo::apps
