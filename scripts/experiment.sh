#!/usr/bin/env bash
# The experiment of the README's "Results": every model in MODELS with every recipe in RECIPES on
# one simulated model1 set (split 80/10/10 by the same seed, so all runs see the same images), then
# a results table (results.md, results.csv) from the runs' test_metrics.json.
#
# Full size, as the original task (a GPU run):     scripts/experiment.sh
# The reduced CPU run in the README:
#   COUNT=3000 DEFAULT_BATCH=16 EPOCHS_default="resnet18=12 resnet26=8 convnext_pico=10" \
#   EPOCHS_seed="resnet18=3 resnet26=3 convnext_pico=3" OUT=runs/experiment_cpu3000 scripts/experiment.sh
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
[[ -x "$TRAIN" ]] || { echo "experiment.sh: $TRAIN not found; build first (scripts/build.sh)" >&2; exit 2; }
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
    [[ -f "$dir/checkpoint.h5" ]] && args+=(--resume)
    # shellcheck disable=SC2206
    args+=(${EXTRA:-})
    echo "== $model / $recipe: $TRAIN ${args[*]}"
    start=$(date +%s)
    "$TRAIN" "${args[@]}" --quiet 2>&1 | tee "$dir.log"
    echo "== $model / $recipe: $(( $(date +%s) - start )) s"
  done
done

# The table: one row per run, beside predicting the training mean.
python3 - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows, mean = [], None
for f in sorted(out.glob("*/test_metrics.json")):
    j = json.loads(f.read_text())
    mean = mean or j["predict_the_mean"]
    tta = j.get("test_tta8", {})
    rows.append((j["model"], j["recipe"], j["epochs_run"], j["best_epoch"], j["test"]["mse"],
                 j["test"]["nrmse"], j["test"]["r2"], tta.get("mse"), tta.get("r2")))
if not rows:
    sys.exit("experiment.sh: no finished runs in " + str(out))
csv = ["model,recipe,epochs_run,best_epoch,test_mse,test_nrmse,test_r2,tta8_mse,tta8_r2"]
md = ["| model | recipe | epochs (best) | test MSE | test NRMSE | R² | MSE, 8 symmetries | R², 8 symmetries |",
      "|---|---|---|---|---|---|---|---|"]
md.append(f"| predict the mean | | | {mean['mse']:.3e} | {mean['nrmse']:.3f} | {mean['r2']:.2f} | | |")
for m, r, e, b, mse, nrmse, r2, tmse, tr2 in rows:
    csv.append(f"{m},{r},{e},{b},{mse:.6e},{nrmse:.6f},{r2:.6f},{tmse if tmse is not None else ''},{tr2 if tr2 is not None else ''}")
    t1 = f"{tmse:.3e}" if tmse is not None else ""
    t2 = f"{tr2:.2f}" if tr2 is not None else ""
    md.append(f"| {m} | {r} | {e} ({b}) | {mse:.3e} | {nrmse:.3f} | {r2:.2f} | {t1} | {t2} |")
(out / "results.csv").write_text("\n".join(csv) + "\n")
(out / "results.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
EOF
