#!/usr/bin/env bash
# a second, fresh set of 50 validation scenes (seeds 3 000 000+, new scenes and new noise) for v3, D, C and the step-2 prior
cd /work/study_src
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
S=/work/runs/toy/step2; ST=/work/runs/toy/study
for pair in "v3 /work/study_src/interdyn/assets/toy_physics/svd" "C $ST/C/svd" "D $ST/D/svd" "prior $S/prior/svd"; do
  set -- $pair
  [ -e $S/check3m_$1.json ] || taskset -c 1 python -m training.toy.checks prior --svd $2 --num-scenes 50 --steps 16 --seed 3000000 --json $S/check3m_$1.json > $S/check3m_$1.log 2>&1
  echo "$(date +%T) $1 done"
done
