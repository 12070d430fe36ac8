"""Batched decoding: a trace's sequences decoded B at a time in lockstep (numpy only).

A trace records each sequence's forward passes on its own (``step_*`` rows, one sequence per pass).
:func:`batch_schedule` groups the sequences into batches of ``batch`` consecutive prompts and merges,
within a batch, the passes that sit at the same point of the round structure into one batched pass:

* speculative decoding (one draft level): round r of every sequence runs together: gamma draft passes
  of one token per sequence (the first one catching each draft cache up), then one verify pass of
  gamma+1 tokens per sequence. Each sequence accepts its own count (its own trace events), so the
  cached lengths of the members diverge and every member attends over its own length;
* autoregressive decoding: one token per sequence per pass;
* the prefill of a batch is one pass over all its prompts;
* a sequence that has generated its tokens leaves the batch; the batch ends with its longest member,
  and the next batch starts after it (static batches; continuous batching is the serving model's).

Chains of drafts run a variable number of inner rounds per outer round; :func:`lockstep_keys` places
every pass in its round structure, so sequences that need more inner rounds run them while the others
wait, and all meet again at the outer verify pass.

Batch 1 gives one member per pass, in trace order: the unbatched replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specsim.errors import SpecsimError
from specsim.trace.operators import window_kv
from specsim.trace.tracefile import Trace

MAX_BATCH = 256  #: sequences decoded together (decoding.batch)


@dataclass(frozen=True)
class BatchSchedule:
    """Batched forward passes: per pass its level and phase; per member (one sequence in one pass) the
    trace step it comes from and that step's sequence, tokens, cached length and lm_head rows.
    Members are sorted by pass; tokens and lengths in tokens."""

    batch: int  #: the configured batch (sequences per batch, the last batch may hold fewer)
    pass_level: np.ndarray  #: int64, chain level of each batched pass
    pass_phase: np.ndarray  #: int64, phase index of each batched pass
    member_pass: np.ndarray  #: int64, the batched pass of each member (non-decreasing)
    member_step: np.ndarray  #: int64, the trace step of each member
    member_prompt: np.ndarray  #: int64, its sequence
    member_tokens: np.ndarray  #: int64, tokens it feeds
    member_past: np.ndarray  #: int64, its cached length before the pass
    member_logits: np.ndarray  #: int64, its rows through lm_head
    group_member: np.ndarray  #: int64, the member of each attention group (non-decreasing)
    group_tokens: np.ndarray  #: int64, query tokens of the group
    group_kv: np.ndarray  #: int64, keys each of them attends to (a token-tree pass: context + ancestors)

    @property
    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(member, tokens, kv) of every attention group, for :func:`~specsim.hardware.lowering.batched_steps_table`."""
        return self.group_member, self.group_tokens, self.group_kv

    @property
    def passes(self) -> int:
        return len(self.pass_level)

    @property
    def pass_members(self) -> np.ndarray:
        """Sequences in each batched pass."""
        return np.bincount(self.member_pass, minlength=self.passes)

    @property
    def pass_tokens(self) -> np.ndarray:
        """Tokens of each batched pass (its GEMMs' M), summed over its members."""
        return np.bincount(self.member_pass, weights=self.member_tokens, minlength=self.passes).astype(np.int64)

    @property
    def pass_context(self) -> np.ndarray:
        """KV entries each batched pass reads or writes, summed over its members (cached + new tokens)."""
        return self.pass_window_context(0)

    def pass_window_context(self, window: int) -> np.ndarray:
        """KV entries a layer with sliding window ``window`` (tokens; 0: full attention) holds in each batched
        pass, summed over its members: ``min(past + tokens, window + tokens - 1)`` per member (the window
        before its first new token plus the new tokens, as Hugging Face's sliding cache holds them)."""
        context = window_kv(self.member_past + self.member_tokens, self.member_tokens, window)
        return np.bincount(self.member_pass, weights=context, minlength=self.passes).astype(np.int64)


def lockstep_keys(levels: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """Each pass's place in its sequence's round structure, comparable across sequences (steps in trace
    order; one row per step, one column per chain level).

    A pass at level ``l`` gets, at each shallower level ``j < l``, the number of level-``j`` passes its
    sequence ran since its last pass shallower than ``j``; at level ``l`` its own index among those
    passes; deeper columns ``inf``. So in one-level speculative decoding the prefill is (0, inf), round
    r's draft passes are (r, 0..gamma-1) and its verify pass (r, inf); a chain adds the inner round in
    between. Passes with the same key run together."""
    depth = int(levels.max(initial=0)) + 1
    keys = np.full((levels.size, depth), np.iinfo(np.int64).max, np.int64)
    done: dict[int, list[int]] = {}
    for i, (lv, p) in enumerate(zip(levels.tolist(), prompts.tolist())):
        count = done.setdefault(p, [0] * depth)
        keys[i, :lv] = count[:lv]
        keys[i, lv] = count[lv]
        count[lv] += 1
        count[lv + 1 :] = [0] * (depth - lv - 1)
    return keys


def batch_schedule(trace: Trace, batch: int) -> BatchSchedule:
    """The trace's passes with ``batch`` sequences decoded together (see the module docstring)."""
    if not 1 <= batch <= MAX_BATCH:
        raise SpecsimError(f"batch {batch}: expected 1..{MAX_BATCH}")
    prompt = trace["step_prompt"].astype(np.int64)
    level = trace["step_level"].astype(np.int64)
    phase = trace["step_phase"].astype(np.int64)
    keys = lockstep_keys(level, prompt)
    group = prompt // batch
    # batch, then lockstep key (first column most significant), then sequence
    ordered = np.lexsort((prompt, *keys.T[::-1], group))
    g, k = group[ordered], keys[ordered]
    new_pass = np.ones(prompt.size, bool)
    new_pass[1:] = (g[1:] != g[:-1]) | np.any(k[1:] != k[:-1], axis=1)
    member_pass = np.cumsum(new_pass) - 1
    heads = np.flatnonzero(new_pass)
    level, phase = level[ordered], phase[ordered]
    if np.any(phase != phase[heads][member_pass]):
        raise SpecsimError(
            f"{trace.path}: its sequences run different kinds of pass at the same point of a round "
            f"(draft {trace.header.get('draft')!r}), so they cannot decode in lockstep; use batch 1"
        )
    tokens = trace["step_tokens"].astype(np.int64)[ordered]
    past = trace["step_past"].astype(np.int64)[ordered]
    return BatchSchedule(
        batch,
        level[heads],
        phase[heads],
        member_pass.astype(np.int64),
        ordered.astype(np.int64),
        prompt[ordered],
        tokens,
        past,
        trace["step_logits"].astype(np.int64)[ordered],
        *_attention_groups(trace, ordered, tokens, past),
    )


def _attention_groups(trace: Trace, ordered: np.ndarray, tokens: np.ndarray, past: np.ndarray):
    """(member, tokens, kv) of every attention group.

    A plain pass is one group: all its tokens over past + tokens keys. A token-tree pass (the trace's
    ``attn_*`` rows: query tokens and the keys their mask shows, context included) reads its cached
    context once, as one group of all its tokens over the past keys, then each mask group attends to
    the new keys it sees (kv - past: the catch-up tokens before it and its ancestors). The work is the
    mask's, sum(tokens x kv), and the cached K/V is fetched once per pass, not once per group."""
    member_of_step = np.empty(ordered.size, np.int64)
    member_of_step[ordered] = np.arange(ordered.size)
    tree_member = member_of_step[trace["attn_step"].astype(np.int64)]
    plain = np.ones(ordered.size, bool)
    plain[tree_member] = False
    tree = np.unique(tree_member)
    context = tree[past[tree] > 0]
    member = np.concatenate([np.flatnonzero(plain), context, tree_member])
    order = np.argsort(member, kind="stable")  # per member: the context group first, then the mask groups
    group_tokens = np.concatenate([tokens[plain], tokens[context], trace["attn_tokens"].astype(np.int64)])
    new_keys = trace["attn_kv"].astype(np.int64) - past[tree_member]
    group_kv = np.concatenate([(past + tokens)[plain], past[context], new_keys])
    return member[order], group_tokens[order], group_kv[order]
