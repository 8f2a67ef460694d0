#!/usr/bin/env bash
# Fuzzes the .npy / pickle / DeepLense reader (data/fuzz_npy.cpp) with libFuzzer for a bounded time.
#   scripts/fuzz.sh [SECONDS]      (default: $HALO_FUZZ_SECONDS or 60)
# Builds with Debian's clang++ (-fsanitize=fuzzer,address,undefined) directly, not via CMake, into
# build-fuzz/ (or $HALO_FUZZ_DIR); seeds the corpus with tests/fixtures/npy_samples plus small
# generated files; exits non-zero on any crash, sanitizer report or leak (libFuzzer writes the
# input that triggered it as build-fuzz/crash-* / leak-* / timeout-*).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${HALO_FUZZ_SECONDS:-60}}"
out="${HALO_FUZZ_DIR:-build-fuzz}"
cxx="${HALO_FUZZ_CXX:-}"
if [ -z "$cxx" ]; then
  for c in clang++ clang++-14 clang++-15 clang++-16; do
    if command -v "$c" >/dev/null 2>&1; then cxx="$c"; break; fi
  done
fi
if [ -z "$cxx" ]; then
  echo "fuzz.sh: clang++ not found (apt-get install clang)" >&2
  exit 1
fi
mkdir -p "$out/corpus" "$out/seeds"
srcs="data/npy.cpp data/pickle.cpp data/deeplense.cpp"
flags="-std=c++20 -g -O1 -I. -DFMT_HEADER_ONLY -fno-omit-frame-pointer"
echo "fuzz.sh: building with $cxx"
# shellcheck disable=SC2086
"$cxx" $flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all data/fuzz_npy.cpp $srcs \
  -o "$out/fuzz_npy"
# shellcheck disable=SC2086
"$cxx" $flags -DHALO_FUZZ_SEEDS data/fuzz_npy.cpp $srcs -o "$out/make_seeds"
"$out/make_seeds" "$out/seeds"
cp tests/fixtures/npy_samples/*.npy "$out/seeds/"
# Small protocol 2/4/5 object arrays, if a Python with numpy is at hand (optional).
for py in /usr/bin/python3 python3; do
  if "$py" -c "import numpy" >/dev/null 2>&1; then
    "$py" - "$out/seeds" <<'PY' || echo "fuzz.sh: (python seeds failed; going on without them)"
import io, pickle, sys
import numpy as np
d = sys.argv[1]
img = (np.arange(12, dtype=np.int64) % 5).reshape(3, 4)
obj = np.empty(2, dtype=object); obj[0] = img; obj[1] = np.float64(0.0375)
for proto in (2, 4, 5):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(obj))
    pickle.dump(obj, buf, protocol=proto)
    open(f"{d}/py_proto{proto}.npy", "wb").write(buf.getvalue())
obj[1] = 0.0375
buf = io.BytesIO(); np.save(buf, obj, allow_pickle=True); open(f"{d}/py_pyfloat.npy", "wb").write(buf.getvalue())
np.save(f"{d}/py_be_f8.npy", img.astype(">f8"))
PY
    break
  fi
done
echo "fuzz.sh: running for ${secs}s with $(ls "$out/seeds" | wc -l) seeds"
# -max_len covers the 180 KB real files; -rss_limit_mb bounds memory; -error_exitcode makes any
# finding fail the script.
ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  "$out/fuzz_npy" "$out/corpus" "$out/seeds" -max_total_time="$secs" -max_len=200000 -rss_limit_mb=2048 \
  -timeout=10 -error_exitcode=77 -artifact_prefix="$out/" -print_final_stats=1
echo "fuzz.sh: no crash, no sanitizer report in ${secs}s"
