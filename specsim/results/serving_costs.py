"""Iteration costs of the serving model: batched forward passes through the cycle engine, memoised.

A serving iteration is a few batched passes (:mod:`specsim.results.serving`). Each pass is one call of
:func:`specsim.hardware.lowering.batched_steps_table` (weight GEMMs once over the pass's summed tokens,
attention once per sequence over its own KV length) and :func:`specsim.engine.simulate`, memoised by
``(level, sequences, tokens per sequence, KV-length bucket, lm_head rows per sequence)``.

Bucketing (chosen here): a pass's sequences are costed as if each held the batch's **mean** cached
length rounded **up** to a multiple of :data:`KV_QUANTUM` tokens, and a prefill's prompts as if each
were the mean prompt length rounded up to a multiple of :data:`PREFILL_QUANTUM`. A memoised cost is
therefore the engine's exact cost whenever every sequence's length is a bucket point; elsewhere it
over-estimates attention by less than one quantum per sequence (``specsim.results.serving_costs``'s
:func:`bucket_error` measures it; docs/serving.md gives the numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specsim.engine import simulate
from specsim.hardware.energy import op_energy_pj, static_mw_total
from specsim.hardware.lowering import batched_steps_table
from specsim.results.config import Accelerator

KV_QUANTUM = 64  #: tokens; cached lengths are costed at the batch mean rounded up to a multiple (chosen here)
PREFILL_QUANTUM = 16  #: tokens; prompt lengths are costed at the mean rounded up to a multiple (chosen here)


def bucket(n: float, quantum: int) -> int:
    """``n`` tokens rounded up to a multiple of ``quantum`` (0 stays 0)."""
    return int(-(-int(np.ceil(n)) // quantum) * quantum)


@dataclass(frozen=True)
class PassCost:
    """One batched forward pass: engine cycles, seconds at the accelerator's clock, energy in joules
    (dynamic energy of its operators plus static power over its cycles)."""

    cycles: int
    seconds: float
    energy_j: float


class PassCosts:
    """Memoised engine costs of one accelerator's batched passes (level templates from
    :func:`specsim.results.decoding.prepare`)."""

    def __init__(self, acc: Accelerator, templates: list) -> None:
        self.acc = acc
        self.templates = templates
        self.modes = tuple(acc.hardware.modes)
        self.hz = acc.hardware.clock_ghz * 1e9
        self.static_w = static_mw_total(acc.energy, acc.hardware) * 1e-3
        self.memo: dict[tuple[int, int, int, int, int], PassCost] = {}
        self.hits = 0
        self.misses = 0

    @property
    def hit_rate(self) -> float:
        calls = self.hits + self.misses
        return self.hits / calls if calls else 0.0

    def exact(self, level: int, tokens: np.ndarray, past: np.ndarray, logits: np.ndarray) -> PassCost:
        """The engine's cost of one pass at ``level`` with one sequence per entry: ``tokens`` new tokens
        after ``past`` cached ones, ``logits`` rows through lm_head (not memoised)."""
        n = len(tokens)
        ops, _ = batched_steps_table(
            self.templates, self.modes, np.array([level]), np.zeros(n, np.int64), tokens, past, logits
        )
        result = simulate(self.acc.hardware, ops)
        cycles = int(result.total_cycles)
        seconds = cycles / self.hz
        dynamic = float(op_energy_pj(result.op_actions(), self.acc.energy, self.acc.hardware).sum()) * 1e-12
        return PassCost(cycles, seconds, dynamic + self.static_w * seconds)

    def cost(self, level: int, sequences: int, tokens: int, past: int, logits: int) -> PassCost:
        """Memoised cost of a pass of ``sequences`` equal sequences (``past`` is used as given: the caller
        buckets it)."""
        key = (level, sequences, tokens, past, logits)
        hit = self.memo.get(key)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        full = np.full(sequences, 1, np.int64)
        out = self.exact(level, full * tokens, full * past, full * logits)
        self.memo[key] = out
        return out

    def prefill(self, level: int, prompts: list[int]) -> PassCost:
        """A prefill pass over ``prompts`` (tokens each; one lm_head row per sequence), bucketed."""
        return self.cost(level, len(prompts), bucket(sum(prompts) / len(prompts), PREFILL_QUANTUM), 0, 1)

    def step(self, level: int, sequences: int, tokens: int, mean_past: float, logits: int) -> PassCost:
        """A decode, draft or verify pass: ``tokens`` per sequence after a mean of ``mean_past`` cached."""
        return self.cost(level, sequences, tokens, bucket(mean_past, KV_QUANTUM), logits)


AUTO_GAMMAS = 8  #: gamma auto picks a draft length in 1..8 (chosen here)
DRAFT_LEVEL = 1


def sum_costs(parts: list[PassCost]) -> PassCost:
    """Passes run back to back: cycles, seconds and energy add."""
    return PassCost(sum(p.cycles for p in parts), sum(p.seconds for p in parts), sum(p.energy_j for p in parts))


def round_cost(costs: PassCosts, sequences: int, mean_past: float, gamma: int) -> PassCost:
    """One speculative round of ``sequences`` decoding together after a mean of ``mean_past`` cached
    tokens: ``gamma`` one-token draft passes, then a verify pass of gamma + 1 tokens per sequence."""
    drafts = [costs.step(DRAFT_LEVEL, sequences, 1, mean_past + 1 + j, 1) for j in range(gamma)]
    return sum_costs([*drafts, costs.step(0, sequences, gamma + 1, mean_past, gamma + 1)])


def best_gamma(expected_tokens, costs: PassCosts, sequences: int, mean_past: float) -> int:
    """``decoding.gamma: auto``: the draft length g in 1..:data:`AUTO_GAMMAS` maximising the batch's expected
    tokens per second, ``expected_tokens(g) x sequences / round_cost(g).seconds`` (``expected_tokens``:
    E[tokens per round] of one sequence at draft length g, from its acceptance profile)."""
    rates = [
        expected_tokens(g) * sequences / round_cost(costs, sequences, mean_past, g).seconds
        for g in range(1, AUTO_GAMMAS + 1)
    ]
    return int(np.argmax(rates)) + 1


@dataclass(frozen=True)
class BucketError:
    """Memoised against exact engine cycles over sampled passes: relative error (memo / exact - 1)."""

    samples: int
    mean: float
    max_abs: float


def bucket_error(costs: PassCosts, level: int, tokens: int, batch: int, max_past: int, samples: int, seed: int):
    """Relative error of :meth:`PassCosts.step` against :meth:`PassCosts.exact` for ``samples`` random
    batches of ``batch`` sequences with cached lengths uniform in 1..``max_past``."""
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(samples):
        past = rng.integers(1, max_past + 1, batch)
        full = np.full(batch, tokens, np.int64)
        exact = costs.exact(level, full, past, full).cycles
        memo = costs.step(level, batch, tokens, float(past.mean()), tokens).cycles
        errors.append(memo / exact - 1.0)
    e = np.array(errors)
    return BucketError(samples, float(e.mean()), float(np.abs(e).max()))
