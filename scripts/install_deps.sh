#!/usr/bin/env bash
# Installs every Debian package Halo needs to build, test and benchmark. Idempotent: packages that
# are already installed are skipped, and apt-get runs only when something is missing.
# The CUDA toolkit (nvcc, cuBLAS, cuDNN) is not a Debian package here: when present it is used,
# when absent the CPU-only build is made (HALO_CUDA=AUTO).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libeigen3-dev          # CPU GEMM and vector kernels
  libomp-dev             # OpenMP (for clang builds; g++ ships libgomp)
  libhdf5-dev            # state dicts and datasets
  libgtest-dev libgmock-dev googletest  # tests
  libbenchmark-dev       # Google Benchmark
  libcli11-dev           # command-line parsing
  nlohmann-json3-dev     # JSON (model summaries, metrics)
  libfmt-dev             # formatting
  libpng-dev zlib1g-dev  # PNG plots
  clang libclang-rt-14-dev  # libFuzzer + sanitizers for the npy/pickle fuzz target
  libboost-context-dev   # fibers: the emulated CUDA device runs each GPU thread as one
  libdnnl-dev            # oneDNN 2.x: the CPU's vendor convolutions (HALO_ONEDNN=AUTO uses it when present)
  python3-numpy python3-h5py  # the tests' cross-checks of .npy and HDF5 files (Debian's python3)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
