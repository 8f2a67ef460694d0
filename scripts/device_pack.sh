#!/usr/bin/env bash
# Builds Halo here for the lent GPU (H100/H200: sm_90) and packs what the GPU run needs into
# .device/ (ignored by git; name it in the device tool's `carry`):
#   .device/halo.tar.xz   the GPU tests, the GPU benchmarks and the two apps test_apps starts,
#                         stripped, plus the shared libraries they link that a CUDA machine may
#                         lack (HDF5 and its network/crypto dependencies, fmt, ...); one xz stream,
#                         so the engine code that every binary links is stored about once
#   .device/run.sh        scripts/device_run.sh: unpacks the archive there and runs the GPU checks
#                         under one time budget, writing a summary and a tar of logs to $OUT
#   .device/MANIFEST.txt  what is packed, from which commit
# Not packed: glibc and the CUDA runtime, cuBLAS and cuDNN (the device machine's PyTorch
# installation carries them), the CPU-only tests (CI runs those).
#
# The device tool carries at most 64 MiB (working tree and carried paths together); the pack must
# stay under 48 MiB and this script fails, naming the biggest parts, when it does not.
#   here:   scripts/device_pack.sh          HALO_SKIP_BUILD=1 packs the existing build-device
#                                           (HALO_BUILD_DIR another build folder)
#   device: run(command="bash .device/run.sh", carry=[".device"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
limit_mib=48
build="${HALO_BUILD_DIR:-build-device}"
bins=(tests/test_kernels tests/test_engine tests/test_apps bench/bench_kernels_cuda
      bench/bench_models apps/train_halo apps/eval_halo)

if [ "${HALO_SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/install_deps.sh
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHALO_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90
  targets=()
  for b in "${bins[@]}"; do targets+=("$(basename "$b")"); done
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
fi
for b in "${bins[@]}"; do
  [ -x "$build/$b" ] || { echo "device_pack: $build/$b was not built" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
for b in "${bins[@]}"; do
  cp "$build/$b" "$stage/bin/"
  # The symbol tables and host debug sections only; the device code (.nv_fatbin) stays.
  strip --strip-unneeded "$stage/bin/$(basename "$b")"
done
# Libraries: everything ldd resolves except glibc's own and the CUDA stack. run.sh puts this
# folder *last* on the library path, so the machine's own copy of a library wins where it has one.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libresolv\.|libcuda\.|libcudart|libcublas|libcudnn|libnvrtc|libnvJitLink)'
for exe in "$stage"/bin/*; do
  ldd "$exe" | awk '/=> \//{print $1" "$3}' | while read -r name path; do
    if ! [[ $name =~ $skip ]] && [ ! -e "$stage/lib/$name" ]; then
      cp -L "$path" "$stage/lib/$name"
      chmod u+w "$stage/lib/$name"
      strip --strip-unneeded "$stage/lib/$name" 2>/dev/null || true
    fi
  done
done
{
  echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
  arch=$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$build/CMakeCache.txt")
  arch=${arch:-"of CMakeLists.txt"}
  echo "built $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n), CUDA $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), architectures $arch"
  # run.sh recreates these paths there: the tests read tests/fixtures and start the apps by them.
  echo "source $(pwd)"
  echo "build $(cd "$build" && pwd)"
  (cd "$stage" && find bin lib -type f -printf '%s\t%p\n' | sort -k2)
} >"$stage/MANIFEST.txt"

rm -rf .device && mkdir -p .device
# One xz stream with a 64 MiB dictionary (-9) and one thread (several threads would cut the stream
# into blocks that cannot refer to each other): the copies of the engine in every binary then
# compress to about one.
tar -C "$stage" -cf - bin lib MANIFEST.txt | xz -9 -T1 >.device/halo.tar.xz
cp scripts/device_run.sh .device/run.sh
cp "$stage/MANIFEST.txt" .device/MANIFEST.txt
chmod +x .device/run.sh

bytes=$(du -sb .device | cut -f1)
unpacked=$(du -sb "$stage" | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "device_pack: .device is $(mib "$bytes") MiB ($(mib "$unpacked") MiB unpacked, $(ls "$stage/bin" | wc -l) binaries, $(ls "$stage/lib" | wc -l) libraries)"
if [ "$bytes" -gt $((limit_mib * 1048576)) ]; then
  echo "device_pack: FAILED: the pack is over ${limit_mib} MiB (the device tool carries 64 MiB with the working tree); largest parts unpacked:" >&2
  (cd "$stage" && du -ab bin lib | sort -rn | head -8 | awk '{ printf "  %8.1f MiB  %s\n", $1 / 1048576, $2 }') >&2
  exit 1
fi
# What travels besides: the working tree (tracked and untracked files that git does not ignore).
tree=$( (git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null || true) | awk '{ s += $1 } END { print s + 0 }')
echo "device_pack: with the working tree ($(mib "$tree") MiB) the device tool carries $(mib $((bytes + tree))) MiB of 64"
echo "packed: call the device tool with command 'bash .device/run.sh', carry ['.device'], timeout_s 600"
