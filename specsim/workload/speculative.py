"""Speculative decoding on real PyTorch causal LMs (batch 1, KV caches, rollback on rejection).

One round: the draft proposes ``gamma`` tokens autoregressively; the target scores all of them in
one forward pass over ``gamma + 1`` positions; a prefix is accepted and one more token is taken from
the target (the correction at the first rejection, or a bonus token when all are accepted). Both KV
caches are then cut back to the accepted sequence.

Verification (Leviathan et al., ICML 2023):

* ``greedy`` -- accept while the draft token equals the target's argmax; the output equals the
  target's own greedy output token for token.
* ``sample`` -- accept draft token ``x`` with probability ``min(1, p(x) / q(x))``; on rejection
  sample from ``norm(max(0, p - q))``; after ``gamma`` acceptances sample a bonus token from ``p``.
  ``p`` and ``q`` are the target's and draft's distributions after the same temperature and top-p
  warping, so the output follows the target's warped distribution exactly (lossless).

Chains (ML-SpecQD's multi-level drafts, SpecMQuant's hierarchy): the draft may itself be sped up by
a draft below it, to any depth. Each level generates by the same draft-verify rounds over the level
below, so its tokens follow its own distribution exactly and the level above verifies them as
ordinary draft tokens. The models themselves are built in :mod:`specsim.workload.drafts`.

Every forward pass can be reported to a :class:`StepObserver` (level, phase, tokens fed, cached
length before the pass); operand traces hang off that (:mod:`specsim.workload.optrace`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from specsim.errors import SpecsimError

VERIFY_MODES = ("greedy", "sample")


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are chosen: ``greedy`` or ``sample`` with temperature and nucleus (top-p)."""

    verify: str = "greedy"
    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.verify not in VERIFY_MODES:
            raise SpecsimError(f"verify mode '{self.verify}': expected one of {', '.join(VERIFY_MODES)}")
        if not self.temperature > 0:
            raise SpecsimError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise SpecsimError(f"top_p must be in (0, 1], got {self.top_p}")

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Warped next-token distribution(s) from logits ``[..., vocab]`` (float64)."""
        p = torch.softmax(logits.double() / self.temperature, dim=-1)
        if self.top_p < 1:
            sorted_p, order = p.sort(dim=-1, descending=True)
            keep = sorted_p.cumsum(dim=-1) - sorted_p < self.top_p  # smallest set reaching top_p
            sorted_p = sorted_p * keep
            p = torch.zeros_like(p).scatter(-1, order, sorted_p)
            p = p / p.sum(dim=-1, keepdim=True)
        return p

    def choose(self, logits: torch.Tensor, gen: torch.Generator) -> tuple[int, torch.Tensor | None]:
        """Next token from logits ``[vocab]``: argmax (greedy) or a sample; also the distribution sampled."""
        if self.verify == "greedy":
            return int(logits.argmax()), None
        p = self.probs(logits)
        return int(torch.multinomial(p, 1, generator=gen)), p


@dataclass
class Round:
    """One draft-verify round at one level: tokens drafted, how many were accepted, and whether all were.

    ``level`` 0 is the target verifying the first draft level; level ``i`` is draft level ``i``
    verifying the tokens of level ``i + 1`` (multi-level and hierarchical chains).
    """

    drafted: int
    accepted: int
    bonus: bool  #: True when every drafted token was accepted and the verifier added a bonus token
    level: int = 0


@dataclass
class Generation:
    """Result of one speculative generation."""

    prompt_len: int
    tokens: list[int]  #: generated tokens (prompt excluded)
    rounds: list[Round] = field(default_factory=list)  #: rounds of every level, in the order they ran

    @property
    def target_rounds(self) -> list[Round]:
        return [r for r in self.rounds if r.level == 0]

    @property
    def mean_tokens_per_round(self) -> float:
        """Mean tokens added per target verify step (accepted + the target's own token)."""
        rounds = self.target_rounds
        return sum(r.accepted + 1 for r in rounds) / max(len(rounds), 1)


class StepObserver(Protocol):
    """Told about every forward pass: level, phase, tokens fed, cached length before, rows through lm_head."""

    def begin_step(self, level: int, phase: str, tokens: int, past: int, logits: int) -> None: ...

    def end_step(self) -> None: ...


def cache_kwarg(model) -> str:
    """The name ``model.forward`` takes its KV cache under: ``cache`` since transformers 5.2x (which
    deprecates ``past_key_values``), ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _truncate(cache, length: int) -> None:
    """Cut a Hugging Face KV cache back to its first ``length`` positions."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class _Stream:
    """A model with its KV cache, fed incrementally; ``feed`` returns the logits of the last ``keep`` tokens."""

    def __init__(self, model, level: int = 0, observer: StepObserver | None = None):
        from transformers import DynamicCache

        self.model = model
        self.level = level
        self.observer = observer
        self.cache = DynamicCache()
        self._cache_kwarg = cache_kwarg(model)

    @property
    def length(self) -> int:
        return self.cache.get_seq_length()

    def feed(self, tokens: list[int], keep: int, phase: str) -> torch.Tensor:
        ids = torch.tensor([tokens], dtype=torch.long)
        if self.observer is not None:
            self.observer.begin_step(
                self.level, "prefill" if self.length == 0 else phase, len(tokens), self.length, keep
            )
        try:
            with torch.inference_mode():  # no autograd bookkeeping at all (cheaper than no_grad per pass)
                out = self.model(ids, **{self._cache_kwarg: self.cache}, use_cache=True, logits_to_keep=keep)
        finally:
            if self.observer is not None:
                self.observer.end_step()
        return out.logits[0, -keep:].float()

    def truncate(self, length: int) -> None:
        with torch.inference_mode():  # the cached tensors are inference tensors
            _truncate(self.cache, length)


class _Level:
    """One model of a draft chain. ``extend`` returns ``n`` tokens it would generate after a sequence.

    A level with a ``below`` level generates by speculation (``below`` drafts ``gamma`` tokens, this
    level verifies them in one pass); the lowest level generates autoregressively. Either way the
    tokens follow this level's own (warped) distribution exactly, so the level above can treat them
    as ordinary draft tokens with these distributions as ``q``.
    """

    def __init__(self, model, index: int, below: _Level | None, gamma: int, observer, rounds: list[Round]):
        self.stream = _Stream(model, index, observer)
        self.index = index
        self.below = below
        self.gamma = gamma
        self.rounds = rounds

    def round(self, seq: list[int], sampling: SamplingConfig, gen) -> tuple[list[int], list]:
        """One draft-verify round after ``seq``: the accepted draft tokens plus this level's own token."""
        drafted, q_dists = self.below.extend(seq, self.gamma, sampling, gen)
        start = self.stream.length
        logits = self.stream.feed(seq[start:] + drafted, len(drafted) + 1, "verify")
        accepted, extra, p_dists = _accept(drafted, q_dists, logits, sampling, gen)
        self.rounds.append(Round(len(drafted), accepted, accepted == len(drafted), self.index))
        self.rollback(len(seq) + accepted + 1)
        dists = [p_dists[i] for i in range(accepted + 1)] if p_dists is not None else []
        return drafted[:accepted] + [extra], dists

    def rollback(self, committed: int) -> None:
        """Forget cached positions beyond the committed sequence minus its last token (for every level below too)."""
        self.stream.truncate(min(self.stream.length, committed - 1))
        if self.below is not None:
            self.below.rollback(committed)

    def extend(self, seq: list[int], n: int, sampling: SamplingConfig, gen) -> tuple[list[int], list]:
        """Exactly ``n`` tokens after ``seq`` and (when sampling) this level's distribution for each."""
        if self.below is None:
            return self._autoregressive(seq, n, sampling, gen)
        out: list[int] = []
        dists: list = []
        while len(out) < n:
            tokens, p = self.round(seq + out, sampling, gen)
            out += tokens
            dists += p
        del out[n:], dists[n:]
        self.rollback(len(seq) + n)
        return out, dists

    def _autoregressive(self, seq: list[int], n: int, sampling: SamplingConfig, gen) -> tuple[list[int], list]:
        out: list[int] = []
        dists: list = []
        logits = self.stream.feed(seq[self.stream.length :], 1, "draft")[-1]
        for i in range(n):
            tok, q = sampling.choose(logits, gen)
            out.append(tok)
            if q is not None:
                dists.append(q)
            if i + 1 < n:
                logits = self.stream.feed([tok], 1, "draft")[-1]
        return out, dists


def speculative_generate(
    target,
    draft,
    prompt: list[int],
    gamma: int | Sequence[int],
    max_new_tokens: int,
    sampling: SamplingConfig = SamplingConfig(),
    seed: int = 0,
    eos_token_id: int | None = None,
    observer: StepObserver | None = None,
) -> Generation:
    """Generate up to ``max_new_tokens`` tokens after ``prompt`` with draft-verify rounds.

    ``draft`` is one model or a chain ``[level-1 draft, level-2 draft, ...]`` in which each model
    drafts for the one above it; ``gamma`` is one draft length for every level or one per level
    (``gamma[i]`` tokens drafted by level ``i + 1`` per round). ``observer`` hears of every forward pass.
    """
    if not prompt:
        raise SpecsimError("empty prompt")
    gen = torch.Generator().manual_seed(seed)
    result = Generation(prompt_len=len(prompt), tokens=[])
    top = _chain(target, draft, gamma, observer, result.rounds)
    # the target prefills the prompt and picks the first token; draft levels prefill on first use
    first, _ = sampling.choose(top.stream.feed(list(prompt), 1, "prefill")[-1], gen)
    seq = list(prompt) + [first]
    while len(seq) - len(prompt) < max_new_tokens and first != eos_token_id:
        seq += top.round(seq, sampling, gen)[0]
        new = seq[len(prompt) :]
        if eos_token_id is not None and eos_token_id in new:
            seq = seq[: len(prompt) + new.index(eos_token_id) + 1]
            break
    result.tokens = seq[len(prompt) : len(prompt) + max_new_tokens]
    return result


def speculative_round(
    target,
    draft,
    prefix: list[int],
    gamma: int | Sequence[int],
    sampling: SamplingConfig = SamplingConfig(),
    seed: int = 0,
) -> list[int]:
    """The tokens one draft-verify round adds after a fixed ``prefix`` (fresh caches).

    Its first token is a speculated position whose distribution must equal the target's next-token
    distribution after ``prefix``; statistical tests of losslessness sample it many times.
    """
    gen = torch.Generator().manual_seed(seed)
    top = _chain(target, draft, gamma, None, [])
    return top.round(list(prefix), sampling, gen)[0]


def _chain(target, draft, gamma: int | Sequence[int], observer, rounds: list[Round]) -> _Level:
    """The levels of a draft chain (one model or a list, one gamma or one per level), linked bottom-up."""
    drafts = list(draft) if isinstance(draft, (list, tuple)) else [draft]
    gammas = [gamma] * len(drafts) if isinstance(gamma, int) else list(gamma)
    if not drafts or len(gammas) != len(drafts):
        raise SpecsimError(f"need one gamma per draft level: {len(drafts)} levels, gammas {gammas}")
    if any(g < 1 for g in gammas):
        raise SpecsimError(f"gamma must be >= 1, got {gammas}")
    below = None
    for index in range(len(drafts), 0, -1):
        below = _Level(drafts[index - 1], index, below, gammas[index] if index < len(drafts) else 0, observer, rounds)
    return _Level(target, 0, below, gammas[0], observer, rounds)


def _accept(drafted, q_dists, t_logits, sampling: SamplingConfig, gen):
    """Accepted draft-token count, the token the verifier adds after them, and its warped distributions.

    The distributions (``[len(drafted) + 1, vocab]``, float64) are ``None`` for greedy verification.
    """
    if sampling.verify == "greedy":
        target_choice = t_logits.argmax(dim=-1).tolist()
        n = 0
        while n < len(drafted) and drafted[n] == target_choice[n]:
            n += 1
        return n, target_choice[n], None
    p_dists = sampling.probs(t_logits)
    for i, tok in enumerate(drafted):
        p, q = p_dists[i], q_dists[i]
        if float(torch.rand((), generator=gen, dtype=torch.float64)) < min(1.0, float(p[tok] / q[tok])):
            continue
        residual = (p - q).clamp_min(0)
        total = residual.sum()
        residual = residual / total if total > 0 else p
        return i, int(torch.multinomial(residual, 1, generator=gen)), p_dists
    return len(drafted), int(torch.multinomial(p_dists[len(drafted)], 1, generator=gen)), p_dists


def autoregressive_generate(
    model,
    prompt: list[int],
    max_new_tokens: int,
    sampling: SamplingConfig = SamplingConfig(),
    seed: int = 0,
    eos_token_id: int | None = None,
    observer: StepObserver | None = None,
) -> list[int]:
    """Plain decoding with a KV cache, one token per forward pass (the reference for speculation)."""
    gen = torch.Generator().manual_seed(seed)
    stream = _Stream(model, 0, observer)
    logits = stream.feed(list(prompt), 1, "decode")[-1]
    out: list[int] = []
    while len(out) < max_new_tokens:
        tok, _ = sampling.choose(logits, gen)
        out.append(tok)
        if tok == eos_token_id or len(out) == max_new_tokens:
            break
        logits = stream.feed([tok], 1, "decode")[-1]
    return out
