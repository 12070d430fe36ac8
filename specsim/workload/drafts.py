"""Draft schemes: from a scheme name to the models that run (target, draft levels) and their formats.

Scheme grammar (``specsim trace --draft``):

=================================  ===============================================================
``speq[:<layout>]``                SPEQ: the target's architecture with BSFP top-nibble weights
``mxfp4``, ``int4_g128``, ...      a weight view of the target in any format (``view:<format>`` too)
``early:<n>[:<level>]``            the first ``n`` decoder layers (of a view), then norm + lm_head
``model:<name>``                   an independent model sharing the tokenizer
``A>B>...``                        multi-level chain: ``A`` drafts for the target, ``B`` drafts for
                                   ``A``, ... (any depth); ``multilevel:A>B`` is the same
``multilevel``                     ML-SpecQD-style default chain :data:`DEFAULT_MULTILEVEL`
``hierarchical[:<target>/<chain>]`` SpecMQuant: the chain drafts for a 4-bit-weight *target*
                                   (default :data:`DEFAULT_HIERARCHICAL`); lossless w.r.t. that target
``tree(<level>,<shape>)``          the level drafts a static token tree each round (the bottom level
                                   of a chain only), e.g. ``tree(speq,eagle)``, ``tree(mxfp4,4-2-2-1)``;
                                   shapes in :mod:`specsim.workload.trees` (names, branch factors,
                                   ``p:<parents>``)
``none``                           no speculation: the FP16 target decodes autoregressively
``olive[:4|8]``, ``tender[:4|8]``,  no speculation: the quantized model itself decodes
``int4[:g128]``                    (OliVe W4A4 / Tender W4A4 / INT4 weight-only per channel or per
                                   group of 128, i.e. W4A16), to measure drift
=================================  ===============================================================

Trees: the level above a ``tree(...)`` level verifies the whole tree in one pass and keeps the longest
accepted root path. A tree level above a chain level (``tree(speq,eagle)>int3_g32``) is not supported.

SpecMQuant (Zhang et al., "Speculative Decoding Meets Quantization", 2025) as published: the target is
a 4-bit-weight model (W4A16); EAGLE-2 drafts a *tree* at the bottom; a small intermediate model
verifies that tree and turns its accepted path into a *sequence* (chain) draft for the W4 target,
whose verification of a chain costs little more than one token's pass (a tree's verification is
what eats the W4 target's memory savings). Chosen here: no EAGLE heads or trained small model exist
for SmolLM2, so the intermediate level is a 3-bit view of the target and the bottom level an
early-exit 3-bit view drafting a *static* tree (EAGLE-1's ``eagle`` shape, not EAGLE-2's dynamic
tree): :data:`DEFAULT_SPECMQUANT` = ``hierarchical:int4_g128/int3_g32>tree(early:15:int3_g32,eagle)``.
The intermediate level drafts ``gamma`` tokens (``specsim trace --gamma``) per target round, obtained by
as many tree rounds below it as needed; the gamma of a level verifying a tree is not used.

Weight views replace every decoder linear weight; embeddings, norms, activations and the KV cache stay
16-bit. The draft levels' lm_head is a choice (``specsim trace --draft-lm-head``, :func:`lm_head_format`):
FP16 by default (keeping it 16-bit is worth 0.05-0.08 alpha on SmolLM2-135M, greedy, gamma 4), ``same``
(the level's own weight format, e.g. BSFP's top nibble for ``speq``) or a weight format (``int8``,
``speq`` for BSFP's top nibble, ``mxfp4``, ...). The target's lm_head is always FP16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from specsim.errors import SpecsimError
from specsim.trace.schedule import LM_HEAD_CHOICES, refuse_lm_head_without_draft
from specsim.workload.formats import bsfp, get_format
from specsim.workload.models import load_model
from specsim.workload.quantized import DRIFT_FORMATS, quantized_model
from specsim.workload.trees import TreeShape, parse_tree
from specsim.workload.views import early_exit, lm_head_view, weight_view, weight_view_draft

__all__ = [
    "BuiltScheme",
    "SchemePlan",
    "build_draft",
    "build_level",
    "build_scheme",
    "early_exit",
    "level_format",
    "lm_head_format",
    "parse_scheme",
    "split_tree",
    "weight_view",
    "weight_view_draft",
]

#: ML-SpecQD: an MXFP4 draft, itself drafted by a cheaper lower-bit view (no smaller SmolLM2 with the
#: same tokenizer is installable offline, so the level-2 draft is a 3-bit group-32 view).
DEFAULT_MULTILEVEL = "mxfp4>int3_g32"
#: SpecMQuant: W4A16 (INT4, group 128) target; a cheaper 3-bit view verifies an early-exit 3-bit draft.
DEFAULT_HIERARCHICAL = "int4_g128/int3_g32>early:15:int3_g32"
#: SpecMQuant as published: tree at the bottom level, chain above it, W4 target (module docstring).
DEFAULT_SPECMQUANT = "hierarchical:int4_g128/int3_g32>tree(early:15:int3_g32,eagle)"
DRIFT_SCHEMES = ("olive", "tender", "int4")


@dataclass(frozen=True)
class SchemePlan:
    """A parsed scheme: what the target is and which draft levels run above it."""

    scheme: str  #: as given by the user
    mode: str  #: ``speculative``, ``autoregressive`` (no draft) or ``drift`` (quantized model, no draft)
    target: str = "fp16"  #: weight format of the model whose output is produced
    levels: tuple[str, ...] = ()  #: draft level specs, level 1 (drafts for the target) first

    @property
    def depth(self) -> int:
        return len(self.levels)


def parse_scheme(scheme: str) -> SchemePlan:
    """Parse a scheme name (grammar in the module docstring); errors name the scheme."""
    name, _, arg = scheme.partition(":")
    if scheme == "none":
        return SchemePlan(scheme, "autoregressive")
    if name in DRIFT_SCHEMES:
        if name == "int4":  # int4: per output channel; int4:g128: one scale per group of 128
            if arg and f"int4_{arg}" not in DRIFT_FORMATS:
                raise SpecsimError(f"draft scheme '{scheme}': expected int4 or int4:g128")
            return SchemePlan(scheme, "drift", f"int4_{arg}" if arg else "int4")
        bits = arg or "4"
        if bits not in ("4", "8"):
            raise SpecsimError(f"draft scheme '{scheme}': expected olive[:4|8], tender[:4|8], int4 or int4:g128")
        return SchemePlan(scheme, "drift", f"{name}{bits}")
    if name == "hierarchical":
        target, sep, chain = (arg or DEFAULT_HIERARCHICAL).partition("/")
        if not sep or not chain:
            raise SpecsimError(f"draft scheme '{scheme}': expected hierarchical:<target format>/<draft chain>")
        _check_format(scheme, target)
        return SchemePlan(scheme, "speculative", target, _levels(scheme, chain))
    if name == "multilevel":
        return SchemePlan(scheme, "speculative", "fp16", _levels(scheme, arg or DEFAULT_MULTILEVEL))
    return SchemePlan(scheme, "speculative", "fp16", _levels(scheme, scheme))


def _levels(scheme: str, chain: str) -> tuple[str, ...]:
    levels = tuple(part.strip() for part in chain.split(">"))
    for i, level in enumerate(levels):
        level_format(level, where=scheme)  # validates
        if i + 1 < len(levels) and split_tree(level, scheme)[1] is not None:
            raise SpecsimError(
                f"draft scheme '{scheme}': a tree level ('{level}') must be the bottom level; a tree above a "
                "chain level is not supported"
            )
    return levels


def split_tree(level: str, where: str | None = None) -> tuple[str, TreeShape | None]:
    """``tree(<level>,<shape>)`` -> (inner level, its tree shape); any other level -> (level, None)."""
    if not level.startswith("tree("):
        return level, None
    inner, comma, shape = level[5:].partition(",")
    if not level.endswith(")") or not comma or not inner.strip() or not shape[:-1].strip():
        raise SpecsimError(f"draft scheme '{where or level}': expected tree(<draft level>,<tree shape>)")
    try:
        return inner.strip(), parse_tree(shape[:-1])
    except SpecsimError as err:
        raise SpecsimError(f"draft scheme '{where or level}': {err}") from None


def _check_format(scheme: str, fmt: str) -> None:
    try:
        get_format(fmt)
    except SpecsimError as err:
        raise SpecsimError(f"draft scheme '{scheme}': {err}") from None


def level_format(level: str, where: str | None = None) -> str:
    """Weight format of the decoder linears of a draft level (``fp16`` for an independent model)."""
    where = where or level
    inner, tree = split_tree(level, where)
    if tree is not None:
        if inner.startswith("tree("):
            raise SpecsimError(f"draft scheme '{where}': a tree level cannot hold another tree")
        return level_format(inner, where)
    name, _, arg = level.partition(":")
    if name == "speq":
        layout = arg or bsfp.DEFAULT_LAYOUT
        if layout not in bsfp.LAYOUTS:
            raise SpecsimError(
                f"draft scheme '{where}': unknown BSFP layout '{layout}'; expected one of {', '.join(bsfp.LAYOUTS)}"
            )
        return f"bsfp_draft_{layout}"
    if name == "model":
        if not arg:
            raise SpecsimError(f"draft scheme '{where}': model:<name> needs a model name")
        return "fp16"
    if name == "early":
        n, _, inner = arg.partition(":")
        if not n.isdigit() or int(n) < 1:
            raise SpecsimError(f"draft scheme '{where}': early:<layers>[:<level>] needs a positive layer count")
        return level_format(inner, where) if inner else "fp16"
    if name == "view":
        name = arg
    if name in ("", "olive", "tender", "multilevel", "hierarchical", "none"):  # int4 is a plain weight view here
        raise SpecsimError(
            f"draft scheme '{where}': '{level}' cannot be a draft level; expected speq[:layout], "
            "a weight format (mxfp4, int4_g128, ...), early:<n>[:<level>] or model:<name>"
        )
    _check_format(where, name)
    return name


def lm_head_format(level: str, choice: str) -> str:
    """Weight format of a draft level's lm_head for ``--draft-lm-head choice`` (see the module docstring)."""
    if choice == "fp16":
        return "fp16"
    if choice == "same":
        return level_format(level)
    name = choice.partition(":")[0]
    if name in ("early", "model", "view") or choice.startswith("tree("):
        raise SpecsimError(f"--draft-lm-head '{choice}': expected {LM_HEAD_CHOICES}")
    try:
        return level_format(choice)
    except SpecsimError:
        raise SpecsimError(f"--draft-lm-head '{choice}': expected {LM_HEAD_CHOICES}") from None


@dataclass
class BuiltScheme:
    """The models of a scheme, ready to run: the target (possibly quantized) and the draft levels."""

    plan: SchemePlan
    target: torch.nn.Module
    drafts: list[torch.nn.Module] = field(default_factory=list)
    draft_lm_head: str = "fp16"  #: the ``--draft-lm-head`` choice applied to every draft level

    @property
    def lm_head_formats(self) -> list[str]:
        """Weight format of each level's lm_head, target (always ``fp16``) first."""
        return ["fp16"] + [lm_head_format(level, self.draft_lm_head) for level in self.plan.levels]

    @property
    def level_formats(self) -> list[str]:
        """Weight format of each level's decoder linears, target first."""
        return [self.plan.target] + [level_format(level) for level in self.plan.levels]

    @property
    def trees(self) -> list[TreeShape | None]:
        """Tree shape drafted by each draft level (``None``: a chain level), level 1 first."""
        return [split_tree(level)[1] for level in self.plan.levels]

    @property
    def level_names(self) -> list[str]:
        return ["target" if self.plan.target == "fp16" else f"target:{self.plan.target}"] + list(self.plan.levels)


def build_scheme(
    model: torch.nn.Module,
    scheme: str,
    calibration: Callable[[], torch.Tensor] | None = None,
    fingerprint: str | None = None,
    draft_lm_head: str = "fp16",
) -> BuiltScheme:
    """Build a scheme's models from the FP16 ``model``.

    ``calibration`` returns token ids ``[1, T]`` of calibration text; drift schemes (OliVe, Tender)
    calibrate their static activation quantizers on it. With ``fingerprint`` (of ``model``, see
    :func:`~specsim.workload.cache.model_fingerprint`) weight views come from specsim's cache.
    ``draft_lm_head``: the draft levels' lm_head (:func:`lm_head_format`).
    """
    plan = parse_scheme(scheme)
    refuse_lm_head_without_draft(draft_lm_head, scheme, plan.mode == "speculative")
    if plan.mode == "drift":
        if calibration is None:
            raise SpecsimError(f"draft scheme '{scheme}' needs calibration text for its activation quantizers")
        return BuiltScheme(plan, quantized_model(model, plan.target, calibration()))
    heads = [lm_head_format(level, draft_lm_head) for level in plan.levels]  # validated before any work
    target = model if plan.target == "fp16" else weight_view(model, plan.target, fingerprint)
    drafts = [lm_head_view(build_level(model, lv, fingerprint), head) for lv, head in zip(plan.levels, heads)]
    return BuiltScheme(plan, target, drafts, draft_lm_head)


def build_level(model: torch.nn.Module, level: str, fingerprint: str | None = None) -> torch.nn.Module:
    """One draft level's model, built from the FP16 target ``model`` (see the module docstring);
    ``fingerprint``: as for :func:`build_scheme`."""
    inner, tree = split_tree(level)
    if tree is not None:
        return build_level(model, inner, fingerprint)
    name, _, arg = level.partition(":")
    if name == "model":
        return load_model(arg, tokenizer=False).model
    if name == "early":
        n, _, inner = arg.partition(":")
        return early_exit(build_level(model, inner, fingerprint) if inner else model, int(n))
    return weight_view(model, level_format(level), fingerprint)


def build_draft(model: torch.nn.Module, scheme: str) -> torch.nn.Module:
    """The single draft model of a one-level scheme (e.g. ``speq``, ``mxfp4``, ``model:<name>``)."""
    plan = parse_scheme(scheme)
    if plan.mode != "speculative" or plan.depth != 1 or plan.target != "fp16":
        raise SpecsimError(f"draft scheme '{scheme}' is not a single draft model; use build_scheme")
    return build_level(model, plan.levels[0])
