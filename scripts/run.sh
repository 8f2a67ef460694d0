#!/usr/bin/env bash
# The main job from a fresh machine: install the Debian packages, build, and train. With no
# arguments it simulates 3,000 images of the model1 preset once into ./cache and trains ResNet-18 on
# their central 96x96 pixels on the CPU (train_halo's quick run: 6 epochs, batch 16; 6.4 minutes on
# 2 cores, test R^2 0.50-0.61 over three seeds, README "The default run"), leaving the run folder
# runs/resnet18_<date>. Arguments go to train_halo instead (e.g. --model convnext_pico
# --data /path/to/lens_data --epochs 30).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  # A fresh run folder each time, so the command can be repeated.
  args=(--model resnet18 --run-dir "runs/resnet18_$(date +%Y%m%d_%H%M%S)")
fi
./build/apps/train_halo "${args[@]}"
