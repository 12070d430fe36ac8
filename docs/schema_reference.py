"""The run-config and hardware-config reference, generated from specsim's typed schema.

Every config of specsim is a tree of frozen dataclasses (:mod:`specsim.typedconfig`) whose fields carry
their unit, range, choices and documentation in ``spec(...)`` metadata. This module walks those trees
(``dataclasses.fields``, ``typing.get_type_hints``) and writes one Markdown table per section: key, type,
default, unit, range or choices, doc. Nothing here is written by hand except a short note for each field
whose schema carries no doc (``NOTES``; ``tests/test_docs.py`` checks that each names such a field).

Used at build time by ``docs/hooks.py`` (MkDocs) and by ``tests/test_docs.py``; torch-free. Print a page
with ``python docs/schema_reference.py run`` (or ``hardware``).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from specsim.hardware.config import HardwareConfig
from specsim.hardware.dram import DRAMPreset
from specsim.hardware.energy import EnergyTable
from specsim.methods.base import get_method
from specsim.methods.describe import describe
from specsim.results.config import RunConfig
from specsim.typedconfig import Constant

ROOT = Path(__file__).resolve().parents[1]

#: a note for fields whose schema metadata has no doc: (class name, field) -> text
NOTES = {
    ("RunConfig", "name"): "name of this accelerator (and of the results folder, `results/<name>/`)",
    ("RunConfig", "hardware"): "a shipped hardware name (`speq`), a hardware YAML path, or a mapping with "
    "`include` (a name or path) plus overrides of any key of the hardware section, "
    "e.g. `{include: speq, array: {rows: 128}}`",
    ("RunConfig", "description"): "free text, shown in the report",
    ("RunConfig", "decoding"): "how the accelerator decodes (section below)",
    ("RunConfig", "workloads"): "what is replayed: real traces and/or shape-only models (section below)",
    ("RunConfig", "path"): "set by the loader: the file the config was read from",
    ("WorkloadConfig", "name"): "workload name (rows of the report)",
    ("WorkloadConfig", "shape"): "a shape-only model (SHAPE-DERIVED); give either `traces` or `shape`",
    ("ShapeWorkload", "architecture"): "a shipped architecture file name (`specsim/data/architectures/`, e.g. "
    "`llama-2-7b`)",
    ("ShapeWorkload", "prompt_len"): "prompt tokens of every sequence",
    ("ShapeWorkload", "max_new_tokens"): "tokens generated per sequence",
    ("HardwareConfig", "name"): "name of the hardware design",
    ("HardwareConfig", "clock_ghz"): "clock frequency",
    ("HardwareConfig", "array"): "the PE array (section below)",
    ("HardwareConfig", "modes"): "PE operating modes by name (fp16, quarter, int8, int4, mxfp4, ...)",
    ("HardwareConfig", "buffers"): "the four on-chip SRAM buffers (section below)",
    ("HardwareConfig", "dram"): "off-chip memory (section below)",
    ("HardwareConfig", "vector"): "vector / special-function unit (section below)",
    ("HardwareConfig", "source"): "where the numbers come from: a `[key]` of the bibliography or 'design choice'",
    ("BuffersConfig", "weights"): "weight tiles (the stationary operand in ws)",
    ("BuffersConfig", "activations"): "activation rows",
    ("BuffersConfig", "outputs"): "partial sums and outputs",
    ("BuffersConfig", "kv_cache"): "K/V operands of attention",
    ("BuffersConfig", "source"): "where the numbers come from",
    ("BufferConfig", "size_kib"): "capacity (two tile slots when double buffered)",
    ("BufferConfig", "banks"): "SRAM banks accessed in parallel",
    ("BufferConfig", "double_buffered"): "hold two tiles so the next loads during compute",
    ("DRAMConfig", "source"): "where the numbers come from",
    ("VectorConfig", "lanes"): "elements processed per cycle",
    ("VectorConfig", "cycles_per_element"): "per operation kind: softmax, norm, activation, elementwise, requant",
    ("VectorConfig", "source"): "where the numbers come from",
    ("EnergyTable", "name"): "table name",
    ("EnergyTable", "technology_nm"): "process node the constants are for",
    ("EnergyTable", "source"): "where the numbers come from",
    ("EnergyTable", "path"): "set by the loader",
    ("SRAMPoint", "size_kib"): "SRAM size of the published point",
    ("SRAMPoint", "pj_per_64bit"): "energy of one 64-bit access",
    ("SRAMPoint", "source"): "citation (`[key]` of the bibliography)",
    ("Constant", "value"): "the number (in [0, 1e15])",
    ("Constant", "unit"): "its unit; the table that holds it checks the unit",
    ("Constant", "source"): "citation: a `[key]` of the bibliography plus table, figure or section",
    ("DRAMPreset", "name"): "preset name (hbm2, hbm2e, hbm3, lpddr5)",
    ("DRAMPreset", "description"): "free text",
    ("DRAMPreset", "path"): "set by the loader",
}

#: the intro of a section whose class docstring does not read on its own
INTROS = {
    "RunConfig": "One run config (`hwconfigs/*.yaml`): an accelerator, its decoding, the workloads it "
    "replays and the baselines it is compared with.",
    "BuffersConfig": "The four on-chip SRAM buffers.",
    "DRAMPreset": "One memory technology: per-stack figures, access energy and background power.",
    "Constant": "Every constant of an energy table or DRAM preset is a `{value, unit, source}` mapping.",
}

#: placeholder of a dict key or list index in a dotted key, per field name
PLACEHOLDERS = {
    "modes": "<mode>",
    "baselines": "<baseline>",
    "workloads": "<i>",
    "traces": "<accelerator>",
    "acceptance": "<accelerator>",
    "mac": "<mode>",
    "sram_points": "<i>",
}

#: classes documented once as a type (not expanded per field): ``{value, unit, source}`` records
LEAF_CLASSES = (Constant,)


@dataclasses.dataclass
class Section:
    """One dataclass of the tree and every dotted key prefix it is found at."""

    cls: type
    prefixes: list[str]

    @property
    def anchor(self) -> str:
        return self.cls.__name__.lower()

    @property
    def title(self) -> str:
        return self.cls.__name__


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def config_fields(cls: type) -> list[dataclasses.Field]:
    """The fields a YAML file sets (``init=False`` fields are computed at load)."""
    return [f for f in dataclasses.fields(cls) if f.init]


def nested(tp: Any, name: str) -> list[tuple[type, str]]:
    """The dataclasses a field of type ``tp`` holds, each with its key suffix (``""``, ``.<i>``, ``.<name>``)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return [] if tp in LEAF_CLASSES else [(tp, "")]
    if origin in (typing.Union, types.UnionType):
        return [pair for arg in typing.get_args(tp) for pair in nested(arg, name)]
    if origin in (list, tuple):
        return [(c, f".{PLACEHOLDERS.get(name, '<i>')}{s}") for c, s in nested(typing.get_args(tp)[0], name)]
    if origin is dict:
        return [(c, f".{PLACEHOLDERS.get(name, '<name>')}{s}") for c, s in nested(typing.get_args(tp)[1], name)]
    return []


def sections(root: type, prefix: str = "") -> list[Section]:
    """Every dataclass reachable from ``root``, depth first, with the key prefixes it appears under."""
    found: dict[type, Section] = {}

    def visit(cls: type, at: str) -> None:
        if cls in found:
            found[cls].prefixes.append(at)
            return
        found[cls] = Section(cls, [at])
        hints = _hints(cls)
        for f in config_fields(cls):
            for sub, suffix in nested(hints[f.name], f.name):
                visit(sub, f"{at}{'.' if at else ''}{f.name}{suffix}")

    visit(root, prefix)
    return list(found.values())


def type_name(tp: Any) -> str:
    """A field type in words, with links to the sections of nested dataclasses."""
    origin = typing.get_origin(tp)
    if tp in LEAF_CLASSES:
        return f"[{tp.__name__.lower()}](#{tp.__name__.lower()})"
    if dataclasses.is_dataclass(tp):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"list of {type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of name to {type_name(typing.get_args(tp)[1])}"
    return {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null", Any: "any"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def number(v: float) -> str:
    """A bound as written in the schema: powers of two (and 2^k - 1) as such, large numbers grouped."""
    if isinstance(v, float) and not v.is_integer():
        return f"{v:g}"
    v = int(v) if float(v).is_integer() else v
    for k in range(20, 64):
        if v == 2**k:
            return f"2^{k}"
        if v == 2**k - 1:
            return f"2^{k} - 1"
    if abs(v) >= 10**6 and str(abs(v)).rstrip("0") == "1":
        return f"10^{len(str(abs(v))) - 1}"
    return f"{v:,}"


def value(v: Any) -> str:
    """A default value as it would be written in YAML."""
    if v is None:
        return "`null`"
    if isinstance(v, bool):
        return f"`{str(v).lower()}`"
    if isinstance(v, str):
        return f"`{v}`" if v else '`""`'
    if isinstance(v, (int, float)):
        return f"`{v:g}`" if isinstance(v, float) else f"`{v}`"
    if isinstance(v, dict):
        return "`{" + ", ".join(f"{k}: {value(x).strip('`')}" for k, x in v.items()) + "}`" if v else "`{}`"
    if isinstance(v, (list, tuple)):
        return "`[" + ", ".join(value(x).strip("`") for x in v) + "]`"
    if dataclasses.is_dataclass(v):
        return f"see [{type(v).__name__}](#{type(v).__name__.lower()})"
    return f"`{v!r}`"


def default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return value(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return value(f.default_factory())
    return "required"


def bounds(meta: dict) -> str:
    """Range (``gt``/``ge``/``le``/``lt``) or choices of a field."""
    choices = meta.get("choices")
    if choices:
        return ", ".join(value(c) for c in choices)
    lo = ("[", meta["ge"]) if meta.get("ge") is not None else ("(", meta["gt"]) if meta.get("gt") is not None else None
    hi = (meta["le"], "]") if meta.get("le") is not None else (meta["lt"], ")") if meta.get("lt") is not None else None
    if lo and hi:
        return f"{lo[0]}{number(lo[1])}, {number(hi[0])}{hi[1]}"
    if lo:
        return f"{'≥' if lo[0] == '[' else '>'} {number(lo[1])}"
    if hi:
        return f"{'≤' if hi[1] == ']' else '<'} {number(hi[0])}"
    return ""


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(text: str) -> str:
    """reST markup of docstrings and docs (``x``, :mod:`x`) as Markdown."""
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")


def doc(cls: type, f: dataclasses.Field) -> str:
    return markdown(f.metadata.get("doc") or NOTES.get((cls.__name__, f.name), ""))


def first_sentence(cls: type) -> str:
    """The first sentence of a class's docstring."""
    if cls.__name__ in INTROS:
        return INTROS[cls.__name__]
    text = markdown(" ".join((cls.__doc__ or "").split()))
    return text.split(". ")[0].rstrip(".") + "." if text else ""


def table(cls: type, key_prefix: str = "") -> list[str]:
    hints = _hints(cls)
    rows = ["| key | type | default | unit | range / choices | doc |", "|---|---|---|---|---|---|"]
    for f in config_fields(cls):
        rows.append(
            "| "
            + " | ".join(
                cell(c)
                for c in (
                    f"`{key_prefix}{f.name}`",
                    type_name(hints[f.name]),
                    default(f),
                    f.metadata.get("unit", ""),
                    bounds(f.metadata),
                    doc(cls, f),
                )
            )
            + " |"
        )
    return rows


def render_section(s: Section) -> list[str]:
    where = ", ".join(f"`{p}`" for p in s.prefixes) if s.prefixes != [""] else "the top level of the file"
    keys = f" Keys under {where}." if s.prefixes else ""
    out = [f"### {s.title} {{#{s.anchor}}}", "", f"{first_sentence(s.cls)}{keys}", ""]
    return out + table(s.cls) + [""]


def render_tree(root: type, prefix: str = "") -> str:
    return "\n".join(line for s in sections(root, prefix) for line in render_section(s))


def render_methods() -> str:
    """``decoding.params`` of every registered accelerator method (``specsim methods``)."""
    out = []
    for m in describe():
        params = config_fields(get_method(m["name"]).Params)
        drafts = ", ".join(f"`{d}`" for d in m["drafts"]) or "none"
        targets = ", ".join(f"`{t}*`" for t in m["target_formats"]) or "any"
        summary = m["summary"][:1].upper() + m["summary"][1:]
        facts = (
            f"Kind: {m['kind']}; draft schemes: {drafts}; target formats: {targets}; "
            f"lossless: {'yes' if m['lossless'] else 'no'}."
        )
        out += [f"### {m['name']} {{#method-{m['name']}}}", "", f"{summary}.", "", facts, ""]
        if not params:
            out += ["No parameters (`decoding.params` stays empty).", ""]
            continue
        out += table(get_method(m["name"]).Params, "decoding.params.") + [""]
    return "\n".join(out)


def shipped(kind: str) -> str:
    names = sorted(p.stem for p in (ROOT / "specsim" / "data" / kind).glob("*.yaml"))
    return ", ".join(f"`{n}`" for n in names)


def render(page: str) -> str:
    """The generated part of a reference page: ``run`` or ``hardware``."""
    if page == "run":
        lines = [
            "## Run config (`hwconfigs/*.yaml`)",
            "",
            (
                "Loaded by `specsim.results.config.load_run_config`; `--set KEY=VALUE` takes the same dotted keys "
                "(list items by index: `workloads.1.shape.prompts`). The `hardware` section is the hardware "
                "config of the [hardware reference](hardware-config.md#hardwareconfig)."
            ),
            "",
            _run_tree(),
            "",
            "## Accelerator methods (`decoding.method`, `decoding.params`)",
            "",
            (
                "Listed by `specsim methods`; a parameter without a default is a hardware constant each run config "
                "states with its unit and source."
            ),
            "",
            render_methods(),
        ]
    elif page == "hardware":
        lines = [
            f"## Hardware config (shipped: {shipped('hardware')})",
            "",
            (
                "Loaded by `specsim.hardware.config.load_hardware`; in a run config these keys sit under "
                "`hardware.` (e.g. `--set hardware.array.rows=128`)."
            ),
            "",
            render_tree(HardwareConfig),
            "",
            f"## Energy table (shipped: {shipped('energy')})",
            "",
            "`energy_table` of a hardware config names one; see [energy](../energy.md).",
            "",
            render_tree(EnergyTable),
            "",
            f"## DRAM preset (shipped: {shipped('dram')})",
            "",
            "`dram.preset` of a hardware config names one.",
            "",
            render_tree(DRAMPreset),
            "",
            "## Constants",
            "",
            *render_section(Section(Constant, [])),
        ]
    else:
        raise ValueError(f"unknown reference page {page!r}; expected run or hardware")
    return "\n".join(lines)


def _run_tree() -> str:
    """The run config's own sections; its ``hardware`` section links to the hardware page instead of
    repeating it."""
    secs = [s for s in sections(RunConfig) if s.cls.__module__ != "specsim.hardware.config"]
    text = "\n".join(line for s in secs for line in render_section(s))
    return text.replace("(#hardwareconfig)", "(hardware-config.md#hardwareconfig)")


if __name__ == "__main__":
    print(render(sys.argv[1] if len(sys.argv) > 1 else "run"))
