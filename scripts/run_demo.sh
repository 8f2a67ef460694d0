#!/usr/bin/env bash
# The main job from a fresh machine: install the Debian packages, build, and train.
# Arguments are passed to the demo trainer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
./build/apps/halo_demo "$@"
