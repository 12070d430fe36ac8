"""The accelerator-method plug-in interface and its registry (torch-free).

An *accelerator method* is what distinguishes one accelerator's decoding from another's on the same
kind of array: FP16 autoregressive decoding, SPEQ's self-speculative drafts, OliVe's outlier-victim
pairs, Tender's channel groups, ... A method is one module in :mod:`specsim.methods` that registers a
:class:`Method` subclass with :func:`register`, like the number formats of the workload side. It owns

* its typed parameters (:attr:`Method.Params`, a frozen dataclass validated at load from a run
  config's ``decoding.params``; a hardware constant has no default: it is written, with its unit and
  source, in the run config's YAML);
* the decoding it replays: speculative or autoregressive (:attr:`Method.kind`), the trace draft
  schemes it accepts (:attr:`Method.drafts`) and the weight formats its target may use
  (:attr:`Method.target_formats`);
* the layer statistics of a trace it reads (:attr:`Method.layer_stats`);
* its lowering extras (:meth:`Method.lower`): generic operator-table columns (``extra_cycles`` once
  per operator, ``extra_cycles_per_output_tile``) and extra vector-unit passes, on top of the plain
  lowering of :mod:`specsim.hardware.lowering`.

Energy. A method's energy follows from what its lowering adds, priced by the accelerator's energy
table (Accelergy-style: counting apart from pricing): extra vector passes as vector-unit actions, extra
cycles as leakage over the longer run. None of the shipped methods needs a new priced action.

Adding a method touches one module here and its YAML (a run config in ``hwconfigs/``); nothing else
names it (``tests/test_methods.py`` checks that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from specsim.errors import SpecsimError
from specsim.hardware.lowering import LevelOps
from specsim.typedconfig import build_section

KINDS = ("speculative", "autoregressive")


@dataclass(frozen=True)
class NoParams:
    """A method without parameters."""


class Method:
    """One accelerator method (subclass and :func:`register` it; see the module docstring)."""

    name: ClassVar[str]
    summary: ClassVar[str]  #: one line for listings and reports
    kind: ClassVar[str]  #: "speculative" or "autoregressive"
    drafts: ClassVar[tuple[str, ...]] = ()  #: trace draft schemes it replays (speculative methods)
    target_formats: ClassVar[tuple[str, ...]] = ()  #: prefixes of the target's weight format; () = any
    layer_stats: ClassVar[tuple[str, ...]] = ()  #: trace layer statistics its lowering reads
    lossless: ClassVar[bool] = False  #: its output equals the FP16 model's (greedy: token for token)
    Params: ClassVar[type] = NoParams

    def params(self, raw: dict[str, Any], where: str) -> Any:
        """The typed parameters from a run config's ``decoding.params`` mapping (one-line errors)."""
        return build_section(self.Params, raw, where)

    def lower(self, params: Any, level: LevelOps) -> LevelOps:
        """Method-specific treatment of one chain level's operators (default: none)."""
        return level

    def needs_layer_stats(self, params: Any) -> tuple[str, ...]:
        """The layer statistics a real trace must carry for this method with ``params`` (default: all of
        :attr:`layer_stats`); a trace without them is refused rather than replayed with a fallback."""
        return self.layer_stats

    def replays(self, draft: str) -> bool:
        """Whether this method replays traces of draft scheme ``draft``: one of :attr:`drafts`, one of them
        with its arguments (``speq:e3_row``, ``hierarchical:<target>/<chain>``), or a token tree of one
        (``tree(speq,eagle)``)."""
        return draft_family(draft) in self.drafts

    def accepts_target(self, fmt: str) -> bool:
        return not self.target_formats or fmt.startswith(self.target_formats)


_REGISTRY: dict[str, Method] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.kind not in KINDS:
        raise ValueError(f"method {cls.name}: kind must be one of {KINDS}")
    if cls.name in _REGISTRY:
        raise ValueError(f"method {cls.name} registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def method_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_method(name: str, where: str = "decoding.method") -> Method:
    """The registered method ``name``; a one-line error lists the others."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SpecsimError(
            f"{where}: unknown accelerator method {name!r}; expected one of {', '.join(_REGISTRY)}"
        ) from None


def draft_family(draft: str) -> str:
    """The scheme a draft belongs to: ``speq`` for ``speq``, ``speq:e3_row`` and ``tree(speq,eagle)``;
    ``hierarchical`` for any ``hierarchical:...`` (whose levels may end in a tree)."""
    if draft.startswith("tree(") and draft.endswith(")"):
        return draft_family(draft[len("tree(") : -1].split(",", 1)[0])
    return draft.split(":", 1)[0]


def is_tree_draft(draft: str) -> bool:
    """Whether the scheme drafts a token tree at some level (``tree(...)`` anywhere in it)."""
    return "tree(" in draft


def method_for(kind: str, draft: str, target_format: str, where: str = "decoding") -> Method:
    """The method a config without ``method`` means: the speculative method that replays ``draft``, or the
    plain autoregressive method (no lowering extras) that accepts ``target_format``."""
    if kind == "speculative":
        claim = [m for m in _REGISTRY.values() if m.kind == kind and m.replays(draft)]
    else:
        claim = [
            m
            for m in _REGISTRY.values()
            if m.kind == kind and type(m).lower is Method.lower and m.accepts_target(target_format)
        ]
    if not claim:
        what = f"draft scheme {draft!r}" if kind == "speculative" else f"{target_format!r} weights autoregressively"
        raise SpecsimError(
            f"{where}.method: no accelerator method replays {what} by default; give decoding.method "
            f"(one of {', '.join(_REGISTRY)})"
        )
    return claim[0]
