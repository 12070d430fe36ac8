#!/usr/bin/env bash
# Regenerates the default traces that `specsim run hwconfigs/*.yaml` replays (committed in this folder).
# Real runs of SmolLM2-135M and Gemma 3 270M, greedy, the first 5 shipped prompts (1 per category) x 64 new
# tokens (Gemma: no W8A8 drift runs). About 25 min (SmolLM2) and 40 min (Gemma) on the 2-core reference machine, one trace at a time.
# Usage: bash traces/make_default_traces.sh [all|smollm2|gemma]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}

# the traces every model gets: the four draft schemes (gamma 4), FP16 and the drift runs
# (OliVe, Tender and INT4 W4A4, INT4 W4A16); $1 model, then extra "draft=suffix" pairs
model_traces() {
  local model=$1
  shift
  local common=(--model "$model" --limit 5 --max-new-tokens 64 --verify greedy --seed 0)
  for scheme in speq mxfp4 multilevel hierarchical; do
    specsim trace "${common[@]}" --draft "$scheme" --gamma 4 -o "traces/${model}_${scheme}_g4.npz"
  done
  for pair in none=fp16 olive=olive4 tender=tender4 int4=int4 int4:g128=int4_g128 "$@"; do
    specsim trace "${common[@]}" --draft "${pair%%=*}" -o "traces/${model}_${pair#*=}.npz"
  done
}

if [[ "$which" == all || "$which" == gemma ]]; then
  model_traces gemma3-270m
fi
[[ "$which" == all || "$which" == smollm2 ]] || exit 0
model_traces smollm2-135m olive:8=olive8 tender:8=tender8
# token trees (docs/runs.md "Token trees"): EAGLE's 25-node tree, a 4-node fork (5 verify tokens, as gamma 4),
# and SpecMQuant's hierarchy with the tree at its bottom level
common=(--model smollm2-135m --limit 5 --max-new-tokens 64 --verify greedy --seed 0)
for tree in "speq,eagle" "speq,fork4" "mxfp4,eagle" "mxfp4,fork4"; do
  specsim trace "${common[@]}" --draft "tree($tree)" --gamma 4 -o "traces/smollm2-135m_${tree/,/_tree_}.npz"
done
specsim trace "${common[@]}" --draft "hierarchical:int4_g128/int3_g32>tree(early:15:int3_g32,eagle)" --gamma 4 \
  -o traces/smollm2-135m_hierarchical_tree.npz
