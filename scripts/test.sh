#!/usr/bin/env bash
# The whole test suite from a fresh machine: install the Debian packages, build, run every test
# (ctest), then fuzz the .npy/pickle reader for a bounded time (HALO_FUZZ_SECONDS, default 60;
# 0 skips it). GPU tests skip with a message where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 900)
if [ -x scripts/fuzz.sh ] && [ "${HALO_FUZZ_SECONDS:-60}" != "0" ]; then
  bash scripts/fuzz.sh "${HALO_FUZZ_SECONDS:-60}"
fi
