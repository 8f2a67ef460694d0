#!/usr/bin/env bash
# The first real GPU run in one command. scripts/device_pack.sh copies this file to .device/run.sh;
# on the device machine, from the repository root:
#   run(command="bash .device/run.sh", carry=[".device"], timeout_s=600)
# It unpacks .device/halo.tar.xz, runs the GPU tests, a short training run and narrowed benchmarks,
# and writes to $OUT (the device tool returns at most 8 files):
#   summary.txt              one line per step (ok / FAILED / TIMEOUT / SKIPPED, seconds), the test
#                            counts, failed and skipped tests, and the tail of each failing log
#   logs.tar.gz              every log, the gtest XML files and the benchmark JSON files
#   bench_kernels_cuda.json  bench_models_gpu.json  (also in the tar, for a quick look)
#
# Time: the whole run must end within 8 minutes (one device command may run 10, a lease has 15
# minutes of device time). HALO_BUDGET_S (default 420) seconds after the start is the deadline:
# each step runs under `timeout` with its own limit, cut to what is left before the deadline less
# a 15-second reserve for packing the logs; a step that would get less than its minimum is skipped
# and listed as skipped, and so is everything after it that does not fit. Steps run in order of
# importance: GPU tests, the training step and a real run, benchmarks, then compute-sanitizer.
#
# Knobs: HALO_BUDGET_S; HALO_KERNEL_TESTS, HALO_ENGINE_TESTS, HALO_APP_TESTS (gtest filters);
# BENCH_FILTER (bench_kernels_cuda, default '^ceiling|^resnet18/') and BENCH_MIN_TIME (default
# 0.05 s per benchmark); HALO_SANITIZE=0 skips compute-sanitizer; HALO_UNPACK_DIR.
set -uo pipefail
t_start=$(date +%s)
budget=${HALO_BUDGET_S:-420}
deadline=$((t_start + budget))
reserve=15
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
work=${HALO_UNPACK_DIR:-/tmp/halo-device}
rm -rf "$work" && mkdir -p "$work/logs"
logs=$work/logs
summary=$OUT/summary.txt
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
status=0

# Called by the EXIT trap: the summary's last line, the benchmark JSON files and the tar of logs.
# shellcheck disable=SC2317
finish() {
  local total=$(($(date +%s) - t_start))
  say ""
  say "total ${total}s of the ${budget}s budget; exit status $status"
  cp "$summary" "$logs/summary.txt" 2>/dev/null
  for j in bench_kernels_cuda.json bench_models_gpu.json; do
    [ -s "$logs/$j" ] && cp "$logs/$j" "$OUT/"
  done
  tar -C "$work" -czf "$OUT/logs.tar.gz" logs 2>/dev/null
}
trap finish EXIT

# ---- unpack and find the libraries ---------------------------------------------------------------
if command -v xz >/dev/null; then
  tar -C "$work" -xJf "$here/halo.tar.xz"
else
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
    "$here/halo.tar.xz" "$work"
fi || { say "unpacking $here/halo.tar.xz FAILED"; status=1; exit 1; }
bin=$work/bin
say "Halo GPU run, $(date -u '+%Y-%m-%d %H:%M UTC'); pack: $(head -2 "$work/MANIFEST.txt" | tr '\n' ';')"
say "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2)"

# CUDA runtime, cuBLAS and cuDNN come from the PyTorch installation's nvidia packages and the CUDA
# toolkit; the packed libraries go last, so the machine's own copy of a library wins.
orig_ld=${LD_LIBRARY_PATH:-}
site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null)
ld=""
for d in "$site"/nvidia/cu13/lib "$site"/nvidia/*/lib "$site"/torch/lib /usr/local/cuda/lib64; do
  [ -d "$d" ] && ld="$ld:$d"
done
ld="${ld#:}:$work/lib${orig_ld:+:$orig_ld}"
missing=$(LD_LIBRARY_PATH="$ld" ldd "$bin"/* 2>/dev/null | awk '/not found/{print $1}' | sort -u)
if [ -n "$missing" ]; then  # last resort: look for them on the machine
  for m in $missing; do
    f=$(find /usr /opt -xdev -name "$m" 2>/dev/null | head -1)
    [ -n "$f" ] && ld="$ld:$(dirname "$f")"
  done
  missing=$(LD_LIBRARY_PATH="$ld" ldd "$bin"/* 2>/dev/null | awk '/not found/{print $1}' | sort -u)
fi
[ -n "$missing" ] && say "libraries NOT FOUND: $(echo "$missing" | tr "\n" " ")"
say "CUDA libraries: $(LD_LIBRARY_PATH="$ld" ldd "$bin/test_kernels" | awk '/libcudart|libcublas\.|libcudnn\./{print $3}' | tr '\n' ' ')"

# The binaries carry the build machine's paths (MANIFEST.txt): <source>/tests/fixtures, and
# <build>/apps/{train_halo,eval_halo}, which test_apps starts. Make both exist here.
src=$(sed -n 's/^source //p' "$work/MANIFEST.txt")
build=$(sed -n 's/^build //p' "$work/MANIFEST.txt")
if [ -n "$src" ] && [ "$src" != "$root" ] && [ ! -e "$src" ]; then
  mkdir -p "$(dirname "$src")" && ln -s "$root" "$src"
fi
for a in train_halo eval_halo; do  # (never over a real build's files, when tried on one)
  if [ -n "$build" ] && { [ ! -e "$build/apps/$a" ] || [ -L "$build/apps/$a" ]; }; then
    mkdir -p "$build/apps" && ln -sf "$bin/$a" "$build/apps/$a"
  fi
done

# ---- the steps -----------------------------------------------------------------------------------
# step NAME LIMIT_S MIN_S COMMAND...: runs COMMAND under a time limit, logging to $logs/NAME.log.
step() {
  local name=$1 limit=$2 min=$3
  shift 3
  local left=$((deadline - reserve - $(date +%s)))
  if [ "$left" -lt "$min" ]; then
    say "$(printf '%-16s SKIPPED: %ss left of the budget, needs %ss' "$name" "$((left > 0 ? left : 0))" "$min")"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0
  t0=$(date +%s)
  echo "== $name (limit ${limit}s)"
  timeout -k 5 "$limit" env LD_LIBRARY_PATH="$ld" "$@" >"$logs/$name.log" 2>&1
  local rc=$? st
  case $rc in
    0) st=ok ;;
    124 | 137) st="TIMEOUT at ${limit}s" ;;
    *) st="FAILED (exit $rc)" ;;
  esac
  [ "$rc" -eq 0 ] || status=1
  say "$(printf '%-16s %-22s %4ss' "$name" "$st" "$(($(date +%s) - t0))")"
  # gtest's summary: counts, then the failed and skipped tests by name.
  grep -aE '^\[==========\] .* ran|^\[  (PASSED|SKIPPED|FAILED) +\] [0-9]+ test' "$logs/$name.log" |
    sed 's/^/    /' | tee -a "$summary"
  grep -aE '^\[  FAILED  \] [A-Za-z]' "$logs/$name.log" | sort -u | head -40 | sed 's/^/    /' |
    tee -a "$summary"
  grep -aE '^\[  SKIPPED \] [A-Za-z]' "$logs/$name.log" | sort -u | head -20 | sed 's/^/    /' |
    tee -a "$summary"
  if [ "$rc" -ne 0 ]; then
    echo "    --- last lines of $name.log:" | tee -a "$summary"
    tail -n 15 "$logs/$name.log" | cut -c1-300 | sed 's/^/    /' | tee -a "$summary"
  fi
}

gt=(--gtest_brief=1 --gtest_color=no)
export PYTHONUNBUFFERED=1

say ""
# 1. Kernel parity tests on the GPU (the CPU-only Cuda* suites are left to CI).
step test_kernels 200 30 "$bin/test_kernels" "${gt[@]}" --gtest_output="xml:$logs/test_kernels.xml" \
  --gtest_filter="${HALO_KERNEL_TESTS:-Cuda*:*/Cuda*-CudaTileOnCpu.*:CudaGatherOps.*:CudaNormOps.*:CudaFastDivmod.*:CudaSettings.*:CudaShapeTables.*:CudaConvShapes.*}"
# 2. The engine on the GPU: every op through autograd, whole ResNet-18 / ConvNeXt-pico steps.
step test_engine 120 20 "$bin/test_engine" "${gt[@]}" --gtest_output="xml:$logs/test_engine.xml" \
  --gtest_filter="${HALO_ENGINE_TESTS:-*Cuda*}"
# 3. train_halo / eval_halo --device cuda end to end, both kernel sets.
step test_apps 90 20 "$bin/test_apps" "${gt[@]}" --gtest_output="xml:$logs/test_apps.xml" \
  --gtest_filter="${HALO_APP_TESTS:-Cli.Device*}"
# 4. One training step per model on the GPU (Halo, both kernel sets), then PyTorch's beside it.
step bench_models 90 30 "$bin/bench_models" --benchmark_filter=GpuTrainStep \
  --benchmark_out="$logs/bench_models_gpu.json" --benchmark_out_format=json
if [ -s "$logs/bench_models_gpu.json" ]; then
  step pytorch_step 75 30 env LD_LIBRARY_PATH="$orig_ld" python3 "$root/bench/pytorch_step.py" \
    --device cuda --batch 64 --halo "$logs/bench_models_gpu.json"
fi
# 5. A short real run (simulated data, 2 epochs): images/s on the GPU.
step train_smoke 75 30 "$bin/train_halo" --device cuda --sim-count 2000 --epochs 2 \
  --run-dir "$work/runs/gpu_smoke" --cache "$work/cache"
# 6. Kernel benchmarks, narrowed (a full run is about 15 minutes).
step bench_kernels 120 30 "$bin/bench_kernels_cuda" \
  --benchmark_filter="${BENCH_FILTER:-^ceiling|^resnet18/}" \
  --benchmark_min_time="${BENCH_MIN_TIME:-0.05}" --benchmark_counters_tabular=true \
  --benchmark_out="$logs/bench_kernels_cuda.json" --benchmark_out_format=json
# 7. Out-of-bounds accesses in the hand-written kernels (compute-sanitizer works on some machines
#    only; its log says so when it does not).
if [ "${HALO_SANITIZE:-1}" != 0 ] && command -v compute-sanitizer >/dev/null; then
  step memcheck 90 45 compute-sanitizer --tool memcheck --error-exitcode 99 "$bin/test_kernels" \
    "${gt[@]}" --gtest_filter='Odd/CudaConvParity.HandwrittenMatchesCpu/*:CudaPointwise.*'
fi
exit $status
