#!/usr/bin/env bash
# decoding.gamma auto against every fixed gamma in `specsim run` (SPEQ's decode speedup over FP16,
# Llama-2-7B shape of hwconfigs/sweep_llama2_7b.yaml, expected acceptance, 128 new tokens, batch 1/4/16).
# Run from the repository root with specsim installed: bash benchmarks/gamma_auto_replay.sh
set -euo pipefail
out=$(mktemp -d)
for b in 1 4 16; do for a in 0.6 0.8 0.95; do
  line="batch $b alpha $a:"
  for g in 1 2 3 4 5 6 8 auto; do
    v=$(specsim run hwconfigs/sweep_llama2_7b.yaml --set decoding.gamma=$g --set decoding.batch=$b --set workloads.0.shape.acceptance.speq=$a --set workloads.0.shape.max_new_tokens=128 --set hardware.dram.capacity_gib=64 --json --out "$out" --replace | python -c "import json,sys; r=json.load(sys.stdin); print('%.3f'%r['workloads'][0]['speedup']['fp16'])")
    line="$line g$g=$v"
  done; echo "$line"; done; done
