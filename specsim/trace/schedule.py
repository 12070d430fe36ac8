"""Forward-pass schedules from acceptance events, and shape-derived traces. Imports only numpy.

:func:`speculative_steps` reproduces, from a prompt length and the accepted counts of its rounds,
the exact sequence of forward passes the PyTorch engine runs for a one-level draft (which level,
how many tokens, cached length, lm_head rows); tests check it against the passes hooks recorded on
the real model. With it, a model too large to run gets the same kind of trace from its shape
(:mod:`specsim.trace.architectures`) and an acceptance profile: a parametric alpha, or the
per-position acceptance measured in a real trace. Such traces carry ``source: "shape"`` and a
note saying so in their header.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from specsim.errors import SpecsimError
from specsim.trace.format_bits import LAYOUT_NAMES
from specsim.trace.operators import DIM_KV, architecture_template, template_arrays
from specsim.trace.tracefile import LAYER_STATS, PHASES, Trace, empty_arrays, summarize

PREFILL, DRAFT, VERIFY, DECODE = (PHASES.index(p) for p in ("prefill", "draft", "verify", "decode"))


def speculative_steps(
    prompt_len: int, accepted: list[int], gamma: int | Sequence[int]
) -> list[tuple[int, int, int, int, int]]:
    """Passes ``(level, phase, tokens, past, logits)`` of one prompt decoded by draft-verify rounds.

    Mirrors :mod:`specsim.workload.speculative`: the target prefills the prompt and picks the first
    token; each round the draft catches up and drafts ``gamma`` tokens (``gamma`` passes, the last
    draft token is never fed), the target verifies in one pass over ``gamma + 1`` logits, and both
    caches are cut back to the accepted sequence minus its last token. ``gamma``: one draft length, or
    one per round (``decoding.gamma: auto``).
    """
    gammas = [gamma] * len(accepted) if isinstance(gamma, int) else list(gamma)
    steps = [(0, PREFILL, prompt_len, 0, 1)]
    seq, target, draft = prompt_len + 1, prompt_len, 0  # sequence length, cached lengths
    for a, gamma in zip(accepted, gammas):
        if not 0 <= a <= gamma:
            raise SpecsimError(f"accepted count {a} outside [0, {gamma}]")
        steps.append((1, PREFILL if draft == 0 else DRAFT, seq - draft, draft, 1))
        draft = seq
        for _ in range(gamma - 1):
            steps.append((1, DRAFT, 1, draft, 1))
            draft += 1
        steps.append((0, VERIFY, seq - target + gamma, target, gamma + 1))
        target = seq + gamma
        committed = seq + a + 1
        target, draft, seq = min(target, committed - 1), min(draft, committed - 1), committed
    return steps


def autoregressive_steps(prompt_len: int, generated: int) -> list[tuple[int, int, int, int, int]]:
    """Passes of plain decoding: prefill, then one pass per generated token except the last."""
    return [(0, PREFILL, prompt_len, 0, 1)] + [(0, DECODE, 1, prompt_len + i, 1) for i in range(generated - 1)]


@dataclass(frozen=True)
class AcceptanceProfile:
    """Acceptance of draft position i given all before it accepted (i = 1..gamma), and where it came from."""

    position_acceptance: tuple[float, ...]
    source: str  #: "alpha=0.8" or "trace <path> (<draft>, gamma <g>)"

    @classmethod
    def parametric(cls, alpha: float, gamma: int) -> AcceptanceProfile:
        if not 0 <= alpha <= 1:
            raise SpecsimError(f"--alpha: expected a value in [0, 1], got {alpha}")
        return cls((alpha,) * gamma, f"alpha={alpha:g} (i.i.d., parametric)")

    @classmethod
    def from_trace(cls, trace: Trace, gamma: int) -> AcceptanceProfile:
        """Per-position acceptance of a real trace; positions beyond its gamma use its alpha."""
        s = summarize(trace)
        if trace.header.get("mode") != "speculative" or s.rounds == 0:
            raise SpecsimError(
                f"{trace.path}: holds no acceptance events ({trace.header.get('mode')} decoding); "
                "take acceptance from a speculative trace"
            )
        pos = list(s.position_acceptance[:gamma]) + [s.alpha] * max(0, gamma - len(s.position_acceptance))
        return cls(tuple(pos), f"trace {trace.path} ({trace.header['draft']}, gamma {trace.header['gamma']})")

    @classmethod
    def of(cls, source: float | Trace, gamma: int) -> AcceptanceProfile:
        """From an i.i.d. alpha in [0, 1] or a speculative trace (the one rule every caller uses)."""
        return (
            cls.parametric(float(source), gamma) if isinstance(source, (int, float)) else cls.from_trace(source, gamma)
        )

    @property
    def survival(self) -> np.ndarray:
        """P(accepted >= i) for i = 0..gamma (all positions before i accepted)."""
        return np.concatenate([[1.0], np.cumprod(self.position_acceptance)])

    @property
    def pooled_alpha(self) -> float:
        """The alpha a trace of this profile estimates (accepted / positions examined, as
        :func:`~specsim.trace.tracefile.summarize` pools them): E[accepted] / E[examined]; for an
        i.i.d. profile, its alpha."""
        survival = self.survival
        examined = survival[:-1].sum()
        return float(survival[1:].sum() / examined) if examined else 0.0

    @property
    def expected_tokens_per_round(self) -> float:
        """E[tokens per round] = 1 + sum_i P(accepted >= i): the i.i.d. (1 - a^(g+1)) / (1 - a) for one alpha."""
        return float(self.survival.sum())

    def quasi_rounds(self, start: int, shift: float, max_new_tokens: int) -> list[int]:
        """Accepted counts whose distribution follows the profile with low discrepancy: round ``k`` takes
        the inverse CDF of ``frac(vdc(start + k) + shift)`` (van der Corput, base 2, Cranley-Patterson
        shift), so the mean tokens per round approaches its expectation as O(log n / n), not O(1/sqrt n)."""
        survival = self.survival
        rounds, tokens, k = [], 1, start
        while tokens < max_new_tokens:
            u = (_van_der_corput(k + 1) + shift) % 1.0
            a = int((survival[1:] > u).sum())  # survival is non-increasing: leading positions passed
            rounds.append(a)
            tokens += a + 1
            k += 1
        return rounds

    def sample_rounds(self, rng: np.random.Generator, max_new_tokens: int) -> list[int]:
        """Accepted counts of successive rounds until ``max_new_tokens`` tokens exist (first token included)."""
        rounds, tokens = [], 1
        while tokens < max_new_tokens:
            a = 0
            while a < len(self.position_acceptance) and rng.random() < self.position_acceptance[a]:
                a += 1
            rounds.append(a)
            tokens += a + 1
        return rounds


def lockstep_auto_rounds(
    profile: AcceptanceProfile,
    prompt_lens: list[int],
    max_new_tokens: int,
    batch: int,
    choose: Callable[[int, float], int],
    uniform: Callable[[int], float],
) -> list[tuple[list[int], list[int]]]:
    """Per prompt, the draft length and accepted count of each round when the draft length is chosen per
    round (``decoding.gamma: auto``).

    Prompts decode in batches of ``batch`` consecutive ones, in lockstep: in each round the sequences
    of a batch that still need tokens draft ``g = choose(n, mean_past)`` tokens together (``n``: how many
    they are; ``mean_past``: their mean cached length in the target, tokens), and each accepts the inverse
    CDF of its own next draw ``uniform(prompt)`` under the profile truncated at ``g``. ``profile`` must cover every
    draft length ``choose`` returns."""
    survival = profile.survival
    out: list[tuple[list[int], list[int]]] = [([], []) for _ in prompt_lens]
    for start in range(0, len(prompt_lens), batch):
        members = range(start, min(start + batch, len(prompt_lens)))
        tokens = dict.fromkeys(members, 1)
        past = {i: prompt_lens[i] for i in members}
        while active := [i for i in members if tokens[i] < max_new_tokens]:
            g = choose(len(active), sum(past[i] for i in active) / len(active))
            for i in active:
                a = int((survival[1 : g + 1] > uniform(i)).sum())  # survival is non-increasing
                out[i][0].append(g)
                out[i][1].append(a)
                tokens[i] += a + 1
                past[i] += a + 1
    return out


def _van_der_corput(k: int) -> float:
    """The base-2 radical inverse of ``k`` (0.5, 0.25, 0.75, 0.125, ...)."""
    out, scale = 0.0, 0.5
    while k:
        k, bit = divmod(k, 2)
        out += bit * scale
        scale /= 2
    return out


ACCEPTANCE_MODES = ("sampled", "expected")
MAX_OPERATOR_ROWS = 4_000_000  #: operators one replay may simulate (about 2 GB of tables; half a minute or so)


def check_operator_rows(rows: int, where: str) -> None:
    """One line when a replay would simulate more than :data:`MAX_OPERATOR_ROWS` operators."""
    if rows > MAX_OPERATOR_ROWS:
        raise SpecsimError(
            f"{where}: about {rows:,} operators to replay, more than the {MAX_OPERATOR_ROWS:,} one "
            "run may simulate; give fewer prompts or new tokens"
        )


#: what ``--draft-lm-head`` accepts (the model path, :func:`specsim.workload.drafts.lm_head_format`, and the
#: shape path, :func:`shape_lm_head_format`)
LM_HEAD_CHOICES = "fp16, same (the level's own weight format), speq[:layout] (BSFP top nibble) or a weight format"


def _weight_view_format(scheme: str) -> str | None:
    """``speq[:<layout>]`` -> ``bsfp_draft[_<layout>]``, ``mxfp4`` / ``int<bits>[_g<group>]`` -> itself, else None."""
    name, _, arg = scheme.partition(":")
    if name == "speq":
        if arg and arg not in LAYOUT_NAMES:
            raise SpecsimError(f"'{scheme}': unknown BSFP layout '{arg}'; expected one of {', '.join(LAYOUT_NAMES)}")
        return f"bsfp_draft_{arg}" if arg else "bsfp_draft"
    if scheme == "mxfp4" or re.fullmatch(r"int[2-68](_g[1-9][0-9]*)?", scheme):
        return scheme
    return None


def shape_draft_format(scheme: str) -> str | None:
    """The draft level's weight format of a one-level draft scheme for a shape trace (no model is built):
    ``none`` -> None (plain decoding), ``speq[:<layout>]`` -> ``bsfp_draft[_<layout>]``, a weight format
    (``mxfp4``, ``int4_g128``, ...) -> itself. Chains, early exits and independent models need a real model."""
    if scheme == "none":
        return None
    draft_format = _weight_view_format(scheme)
    if draft_format is None:
        raise SpecsimError(
            f"--shape: draft scheme '{scheme}' is not supported for shape-only workloads; use one "
            "weight-view draft (speq[:layout], mxfp4, int<bits>[_g<group>]) or none"
        )
    return draft_format


def refuse_lm_head_without_draft(choice: str, scheme: str, has_draft: bool) -> None:
    """``--draft-lm-head`` other than ``fp16`` needs a draft level to apply to."""
    if choice != "fp16" and not has_draft:
        raise SpecsimError(f"--draft-lm-head {choice}: draft scheme '{scheme}' has no draft level")


def shape_lm_head_format(choice: str, scheme: str, draft_format: str | None) -> str:
    """Weight format of a shape trace's draft lm_head for ``--draft-lm-head choice`` (``draft_format``: the
    draft level's, from :func:`shape_draft_format`)."""
    refuse_lm_head_without_draft(choice, scheme, draft_format is not None)
    if choice == "fp16":
        return "fp16"
    if choice == "same":
        return draft_format
    head = _weight_view_format(choice)
    if head is None:
        raise SpecsimError(f"--draft-lm-head '{choice}': expected {LM_HEAD_CHOICES}")
    return head


def shape_trace(
    arch,
    draft_format: str | None,
    gamma: int,
    profile: AcceptanceProfile | None,
    prompt_lens: list[int],
    max_new_tokens: int,
    seed: int | Sequence[int],
    target_format: str = "fp16",
    acceptance: str = "sampled",
    auto_gamma: tuple[int, Callable[[int, float], int]] | None = None,
    draft_lm_head: str = "fp16",
) -> tuple[dict, dict[str, np.ndarray]]:
    """Header and arrays of a shape-derived trace: ``arch``'s operator template (decoder linears in
    ``target_format``), passes scheduled from acceptance events drawn from ``profile`` (or plain
    decoding when ``draft_format`` is None).

    ``acceptance``: ``sampled`` draws every round i.i.d. from ``seed`` (an int or a sequence of ints
    seeding one numpy stream); ``expected`` schedules low-discrepancy rounds (:meth:`AcceptanceProfile.
    quasi_rounds`) and records the profile's expected tokens per round, which the replay uses as the
    tokens each round yields.

    ``auto_gamma`` ``(batch, choose)``: the draft length is chosen per round for the lockstep batches of
    ``batch`` prompts (:func:`lockstep_auto_rounds`; ``gamma`` is then the longest ``choose`` may return
    and ``profile`` must cover it); the header records ``gamma_auto`` and, in expected mode, each
    prompt's expected decode tokens. ``draft_lm_head``: weight format of the draft level's lm_head.
    """
    if acceptance not in ACCEPTANCE_MODES:
        raise SpecsimError(f"acceptance mode {acceptance!r}: expected one of {', '.join(ACCEPTANCE_MODES)}")
    templates = {0: architecture_template(arch, target_format)}
    if draft_format is not None:
        templates[1] = architecture_template(arch, draft_format, draft_lm_head)
    # bound the work before scheduling anything: passes at the expected tokens per round, each with at
    # least its per-sequence operators (attention: what no batch shares; the replay checks the full count)
    rounds = max_new_tokens / profile.expected_tokens_per_round if profile else max_new_tokens
    passes = len(prompt_lens) * (2 + math.ceil(rounds) * (gamma + 1 if profile else 1))
    per_sequence = max(sum(op.n == DIM_KV or op.k == DIM_KV for op in t) for t in templates.values())
    check_operator_rows(
        passes * max(per_sequence, 1),
        f"shape workload {arch.name} ({len(prompt_lens)} prompts x {max_new_tokens} tokens)",
    )
    rng = np.random.default_rng(seed)
    shift = float(rng.random())  # expected mode: one Cranley-Patterson shift per stream
    quasi_index = 0
    plan = None
    if auto_gamma is not None and profile is not None:
        drawn = [0] * len(prompt_lens)

        def uniform(prompt: int) -> float:
            """Sampled: the stream's next draw. Expected: the prompt's own low-discrepancy sequence (its
            own Cranley-Patterson shift), so each sequence's rounds follow the profile closely."""
            if acceptance != "expected":
                return float(rng.random())
            drawn[prompt] += 1
            own_shift = (shift + prompt * 0.6180339887498949) % 1.0  # golden-ratio spread of the shifts
            return (_van_der_corput(drawn[prompt]) + own_shift) % 1.0

        plan = lockstep_auto_rounds(profile, prompt_lens, max_new_tokens, auto_gamma[0], auto_gamma[1], uniform)
    arrays: dict[str, list] = {
        k: []
        for k in (
            "round_prompt",
            "round_level",
            "round_drafted",
            "round_accepted",
            "prompt_len",
            "generated_len",
            "step_prompt",
            "step_level",
            "step_phase",
            "step_tokens",
            "step_past",
            "step_logits",
        )
    }
    for i, plen in enumerate(prompt_lens):
        if draft_format is None:
            steps, generated = autoregressive_steps(plen, max_new_tokens), max_new_tokens
        else:
            if plan is not None:
                gammas, accepted = plan[i]
            elif acceptance == "expected":
                accepted = profile.quasi_rounds(quasi_index, shift, max_new_tokens)
                quasi_index += len(accepted)
            else:
                accepted = profile.sample_rounds(rng, max_new_tokens)
            if plan is None:
                gammas = [gamma] * len(accepted)
            steps = speculative_steps(plen, accepted, gammas)
            generated = min(max_new_tokens, 1 + sum(a + 1 for a in accepted))
            for a, g in zip(accepted, gammas):
                for key, value in zip(("round_prompt", "round_level", "round_drafted", "round_accepted"), (i, 0, g, a)):
                    arrays[key].append(value)
        arrays["prompt_len"].append(plen)
        arrays["generated_len"].append(generated)
        for level, phase, tokens, past, logits in steps:
            for key, value in zip(
                ("step_prompt", "step_level", "step_phase", "step_tokens", "step_past", "step_logits"),
                (i, level, phase, tokens, past, logits),
            ):
                arrays[key].append(value)
    ops, names, formats = template_arrays(templates)
    out = {k: np.asarray(v) for k, v in arrays.items()}
    out.update(ops)
    out["tokens"] = np.full(int(out["generated_len"].sum()), -1)  # no real tokens: -1
    out.update(empty_arrays("layers"))
    header = {
        "source": "shape",
        "shape_note": f"SHAPE-DERIVED workload: architecture {arch.name} (no weights were run); acceptance "
        + (
            (f"{'sampled from' if acceptance == 'sampled' else 'at the expectation of'} {profile.source}")
            if profile
            else "not applicable (plain decoding)"
        ),
        "model": arch.name,
        "architecture": arch.__dict__,
        "draft": f"shape:{draft_format}" if draft_format else "none",
        "mode": "speculative" if draft_format else "autoregressive",
        "gamma": [gamma] if draft_format else [],
        "verify": "greedy",
        "seed": list(seed) if isinstance(seed, Sequence) else seed,
        "max_new_tokens": max_new_tokens,
        "prompt_count": len(prompt_lens),
        "acceptance_mode": acceptance if draft_format else None,
        "expected_tokens_per_round": profile.expected_tokens_per_round if profile else None,
        "configured_alpha": profile.pooled_alpha if profile else None,
        "levels": ["target"] + (["draft"] if draft_format else []),
        "level_formats": [target_format] + ([draft_format] if draft_format else []),
        "lm_head_formats": ["fp16"] + ([draft_lm_head] if draft_format else []),
        "activation_formats": ["fp16"] * (2 if draft_format else 1),
        "op_names": names,
        "formats": formats,
        "layer_stat_names": list(LAYER_STATS),
        "acceptance_profile": list(profile.position_acceptance) if profile else None,
    }
    if plan is not None:
        survival = profile.survival
        used = sorted({g for gammas, _ in plan for g in gammas})
        header["gamma"] = used or [gamma]
        header["gamma_auto"] = True
        header["expected_decode_tokens"] = [float(sum(survival[: g + 1].sum() for g in gs)) for gs, _ in plan]
        rounds = sum(len(gs) for gs, _ in plan)
        header["expected_tokens_per_round"] = sum(header["expected_decode_tokens"]) / rounds if rounds else None
    return header, out
