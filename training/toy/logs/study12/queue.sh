#!/usr/bin/env bash
# issue 33 step 2, candidate chain on core 0 (one thread): prior (running) -> check -> branch -> export -> package -> probes
set -uo pipefail
cd /work/study_src
R=/work/runs/toy; S=$R/step2; SHIP=/work/study_src/interdyn/assets/toy_physics
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
T="taskset -c 0"
step() { local out=$1; shift; if [ -e "$out" ]; then echo "skip $out"; return; fi; echo "=== $(date +%T) $*"; "$@"; }
while kill -0 $(cat $S/prior.pid) 2>/dev/null; do sleep 10; done
echo "=== $(date +%T) prior ended: $(tail -1 $S/prior.log)"
step $S/check_prior.json $T python -m training.toy.checks prior --svd $S/prior/svd --num-scenes 50 --steps 16 --json $S/check_prior.json
step $S/control/done bash -c "$T python -m training.train --config training/configs/toy_physics.yaml --pretrained_model $S/prior/svd --init_control_branch builtin:toy-physics --output_dir $S/control --max_steps 1000 > $S/control.log 2>&1 && touch $S/control/done"
step $S/branch.safetensors $T python -m training.export --checkpoint $S/control --out $S/branch.safetensors --ema
step $S/package $T python -m training.toy.package --svd $S/prior/svd --control $S/branch.safetensors --out $S/package --world toy
step $S/probes_1000000/probes.json $T interdyn probes --svd $S/package/svd --interdyn $S/package/interdyn_toy_physics.safetensors --world toy --num-scenes 50 --seed 1000000 --out $S/probes_1000000
echo "=== $(date +%T) core 0 done"
