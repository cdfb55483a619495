#!/usr/bin/env bash
# 200 fresh validation scenes (seeds 7 000 000+): enough to see a 10-point change in objects kept beyond its noise
# usage: big.sh CORE NAME SVD [NAME SVD ...]   (waits for $WAIT_PID first when set)
cd /work/study_src
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
S=/work/runs/toy/step2; core=$1; shift
[ -n "${WAIT_FOR:-}" ] && while [ ! -e "$WAIT_FOR" ]; do sleep 15; done
while [ $# -gt 0 ]; do
  [ -e $S/check7m_$1.json ] || taskset -c $core python -m training.toy.checks prior --svd $2 --num-scenes 200 --steps 16 --seed 7000000 --json $S/check7m_$1.json > $S/check7m_$1.log 2>&1
  echo "$(date +%T) $1 done"; shift 2
done
