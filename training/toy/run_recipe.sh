#!/usr/bin/env bash
# The whole toy-physics recipe (training/toy/README.md) in one resumable command, on the CPU or a GPU.
#
#   bash training/toy/run_recipe.sh                          # CPU, the step counts below (hours on 2 cores)
#   DEVICE=cuda RUN=/scratch/toy bash training/toy/run_recipe.sh   # a GPU machine (minutes)
#
# Every stage resumes from its last checkpoint when the command is run again, and skips itself when its
# output is complete. Sizes come from the environment (defaults in brackets):
#   RUN [runs/toy]  DEVICE [cpu]  SCENES [6000]  WORKERS [2]  VAE_STEPS [3000]  VAE_BATCH [4]  VAE_CROP [32]
#   PRIOR_STEPS [8000]  PRIOR_BATCH [8]  BRANCH_STEPS [1500]  BRANCH_BATCH [4]  PROBE_SCENES [50]
# A stage whose stage.json says "finished": true is skipped. Finished stages committed under
# training/toy/stages/ (fp16) are copied into RUN first, so a new machine continues from the last one (none is
# committed now: the shipped package holds the finished model, see README.md "Where the plan ends").
#   STAGE_MINUTES [unlimited]: stop the VAE and prior stages after this many minutes each (they save first)
#   MIN_VAE_PSNR [32]: the VAE gate (training/toy/checks.py): held-out round trips at this PSNR or more and
#                      within 5 % of the simulation on the probes' tracker, else no prior is trained on it
#   PACKAGE_TO [the package's assets]: where `python -m training.toy.package` writes the built-in model
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-runs/toy}
DEVICE=${DEVICE:-cpu}
mkdir -p "$RUN"
for stage in vae prior; do
    if [ ! -e "$RUN/$stage" ] && grep -qs '"finished": true' "training/toy/stages/$stage/stage.json"; then
        cp -r "training/toy/stages/$stage" "$RUN/$stage"
        echo "continuing from the committed $stage stage (training/toy/stages/$stage)"
    fi
done
minutes=()
[ -n "${STAGE_MINUTES:-}" ] && minutes=(--max-minutes "$STAGE_MINUTES")

echo "== stage 0: scenes of the training mix"
[ -f "$RUN/data.safetensors" ] || python -m training.toy.backbone data --out "$RUN/data.safetensors" \
    --num "${SCENES:-6000}" --workers "${WORKERS:-2}"

echo "== stage 1: temporal VAE"
grep -qs '"finished": true' "$RUN/vae/stage.json" || python -m training.toy.backbone vae --data "$RUN/data.safetensors" --out "$RUN/vae" \
    --steps "${VAE_STEPS:-3000}" --batch "${VAE_BATCH:-4}" --crop "${VAE_CROP:-32}" --device "$DEVICE" "${minutes[@]}" \
    | tee -a "$RUN/vae.log"
if ! python -m training.toy.checks vae --vae "$RUN/vae" --min-psnr "${MIN_VAE_PSNR:-32}" --json "$RUN/vae_gate.json"; then
    echo "the VAE does not pass its gate ($RUN/vae_gate.json): train it longer (raise VAE_STEPS and run this" \
         "command again) before training anything on top of it" >&2
    exit 3
fi

echo "== stage 2: image-to-video prior (no control)"
grep -qs '"finished": true' "$RUN/prior/stage.json" || python -m training.toy.backbone unet --data "$RUN/data.safetensors" --vae "$RUN/vae" \
    --out "$RUN/prior" --steps "${PRIOR_STEPS:-8000}" --batch "${PRIOR_BATCH:-8}" --device "$DEVICE" "${minutes[@]}" \
    | tee -a "$RUN/prior.log"
echo "== the prior alone (no control) on held-out scenes: objects kept, motion, contacts"
python -m training.toy.checks prior --svd "$RUN/prior/svd" --json "$RUN/prior_check.json"

echo "== stage 3: the InterDyn control branch on the frozen prior (training/train.py)"
cpu=true
[ "$DEVICE" != "cpu" ] && cpu=false
python -m training.train --config training/configs/toy_physics.yaml --pretrained_model "$RUN/prior/svd" \
    --output_dir "$RUN/control" --max_steps "${BRANCH_STEPS:-1500}" --batch_size "${BRANCH_BATCH:-4}" \
    --cpu "$cpu" --resume latest --progress_bar false | tee -a "$RUN/control.log"
python -m training.export --checkpoint "$RUN/control" --out "$RUN/interdyn_toy_physics.safetensors" --ema

echo "== stage 4: fp16 into the package, then the probes"
python -m training.toy.package --svd "$RUN/prior/svd" --control "$RUN/interdyn_toy_physics.safetensors" \
    ${PACKAGE_TO:+--out "$PACKAGE_TO"}
svd=builtin:toy-physics
[ -n "${PACKAGE_TO:-}" ] && svd="$PACKAGE_TO/svd"
branch=builtin:toy-physics
[ -n "${PACKAGE_TO:-}" ] && branch="$PACKAGE_TO/interdyn_toy_physics.safetensors"
python -m interdyn probes --svd "$svd" --interdyn "$branch" --num-scenes "${PROBE_SCENES:-50}" --world toy \
    --out "$RUN/probes"
