#!/usr/bin/env bash
# Builds Halo here for the lent H100 (sm_90) and packs what the device machine needs into
# .device/ (ignored by git; pass it to the device tool's `carry`): the test and benchmark binaries,
# the shared libraries ldd shows they need (except glibc, the CUDA driver and the CUDA/cuDNN/
# cuBLAS libraries, which come from the PyTorch installation there), and run.sh, which points the
# loader at those and runs the GPU tests and benchmarks, writing logs to $OUT.
#   here:   scripts/device_pack.sh
#   device: run(command="bash .device/run.sh", carry=[".device"])
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release -DHALO_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
cmake --build build-device -j "$(nproc)"

rm -rf .device && mkdir -p .device/bin .device/lib
for exe in build-device/tests/test_* build-device/bench/bench_* build-device/apps/*; do
  [ -f "$exe" ] && [ -x "$exe" ] && cp "$exe" .device/bin/
done
# Libraries: everything ldd resolves except glibc's own and the CUDA stack.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libcuda\.|libcudart|libcublas|libcudnn|libnvrtc|libnvJitLink)'
for exe in .device/bin/*; do
  ldd "$exe" | awk '/=> \//{print $1" "$3}' | while read -r name path; do
    if ! [[ $name =~ $skip ]]; then cp -nL "$path" .device/lib/ 2>/dev/null || true; fi
  done
done

cat > .device/run.sh <<'RUN'
#!/usr/bin/env bash
# Runs on the device machine from the repository root. Uses the CUDA runtime, cuBLAS and cuDNN
# that the PyTorch installation there carries.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null)
libs="$here/lib"
for d in "$site"/nvidia/*/lib "$site"/nvidia/cu13/lib "$site"/torch/lib; do [ -d "$d" ] && libs="$libs:$d"; done
export LD_LIBRARY_PATH="$libs:${LD_LIBRARY_PATH:-}"
export OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# The test binaries carry the fixture folder's absolute path from the build machine.
src=$(grep -o '/[^"]*/tests/fixtures' -m1 -a "$here"/bin/test_engine | head -1)
if [ -n "$src" ] && [ ! -e "$src" ]; then mkdir -p "$(dirname "$(dirname "$src")")"; ln -s "$here/.." "$(dirname "$(dirname "$src")")" 2>/dev/null || true; fi
# test_apps runs train_halo/eval_halo from the build folder's path: point it at the packed ones.
root=$(cd "$here/.." && pwd)
mkdir -p "$root/build-device/apps"
for a in train_halo eval_halo simulate_lenses; do
  [ -x "$here/bin/$a" ] && ln -sf "$here/bin/$a" "$root/build-device/apps/$a"
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
status=0
for t in "$here"/bin/test_*; do
  echo "== $(basename "$t")"; "$t" --gtest_brief=1 2>&1 | tee "$OUT/$(basename "$t").log" | tail -5
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
# The training step on the GPU, Halo (both kernel sets) and PyTorch, then the kernel benchmarks
# (BENCH_FILTER narrows them, e.g. '^ceiling|^resnet18/', to fit a command's time limit).
echo "== bench_models (GPU training step)"
"$here"/bin/bench_models --benchmark_filter=GpuTrainStep --benchmark_out="$OUT/bench_models_gpu.json" \
  --benchmark_out_format=json 2>&1 | tail -10
python3 "$here/../bench/pytorch_step.py" --device cuda --batch 64 --halo "$OUT/bench_models_gpu.json" 2>&1 | tail -8
echo "== bench_kernels_cuda"
"$here"/bin/bench_kernels_cuda --benchmark_filter="${BENCH_FILTER:-.}" --benchmark_counters_tabular=true \
  --benchmark_out="$OUT/bench_kernels_cuda.json" --benchmark_out_format=json 2>&1 | tail -80
exit $status
RUN
chmod +x .device/run.sh
du -sh .device
echo "packed: call the device tool with command 'bash .device/run.sh' and carry ['.device']"
