#!/usr/bin/env bash
# The whole test suite from a fresh machine, in two builds:
#   build/        the product build (Release; the real CUDA and cuDNN backends when nvcc is
#                 present): every test; the CUDA tests run where a GPU is present, else skip;
#   build-check/  the check build: AddressSanitizer + UndefinedBehaviorSanitizer, with the CUDA
#                 backend on the emulated device (-DHALO_CUDA=EMULATED, kernels/cuda_emulator):
#                 every test again under the sanitizers, the hand-written CUDA kernels and the
#                 engine's CUDA path executed on the CPU (cuDNN/cuBLAS tests skip there, saying why).
# then fuzzes the .npy/pickle reader for a bounded time (HALO_FUZZ_SECONDS, default 60; 0 skips it)
# and prints where each test ran and why any was skipped (scripts/test_summary.py).
# HALO_CHECK_BUILD=0 skips the check build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
status=0
# ctest runs nproc tests at once: OpenMP threads that spin while waiting would steal the cores.
export OMP_WAIT_POLICY=passive
rm -rf build/test-results
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 900) || status=1

builds=(build)
if [ "${HALO_CHECK_BUILD:-1}" != "0" ]; then
  generator=()
  if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
  if [ ! -f build-check/CMakeCache.txt ]; then
    cmake -S . -B build-check "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DHALO_CUDA=EMULATED \
      -DHALO_SANITIZE=ON -DHALO_BUILD_BENCH=OFF
  fi
  cmake --build build-check -j "$(nproc)"
  rm -rf build-check/test-results
  # One OS thread per test process for the emulator's blocks: ctest already runs nproc tests at once.
  (cd build-check && HALO_EMU_THREADS=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j "$(nproc)" --timeout 1800) || status=1
  builds+=(build-check)
fi

if [ -x scripts/fuzz.sh ] && [ "${HALO_FUZZ_SECONDS:-60}" != "0" ]; then
  bash scripts/fuzz.sh "${HALO_FUZZ_SECONDS:-60}" || status=1
fi
python3 scripts/test_summary.py "${builds[@]}" || true
exit $status
