#!/usr/bin/env bash
# Halo against PyTorch + timm on the CPU, from a fresh clone, in one command:
#   scripts/compare_pytorch.sh [--models resnet18 ...] [--threads 2] [--batch 16] [--eval-batch 64]
#                              [--iters 5] [--profile auto|MODEL|none] [--output FILE]
#                              [--halo-bin DIR]
# Installs what the PyTorch side needs when missing (Debian's python3-torch, python3-torchvision,
# python3-pip, python3-yaml; then timm 0.9.16 with pip), builds Halo when build/bench/bench_models is
# missing, and runs bench/pytorch_step.py, which times both sides and prints the tables: training
# step and eval forward (ms per image, and Halo / PyTorch), peak memory of a training step, and
# the per-layer forward times of one model (by default the one with the highest Halo / PyTorch
# step ratio). Every option goes to bench/pytorch_step.py (--help lists them); a later --profile
# overrides the default here. It takes a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's PyTorch, for Debian's interpreter: /usr/bin/python3, not whichever python3 is first on
# PATH. Idempotent, as scripts/install_deps.sh: apt-get runs only when a package is missing.
missing=()
for p in python3-torch python3-torchvision python3-pip python3-yaml; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "compare_pytorch: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# timm is not packaged by Debian. --no-deps: its dependencies are the Debian packages above, and pip
# must not replace Debian's torch with a wheel.
if ! /usr/bin/python3 -c 'import timm' 2>/dev/null; then
  /usr/bin/python3 -m pip install --break-system-packages --no-deps \
    timm==0.9.16 huggingface_hub==0.23.4 safetensors==0.4.3
fi

# Halo's binaries: build/ unless --halo-bin or HALO_BIN names another folder.
custom_bin="${HALO_BIN:-}"
for arg in "$@"; do
  case "$arg" in --halo-bin|--halo-bin=*) custom_bin=yes ;; esac
done
if [ -z "$custom_bin" ] && [ ! -x build/bench/bench_models ]; then
  bash scripts/install_deps.sh
  bash scripts/build.sh
fi

export COMPARE_COMMAND="scripts/compare_pytorch.sh $*"  # quoted in the report
exec /usr/bin/python3 bench/pytorch_step.py --profile auto "$@"
