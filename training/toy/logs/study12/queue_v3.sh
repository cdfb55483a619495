#!/usr/bin/env bash
# issue 33 step 2, the reference (shipped v3) on core 1 once CI has finished; then the candidate's second range
set -uo pipefail
cd /work/study_src
R=/work/runs/toy; S=$R/step2; SHIP=/work/study_src/interdyn/assets/toy_physics
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
T="taskset -c 1"
step() { local out=$1; shift; if [ -e "$out" ]; then echo "skip $out"; return; fi; echo "=== $(date +%T) $*"; "$@"; }
while pgrep -f "bash .ci/run" >/dev/null; do sleep 15; done
step $S/check_v3.json $T python -m training.toy.checks prior --svd $SHIP/svd --num-scenes 50 --steps 16 --json $S/check_v3.json
for seed in 1000000 4000000; do
  step $S/v3_probes_$seed/probes.json $T interdyn probes --svd $SHIP/svd --interdyn $SHIP/interdyn_toy_physics.safetensors --world toy --num-scenes 50 --seed $seed --out $S/v3_probes_$seed
done
while [ ! -e $S/package ]; do sleep 15; done
step $S/probes_4000000/probes.json $T interdyn probes --svd $S/package/svd --interdyn $S/package/interdyn_toy_physics.safetensors --world toy --num-scenes 50 --seed 4000000 --out $S/probes_4000000
echo "=== $(date +%T) core 1 done"
