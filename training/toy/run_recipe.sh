#!/usr/bin/env bash
# The whole toy-physics recipe (training/toy/README.md) in one resumable command, on the CPU or a GPU.
#
#   bash training/toy/run_recipe.sh                          # CPU, the step counts below (hours on 2 cores)
#   DEVICE=cuda RUN=/scratch/toy bash training/toy/run_recipe.sh   # a GPU machine (minutes)
#
# Every stage resumes from its last checkpoint when the command is run again, and skips itself when its
# output is complete. Sizes come from the environment (defaults in brackets):
#   RUN [runs/toy]  DEVICE [cpu]  SCENES [6000]  WORKERS [2]  VAE_STEPS [5000]  VAE_BATCH [4]  VAE_CROP [32]
#   PRIOR_STEPS [20000]  PRIOR_BATCH [4]  BRANCH_STEPS [1500]  BRANCH_BATCH [4]  PROBE_SCENES [50]
#   STAGE_MINUTES [unlimited]: stop the VAE and prior stages after this many minutes each (they save first)
#   MIN_VAE_PSNR [35]: the prior is not trained on a VAE whose held-out reconstruction PSNR is lower
#   PACKAGE_TO [the package's assets]: where `python -m training.toy.package` writes the built-in model
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-runs/toy}
DEVICE=${DEVICE:-cpu}
mkdir -p "$RUN"
minutes=()
[ -n "${STAGE_MINUTES:-}" ] && minutes=(--max-minutes "$STAGE_MINUTES")

echo "== stage 0: scenes of the training mix"
[ -f "$RUN/data.safetensors" ] || python -m training.toy.backbone data --out "$RUN/data.safetensors" \
    --num "${SCENES:-6000}" --workers "${WORKERS:-2}"

echo "== stage 1: temporal VAE"
python -m training.toy.backbone vae --data "$RUN/data.safetensors" --out "$RUN/vae" --steps "${VAE_STEPS:-5000}" \
    --batch "${VAE_BATCH:-4}" --crop "${VAE_CROP:-32}" --device "$DEVICE" "${minutes[@]}" | tee -a "$RUN/vae.log"
psnr=$(tail -n 1 "$RUN/vae/psnr.csv" | cut -d, -f2)
if python -c "import sys; sys.exit(float('$psnr') >= float('${MIN_VAE_PSNR:-35}'))"; then
    echo "the VAE reconstructs held-out clips at $psnr dB, below ${MIN_VAE_PSNR:-35} dB: train it longer" \
         "(run this command again) before training anything on top of it" >&2
    exit 3
fi

echo "== stage 2: image-to-video prior (no control)"
python -m training.toy.backbone unet --data "$RUN/data.safetensors" --vae "$RUN/vae" --out "$RUN/prior" \
    --steps "${PRIOR_STEPS:-20000}" --batch "${PRIOR_BATCH:-4}" --device "$DEVICE" "${minutes[@]}" | tee -a "$RUN/prior.log"

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
python -m interdyn probes --svd "$svd" --interdyn "$branch" --num-scenes "${PROBE_SCENES:-50}" --out "$RUN/probes"
