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

Draft models are built from the target itself (:func:`weight_view_draft`: the same architecture with
every decoder linear weight replaced by a format's draft view, e.g. SPEQ's BSFP top nibble or
ML-SpecQD's MXFP4; lm_head, embeddings, norms, activations and KV cache stay 16-bit) or are an
independent model sharing the tokenizer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

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
    """One draft-verify round: tokens drafted, how many were accepted, and the token the target added."""

    drafted: int
    accepted: int
    bonus: bool  #: True when every drafted token was accepted and the target added a bonus token


@dataclass
class Generation:
    """Result of one speculative generation."""

    prompt_len: int
    tokens: list[int]  #: generated tokens (prompt excluded)
    rounds: list[Round] = field(default_factory=list)

    @property
    def mean_tokens_per_round(self) -> float:
        """Mean tokens added per verify step (accepted + the target's own token)."""
        return sum(r.accepted + 1 for r in self.rounds) / max(len(self.rounds), 1)


def _truncate(cache, length: int) -> None:
    """Cut a Hugging Face KV cache back to its first ``length`` positions."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class _Stream:
    """A model with its KV cache, fed incrementally: ``feed(tokens)`` returns logits for each."""

    def __init__(self, model):
        from transformers import DynamicCache

        self.model = model
        self.cache = DynamicCache()

    @property
    def length(self) -> int:
        return self.cache.get_seq_length()

    def feed(self, tokens: list[int]) -> torch.Tensor:
        ids = torch.tensor([tokens], dtype=torch.long)
        with torch.no_grad():
            out = self.model(ids, past_key_values=self.cache, use_cache=True)
        return out.logits[0].float()

    def truncate(self, length: int) -> None:
        _truncate(self.cache, length)


def speculative_generate(
    target,
    draft,
    prompt: list[int],
    gamma: int,
    max_new_tokens: int,
    sampling: SamplingConfig = SamplingConfig(),
    seed: int = 0,
    eos_token_id: int | None = None,
) -> Generation:
    """Generate up to ``max_new_tokens`` tokens after ``prompt`` with draft-verify rounds."""
    if gamma < 1:
        raise SpecsimError(f"gamma must be >= 1, got {gamma}")
    if not prompt:
        raise SpecsimError("empty prompt")
    gen = torch.Generator().manual_seed(seed)
    t_stream, d_stream = _Stream(target), _Stream(draft)
    seq = list(prompt)
    result = Generation(prompt_len=len(prompt), tokens=[])
    while len(seq) - len(prompt) < max_new_tokens:
        # draft gamma tokens (the draft cache holds seq[:d_stream.length])
        drafted: list[int] = []
        q_dists: list[torch.Tensor] = []
        logits = d_stream.feed(seq[d_stream.length :])[-1]
        for i in range(gamma):
            tok, q = sampling.choose(logits, gen)
            if q is not None:
                q_dists.append(q)
            drafted.append(tok)
            if i + 1 < gamma:
                logits = d_stream.feed([tok])[-1]
        # verify all drafted tokens in one target pass
        start = t_stream.length
        t_logits = t_stream.feed(seq[start:] + drafted)[len(seq) - start - 1 :]  # [gamma + 1, vocab]
        accepted, extra = _accept(drafted, q_dists, t_logits, sampling, gen)
        result.rounds.append(Round(drafted=gamma, accepted=accepted, bonus=accepted == gamma))
        seq += drafted[:accepted] + [extra]
        t_stream.truncate(len(seq) - 1)
        d_stream.truncate(min(d_stream.length, len(seq) - 1))
        new = seq[len(prompt) :]
        if eos_token_id is not None and eos_token_id in new:
            seq = seq[: len(prompt) + new.index(eos_token_id) + 1]
            break
    result.tokens = seq[len(prompt) : len(prompt) + max_new_tokens]
    return result


def _accept(drafted, q_dists, t_logits, sampling: SamplingConfig, gen) -> tuple[int, int]:
    """Number of accepted draft tokens and the token the target adds after them."""
    if sampling.verify == "greedy":
        target_choice = t_logits.argmax(dim=-1).tolist()
        n = 0
        while n < len(drafted) and drafted[n] == target_choice[n]:
            n += 1
        return n, target_choice[n]
    p_dists = sampling.probs(t_logits)
    for i, tok in enumerate(drafted):
        p, q = p_dists[i], q_dists[i]
        if float(torch.rand((), generator=gen, dtype=torch.float64)) < min(1.0, float(p[tok] / q[tok])):
            continue
        residual = (p - q).clamp_min(0)
        total = residual.sum()
        residual = residual / total if total > 0 else p
        return i, int(torch.multinomial(residual, 1, generator=gen))
    return len(drafted), int(torch.multinomial(p_dists[len(drafted)], 1, generator=gen))


def autoregressive_generate(model, prompt: list[int], max_new_tokens: int, sampling: SamplingConfig = SamplingConfig(),
                            seed: int = 0, eos_token_id: int | None = None) -> list[int]:
    """Plain decoding with a KV cache, one token per forward pass (the reference for speculation)."""
    gen = torch.Generator().manual_seed(seed)
    stream = _Stream(model)
    logits = stream.feed(list(prompt))[-1]
    out: list[int] = []
    while len(out) < max_new_tokens:
        tok, _ = sampling.choose(logits, gen)
        out.append(tok)
        if tok == eos_token_id:
            break
        logits = stream.feed([tok])[-1]
    return out


def weight_view_draft(target, view: Callable[[torch.Tensor], torch.Tensor]):
    """A draft with the target's architecture whose decoder linear weights are ``view(fp16 weight)``.

    Embeddings, lm_head, norms and everything else are shared bit-for-bit with the target.
    """
    from specsim.workload.models import decoder_linears

    draft = copy.deepcopy(target)
    with torch.no_grad():
        for _, lin in decoder_linears(draft):
            lin.weight.copy_(view(lin.weight.detach().half()).to(lin.weight.dtype))
    draft.eval()
    return draft


def build_draft(target, scheme: str):
    """Draft model for a scheme: ``speq[:<bsfp layout>]``, ``mxfp4``, or any weight format name."""
    from specsim.workload.formats import FORMAT_NAMES, bsfp, get_format
    from specsim.workload.formats.bsfp import BSFP

    name, _, arg = scheme.partition(":")
    if name == "speq":
        codec = BSFP(arg or bsfp.DEFAULT_LAYOUT)
        return weight_view_draft(target, codec.quantize_draft)
    if name == "model":
        from specsim.workload.models import load_model

        return load_model(arg, tokenizer=False).model
    if scheme in FORMAT_NAMES:
        return weight_view_draft(target, get_format(scheme).quantize)
    raise SpecsimError(f"unknown draft scheme '{scheme}'; expected speq[:layout], mxfp4, model:<name> or a format name")
