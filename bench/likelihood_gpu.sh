#!/usr/bin/env bash
# The likelihood suite's training on one GPU (what BENCHMARKS.md's likelihood table used: an H200,
# all runs at once, ~6 min): poisson / setflow (two sizes) / a GAST sweep on MNIST sets, poisson /
# setflow on ModelNet10 chairs, 6,000 steps of 32 sets each. Then, on any machine:
#   python bench/quality.py likelihood --no-train --ae-run bench/work/runs/mnist_tspn
# scores them (NLL on the test split, generation metrics beside the oracle row).
#
# usage: bash bench/likelihood_gpu.sh [PYTHON] [STEPS] [SECONDS_PER_RUN]   (from the repo root; needs
# bench/work/{mnist5k,chair256}.h5 from `python bench/quality.py likelihood --only none`)
set -u
PY=${1:-.venv/bin/python}; STEPS=${2:-6000}; LIMIT=${3:-400}
cd bench/work
mkdir -p runs logs
common=(--steps "$STEPS" --batch-size 32 --eval-every $((STEPS / 5)) --seed 0 -q
        --set train.checkpoint_every=$((STEPS / 10)))
job() {  # name data model lr [--set ...]; a run past its time limit stops at a checkpoint (SIGTERM)
  local name=$1 data=$2 model=$3 lr=$4; shift 4
  timeout -s TERM "$LIMIT" "$PY" -m pointset_cli train "$data" --model "$model" --lr "$lr" "${common[@]}" "$@" \
      --run-dir "runs/$name" --overwrite >"logs/$name.log" 2>&1
  echo "$name exit $? $(grep val "runs/$name/metrics.jsonl" | tail -1 | cut -c1-150)"
}
D=model.decoder_options
job mnist_poisson mnist5k.h5 poisson 3e-2 --set $D.components=32 &
job mnist_setflow_small mnist5k.h5 setflow 2e-3 --set $D.steps=4 --set $D.hidden=32 &
job mnist_setflow mnist5k.h5 setflow 1e-3 --set $D.steps=8 --set $D.hidden=64 &
job chair_poisson chair256.h5 poisson 3e-2 --set $D.components=32 &
job chair_setflow chair256.h5 setflow 1e-3 --set $D.steps=8 --set $D.hidden=64 &
job mnist_gast mnist5k.h5 gast 1e-3 --set $D.hidden=32 --set $D.critic_blocks=1 &
job gast_big mnist5k.h5 gast 2e-4 &
job gast_a mnist5k.h5 gast 1e-4 &
job gast_b mnist5k.h5 gast 1e-4 --set $D.r1_weight=10 &
job gast_c mnist5k.h5 gast 2e-4 --set $D.r1_weight=0.1 &
job gast_d mnist5k.h5 gast 1e-4 --set $D.critic_blocks=1 &
job gast_e mnist5k.h5 gast 5e-4 --set $D.r1_weight=10 --set optim.clip_norm=0 &
job gast_f mnist5k.h5 gast 1e-4 --set $D.generator_blocks=4 --set $D.r1_weight=3 &
wait
