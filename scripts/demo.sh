#!/usr/bin/env bash
# The default demo (`make demo`): prepare the bundled MNIST digits as 2D point sets, train the MLP set
# autoencoder for about two minutes on the CPU, generate and reconstruct digits, render them and
# score the run. Everything lands in $DEMO_DIR (default demo/). The MLP, because in a few minutes of
# a CPU it is the best of BENCHMARKS.md's decoders: 4,000 of its steps take the time of ~250 TSPN
# steps, and reconstruct the test digits better than 5,000 TSPN steps (45 minutes). The pretrained
# run in checkpoints/ is the same model trained for an hour.
set -euo pipefail
VENV=${VENV:-.venv}
OUT=${DEMO_DIR:-demo}
STEPS=${DEMO_STEPS:-4000}
PS="$VENV/bin/pointset"
mkdir -p "$OUT"

echo "== 1/5 prepare: bundled MNIST test digits -> $OUT/mnist.h5" >&2
"$PS" prepare data/mnist_t10k -o "$OUT/mnist.h5" --val-fraction 0.1 --test-fraction 0.1 --force

echo "== 2/5 train: an MLP set autoencoder ($STEPS steps) -> $OUT/run" >&2
"$PS" train "$OUT/mnist.h5" --model mlp --steps "$STEPS" --eval-every 1000 --seed 0 --run-dir "$OUT/run" --overwrite

echo "== 3/5 sample: 16 new digits from the latent prior" >&2
"$PS" sample "$OUT/run" -n 16 --seed 0 --out "$OUT/samples" --render "$OUT/samples.png" --force -q >/dev/null

echo "== 4/5 reconstruct: 16 test digits" >&2
"$PS" sample "$OUT/run" --reconstruct "$OUT/mnist.h5" --split test -n 16 --out "$OUT/reconstructions" \
    --render "$OUT/reconstructions.png" --force -q >/dev/null

echo "== 5/5 eval: reconstruction and generation on 100 test digits (oracle row = training digits)" >&2
"$PS" eval "$OUT/run" "$OUT/mnist.h5" --split test --max-sets 100 --seed 0 --protocol pointflow

cat <<DONE

Done. Everything is in $OUT/:
  $OUT/mnist.h5               the prepared data set ($VENV/bin/pointset info $OUT/mnist.h5)
  $OUT/run/                   the run: config.yaml, metrics.jsonl, loss.png, checkpoints/, prior.npz, eval.json
  $OUT/samples.png            16 generated digits (PLY files in $OUT/samples/)
  $OUT/reconstructions.png    16 test digits beside their reconstructions (PLY files in $OUT/reconstructions/)
Next: $VENV/bin/pointset sample checkpoints/mnist_mlp -n 16 --render out.png   (the pretrained run)
DONE
