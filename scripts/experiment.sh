#!/usr/bin/env bash
# The experiment of the README's "Results": every model in MODELS with every recipe in RECIPES on
# one simulated model1 set (split 80/10/10 by the same seed, so all runs see the same images), then
# a results table (results.md, results.csv) and the validation curves side by side (compare_runs).
#
# Full size, as the original task (a GPU run):     scripts/experiment.sh
# The reduced CPU run in the README:
#   BUILD=build-native COUNT=3000 DEFAULT_BATCH=16 EPOCHS_default="resnet18=12 resnet26=6 convnext_pico=10" \
#   EPOCHS_seed="resnet18=2 resnet26=2 convnext_pico=2" OUT=runs/experiment_cpu3000 scripts/experiment.sh
#
# Settings (environment variables):
#   BUILD          build folder with apps/train_halo            (default: build)
#   OUT            folder for the runs and the table              (default: runs/experiment)
#   COUNT          simulated model1 images                        (default: 20000)
#   DATA           use this dataset instead of simulating         (default: simulate COUNT)
#   MODELS         models to train                                (default: resnet18 convnext_pico resnet26)
#   RECIPES        recipes                                        (default: default seed)
#   DEVICE         cpu | cuda                                     (default: train_halo's choice)
#   DEFAULT_BATCH  --batch-size for the default recipe            (default: the recipe's)
#   CROP           --crop for every run: train on the central CROPxCROP pixels (default: the whole image)
#   EPOCHS_<recipe> "model=N ..." maximum epochs per model        (default: the recipe's)
#   EXTRA          further train_halo arguments for every run
# A run whose test_metrics.json exists is skipped, so the script can be re-run after an interruption
# (an interrupted run is resumed from its checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
OUT=${OUT:-runs/experiment}
COUNT=${COUNT:-20000}
MODELS=${MODELS:-"resnet18 convnext_pico resnet26"}
RECIPES=${RECIPES:-"default seed"}
TRAIN="$BUILD/apps/train_halo"
COMPARE="$BUILD/apps/compare_runs"
for exe in "$TRAIN" "$COMPARE"; do
  [[ -x "$exe" ]] || { echo "experiment.sh: $exe not found; build first (scripts/build.sh)" >&2; exit 2; }
done
mkdir -p "$OUT"

data_args=()
if [[ -n "${DATA:-}" ]]; then
  data_args=(--data "$DATA")
else
  data_args=(--sim-count "$COUNT")
fi
device_args=()
[[ -n "${DEVICE:-}" ]] && device_args=(--device "$DEVICE")

epochs_for() {  # epochs_for RECIPE MODEL -> N or empty
  local var="EPOCHS_$1" pair
  for pair in ${!var:-}; do
    [[ "${pair%%=*}" == "$2" ]] && { echo "${pair#*=}"; return; }
  done
}

for recipe in $RECIPES; do
  for model in $MODELS; do
    dir="$OUT/${model}_${recipe}"
    if [[ -f "$dir/test_metrics.json" ]]; then
      echo "== $model / $recipe: done already ($dir)"
      continue
    fi
    args=(--model "$model" --recipe "$recipe" --run-dir "$dir" "${data_args[@]}" "${device_args[@]}")
    e=$(epochs_for "$recipe" "$model")
    [[ -n "$e" ]] && args+=(--epochs "$e")
    [[ "$recipe" == default && -n "${DEFAULT_BATCH:-}" ]] && args+=(--batch-size "$DEFAULT_BATCH")
    [[ -n "${CROP:-}" ]] && args+=(--crop "$CROP")
    [[ -f "$dir/checkpoint.h5" ]] && args+=(--resume)
    # shellcheck disable=SC2206
    args+=(${EXTRA:-})
    echo "== $model / $recipe: $TRAIN ${args[*]}"
    start=$(date +%s)
    "$TRAIN" "${args[@]}" --quiet 2>&1 | tee -a "$dir.log"
    echo "== $model / $recipe: $(( $(date +%s) - start )) s"
  done
done

# The table and the curves of every run beside each other (compare_runs: results.md, results.csv,
# val_mse.png, val_nrmse.png), with predicting the training mean as the first row.
runs=()
for d in "$OUT"/*/; do
  [[ -f "$d/metrics.csv" ]] && runs+=("${d%/}")
done
(( ${#runs[@]} )) || { echo "experiment.sh: no runs in $OUT" >&2; exit 1; }
"$COMPARE" "${runs[@]}" --out "$OUT" --title "Validation MSE, $(basename "$OUT")"
cat "$OUT/results.md"
