#!/usr/bin/env bash
# Regenerates the default traces that `specsim run hwconfigs/*.yaml` replays (committed in this folder).
# Real runs of SmolLM2-135M and Gemma 3 270M, greedy, the first 5 shipped prompts (1 per category) x 64 new
# tokens (Gemma: no W8A8 drift runs). About 25 min (SmolLM2) and 40 min (Gemma) on the 2-core reference machine, one trace at a time.
# Usage: bash traces/make_default_traces.sh [all|smollm2|gemma]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
if [[ "$which" == all || "$which" == gemma ]]; then
  gemma=(--model gemma3-270m --limit 5 --max-new-tokens 64 --verify greedy --seed 0)
  specsim trace "${gemma[@]}" --draft speq --gamma 4 -o traces/gemma3-270m_speq_g4.npz
  specsim trace "${gemma[@]}" --draft mxfp4 --gamma 4 -o traces/gemma3-270m_mxfp4_g4.npz
  specsim trace "${gemma[@]}" --draft multilevel --gamma 4 -o traces/gemma3-270m_multilevel_g4.npz
  specsim trace "${gemma[@]}" --draft hierarchical --gamma 4 -o traces/gemma3-270m_hierarchical_g4.npz
  specsim trace "${gemma[@]}" --draft none -o traces/gemma3-270m_fp16.npz
  specsim trace "${gemma[@]}" --draft olive -o traces/gemma3-270m_olive4.npz
  specsim trace "${gemma[@]}" --draft tender -o traces/gemma3-270m_tender4.npz
  specsim trace "${gemma[@]}" --draft int4 -o traces/gemma3-270m_int4.npz
  specsim trace "${gemma[@]}" --draft int4:g128 -o traces/gemma3-270m_int4_g128.npz
fi
[[ "$which" == all || "$which" == smollm2 ]] || exit 0
common=(--model smollm2-135m --limit 5 --max-new-tokens 64 --verify greedy --seed 0)
specsim trace "${common[@]}" --draft speq --gamma 4 -o traces/smollm2-135m_speq_g4.npz
specsim trace "${common[@]}" --draft mxfp4 --gamma 4 -o traces/smollm2-135m_mxfp4_g4.npz
specsim trace "${common[@]}" --draft multilevel --gamma 4 -o traces/smollm2-135m_multilevel_g4.npz
specsim trace "${common[@]}" --draft hierarchical --gamma 4 -o traces/smollm2-135m_hierarchical_g4.npz
specsim trace "${common[@]}" --draft none -o traces/smollm2-135m_fp16.npz
specsim trace "${common[@]}" --draft olive -o traces/smollm2-135m_olive4.npz
specsim trace "${common[@]}" --draft tender -o traces/smollm2-135m_tender4.npz
specsim trace "${common[@]}" --draft int4 -o traces/smollm2-135m_int4.npz
specsim trace "${common[@]}" --draft olive:8 -o traces/smollm2-135m_olive8.npz
specsim trace "${common[@]}" --draft tender:8 -o traces/smollm2-135m_tender8.npz
specsim trace "${common[@]}" --draft int4:g128 -o traces/smollm2-135m_int4_g128.npz
# token trees (docs/runs.md "Token trees"): EAGLE's 25-node tree, a 4-node fork (5 verify tokens, as gamma 4),
# and SpecMQuant's hierarchy with the tree at its bottom level
specsim trace "${common[@]}" --draft "tree(speq,eagle)" --gamma 4 -o traces/smollm2-135m_speq_tree_eagle.npz
specsim trace "${common[@]}" --draft "tree(speq,fork4)" --gamma 4 -o traces/smollm2-135m_speq_tree_fork4.npz
specsim trace "${common[@]}" --draft "tree(mxfp4,eagle)" --gamma 4 -o traces/smollm2-135m_mxfp4_tree_eagle.npz
specsim trace "${common[@]}" --draft "tree(mxfp4,fork4)" --gamma 4 -o traces/smollm2-135m_mxfp4_tree_fork4.npz
specsim trace "${common[@]}" --draft "hierarchical:int4_g128/int3_g32>tree(early:15:int3_g32,eagle)" --gamma 4 \
  -o traces/smollm2-135m_hierarchical_tree.npz
