#!/usr/bin/env bash
# Tracing cost of token trees against chains of the same verify width, per generated token (target: a tree
# at most 2x its chain). SmolLM2-135M, the 5 shipped prompts x 64 tokens, greedy, operands and layer
# statistics on (the cache warm: each scheme's draft view computed once before timing).
# Usage, from the repository root with the workload extra installed: bash benchmarks/bench_tree_tracing.sh
set -euo pipefail
out=$(mktemp -d)
common=(--model smollm2-135m --limit 5 --max-new-tokens 64 --verify greedy --seed 0)
specsim trace "${common[@]}" --draft "tree(speq,fork4)" --limit 1 --max-new-tokens 4 -o "$out/warm.npz" > /dev/null
for draft in speq "tree(speq,fork4)" speq "tree(speq,fork4)" "tree(speq,eagle)"; do
  start=$(date +%s.%N)
  line=$(specsim trace "${common[@]}" --draft "$draft" --gamma 4 -o "$out/t.npz")
  end=$(date +%s.%N)
  tokens=$(echo "$line" | sed -E 's/.*: ([0-9]+) tokens.*/\1/')
  python3 -c "print(f'{\"$draft\":>20}: {$end - $start:6.1f} s, {$tokens} tokens, {1000 * ($end - $start) / $tokens:6.1f} ms per token; $(echo "$line" | sed -E 's/.*tokens, //; s/, payload.*//')')"
done
