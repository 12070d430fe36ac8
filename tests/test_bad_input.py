"""Bad input never crashes, hangs or loses data: a corpus of malformed inputs and fuzzing of every loader.

Every case of the corpus runs the ``specsim`` command in-process (``main(argv)``) in a scratch folder
holding a file and a folder of the user's, and must: exit with code 2, print no traceback and at most
two lines, leave the scratch folder exactly as it was (nothing written, nothing of the user's touched)
and finish within its time bound. Valid controls beside them must succeed, so the checks cannot pass
vacuously. The hypothesis tests feed random and mutated inputs to the config loaders (run configs,
hardware, energy tables, sweep points), the trace reader and the command-line parser: an input either
loads or is refused with one :class:`SpecsimError` line, never another exception.
"""

from __future__ import annotations

import json
import math
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specsim.cli.main import main
from specsim.errors import SpecsimError
from specsim.outputs import RUN_MARKER

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "traces"
TIME_BOUND_S = 30.0


# ---- the scratch folder and its inputs ------------------------------------------------------------------


def _tiny_config() -> dict:
    """SPEQ vs FP16 on a SmolLM2-shaped workload of a few tokens: a valid run config to break."""
    return {
        "name": "tiny",
        "hardware": {"include": "speq"},
        "decoding": {
            "kind": "speculative",
            "draft": "speq",
            "gamma": 2,
            "level_modes": ["fp16", "quarter"],
            "formats": ["fp16", "bsfp_draft"],
            "trace": "speq",
        },
        "baselines": {"fp16": str(ROOT / "hwconfigs" / "fp16.yaml")},
        "workloads": [
            {
                "name": "s",
                "shape": {
                    "architecture": "smollm2-135m",
                    "prompts": 2,
                    "prompt_len": 8,
                    "max_new_tokens": 4,
                    "acceptance": {"speq": 0.7},
                },
            }
        ],
    }


def _lol(top: str = "") -> str:
    """A YAML alias bomb: 9 levels of 9 aliases of the level below (9^9 values once expanded)."""
    text, prev = 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n', "l0"
    for i in range(1, 10):
        text += f"l{i}: &l{i} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = f"l{i}"
    return top + text


def _tiny_trace(path: Path) -> Path:
    from specsim.trace.architectures import load_architecture
    from specsim.trace.schedule import AcceptanceProfile, shape_trace
    from specsim.trace.tracefile import write_trace

    header, arrays = shape_trace(
        load_architecture("smollm2-135m"), "bsfp_draft", 2, AcceptanceProfile.parametric(0.7, 2), [8], 4, 0
    )
    write_trace(path, header, arrays)
    return path


def _crafted_trace(
    path: Path, header_edit=None, arrays_edit=None, raw_header: bytes | None = None, rehash: bool = True
) -> Path:
    """A trace archive written directly (no validation): the valid tiny trace with its header or arrays edited,
    its payload hash recomputed (``rehash``) so that only the edit itself can make it invalid."""
    from specsim.trace.tracefile import HEADER_KEY, payload_sha256, read_trace

    good = read_trace(_tiny_trace(path.with_name("good_" + path.name)))
    path.with_name("good_" + path.name).unlink()
    header, arrays = dict(good.header), dict(good.arrays)
    if header_edit:
        header_edit(header)
    if arrays_edit:
        arrays_edit(arrays)
        if rehash:
            header["payload_sha256"] = payload_sha256(arrays)
    blob = raw_header if raw_header is not None else json.dumps(header).encode()
    np.savez(path, **{HEADER_KEY: np.frombuffer(blob, dtype=np.uint8)}, **arrays)
    return path


def _huge_member(path: Path) -> Path:
    """A trace whose 'tokens' member claims 10^12 elements in its .npy header but stores a few bytes."""
    _tiny_trace(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    head = b"\x93NUMPY\x01\x00"
    dict_text = "{'descr': '<i4', 'fortran_order': False, 'shape': (1000000000000,), }"
    dict_text += " " * (64 - (len(head) + 2 + len(dict_text) + 1) % 64) + "\n"
    members["tokens.npy"] = head + len(dict_text).to_bytes(2, "little") + dict_text.encode() + b"\0" * 16
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


@pytest.fixture()
def scratch(tmp_path, monkeypatch):
    """A working folder with the user's own file and folder in it, and the inputs the cases use."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("the user's data")
    (tmp_path / "notes.txt").write_text("the user's notes")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n the user's picture")
    (tmp_path / "data.npz").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip of the user's
    (tmp_path / "inputs").mkdir()
    inputs = tmp_path / "inputs"
    (inputs / "good.yaml").write_text(yaml.safe_dump(_tiny_config()))
    _tiny_trace(inputs / "tiny.npz")
    return tmp_path


def _write(folder: Path, name: str, text: str | bytes) -> str:
    p = folder / "inputs" / name
    p.write_bytes(text) if isinstance(text, bytes) else p.write_text(text)
    return str(p)


def _shape_trace(folder: Path, architecture: str, **changed) -> list[str]:
    """``specsim trace --shape`` arguments for a shipped architecture file with ``changed`` keys (1 prompt x 4 tokens)."""
    arch = yaml.safe_load((ROOT / f"specsim/data/architectures/{architecture}.yaml").read_text())
    path = _write(folder, f"{architecture}-changed.yaml", yaml.safe_dump({**arch, **changed}))
    return ["trace", "--shape", path, "--alpha", "0.5", "--limit", "1", "--max-new-tokens", "4", "-o", "t.npz"]


def _config(folder: Path, name: str, edit) -> str:
    data = _tiny_config()
    edit(data)
    return _write(folder, name, yaml.safe_dump(data))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


# ---- the corpus: (id, builder of argv given the scratch folder) -------------------------------------------


def _cfg(edit):
    return lambda f, i: ["run", _config(f, f"c{i}.yaml", edit), "--out", "out"]


def _yaml(text):
    return lambda f, i: ["run", _write(f, f"y{i}.yaml", text), "--out", "out"]


def _set(*pairs):
    return lambda f, i: [
        "run",
        str(f / "inputs" / "good.yaml"),
        "--out",
        "out",
        *[x for p in pairs for x in ("--set", p)],
    ]


def _hw(path, value):
    def edit(d):
        node = d["hardware"]
        *head, last = path.split(".")
        for key in head:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


def _shape(key, value):
    return lambda d: d["workloads"][0]["shape"].__setitem__(key, value)


CORPUS = {
    # run: malformed files
    "run-missing-file": lambda f, i: ["run", "inputs/none.yaml", "--out", "out"],
    "run-empty-file": _yaml(""),
    "run-not-yaml": _yaml("name: [unclosed\n"),
    "run-not-utf8": _yaml(b"name: \xff\xfe\n"),
    "run-top-level-list": _yaml("- 1\n- 2\n"),
    "run-repeated-key": _yaml("name: a\nname: b\n"),
    "run-alias-bomb": _yaml(_lol("name: x\nhardware: speq\n")),
    "run-deep-nesting": _yaml("name: x\nhardware: speq\nworkloads: " + "[" * 600 + "]" * 600 + "\n"),
    "run-deep-mapping": _yaml("name: x\nhardware: speq\ndescription: " + "{a: " * 300 + "1" + "}" * 300 + "\n"),
    "run-huge-string-name": _cfg(lambda d: d.__setitem__("name", ["x" * 100_000])),
    "run-binary-garbage": _yaml(bytes(range(256)) * 4),
    # run: keys and types
    "run-unknown-top-key": _cfg(lambda d: d.__setitem__("bogus", 1)),
    "run-unknown-decoding-key": _cfg(lambda d: d["decoding"].__setitem__("speed", 1)),
    "run-missing-hardware": _cfg(lambda d: d.pop("hardware")),
    "run-hardware-number": _cfg(lambda d: d.__setitem__("hardware", 7)),
    "run-unknown-hardware": _cfg(lambda d: d.__setitem__("hardware", "tpu-v9")),
    "run-gamma-text": _cfg(lambda d: d["decoding"].__setitem__("gamma", "four")),
    "run-gamma-zero": _cfg(lambda d: d["decoding"].__setitem__("gamma", 0)),
    "run-gamma-huge": _cfg(lambda d: d["decoding"].__setitem__("gamma", 10**30)),
    "run-gamma-bool": _cfg(lambda d: d["decoding"].__setitem__("gamma", True)),
    "run-kind-unknown": _cfg(lambda d: d["decoding"].__setitem__("kind", "telepathic")),
    "run-level-modes-null": _cfg(lambda d: d["decoding"].__setitem__("level_modes", None)),
    "run-level-mode-unknown": _cfg(lambda d: d["decoding"].__setitem__("level_modes", ["fp16", "fp3"])),
    "run-workloads-mapping": _cfg(lambda d: d.__setitem__("workloads", {"a": 1})),
    "run-no-workloads": _cfg(lambda d: d.__setitem__("workloads", [])),
    "run-workload-both": _cfg(lambda d: d["workloads"][0].__setitem__("traces", {"tiny": "x.npz"})),
    "run-prompts-zero": _cfg(_shape("prompts", 0)),
    "run-prompts-huge": _cfg(_shape("prompts", 10**9)),
    "run-prompt-len-huge": _cfg(_shape("prompt_len", 3 * 10**9)),
    "run-new-tokens-huge": _cfg(_shape("max_new_tokens", 10**12)),
    "run-new-tokens-negative": _cfg(_shape("max_new_tokens", -5)),
    "run-too-much-work": _cfg(lambda d: d["workloads"][0]["shape"].update(prompts=256, max_new_tokens=16384)),
    "run-alpha-two": _cfg(_shape("acceptance", {"speq": 2.0})),
    "run-alpha-nan": _yaml(yaml.safe_dump(_tiny_config()).replace("speq: 0.7", "speq: .nan")),
    "run-alpha-missing-trace": _cfg(_shape("acceptance", {"speq": "nowhere.npz"})),
    "run-acceptance-missing": _cfg(_shape("acceptance", {})),
    "run-unknown-architecture": _cfg(_shape("architecture", "gpt-9")),
    "run-acceptance-mode": _cfg(_shape("acceptance_mode", "average")),
    "run-seed-negative": _cfg(_shape("seed", -1)),
    "run-baseline-missing-file": _cfg(lambda d: d["baselines"].__setitem__("olive", "none.yaml")),
    "run-baseline-bad-override": _cfg(
        lambda d: d["baselines"].__setitem__(
            "olive",
            {"config": str(ROOT / "hwconfigs" / "olive.yaml"), "overrides": {"hardware": {"array": {"speed": 1}}}},
        )
    ),
    "run-comparison-unknown": _cfg(lambda d: d.__setitem__("comparison", "same_vibes")),
    "run-comparison-conflict": _cfg(lambda d: d.__setitem__("comparison", ["same_pe_count", "same_area"])),
    "run-confidence-one": _cfg(lambda d: d.__setitem__("confidence", 1.0)),
    "run-confidence-negative": _cfg(lambda d: d.__setitem__("confidence", -0.5)),
    # run: hardware values
    "hw-rows-zero": _cfg(_hw("array.rows", 0)),
    "hw-rows-huge": _cfg(_hw("array.rows", 10**9)),
    "hw-rows-float": _cfg(_hw("array.rows", 64.5)),
    "hw-dataflow": _cfg(_hw("array.dataflow", "rs")),
    "hw-clock-zero": _cfg(_hw("clock_ghz", 0)),
    "hw-clock-inf": _yaml(yaml.safe_dump(_tiny_config()).replace("include: speq", "include: speq\n  clock_ghz: .inf")),
    "hw-bandwidth-tiny": _cfg(_hw("dram.bandwidth_gbps", 1e-300)),
    "hw-bandwidth-negative": _cfg(_hw("dram.bandwidth_gbps", -256)),
    "hw-capacity-tiny": _cfg(_hw("dram.capacity_gib", 1e-6)),
    "hw-preset-unknown": _cfg(_hw("dram.preset", "hbm9")),
    "hw-stacks-zero": _cfg(_hw("dram.stacks", 0)),
    "hw-buffer-zero": _cfg(_hw("buffers.weights.size_kib", 0)),
    "hw-buffer-huge": _cfg(_hw("buffers.weights.size_kib", 1e30)),
    "hw-buffer-too-small": _cfg(_hw("buffers.weights.size_kib", 1)),
    "hw-mode-lanes-zero": _cfg(_hw("modes.quarter.lanes", 0)),
    "hw-vector-op-unknown": _cfg(_hw("vector.cycles_per_element.gelu", 1)),
    "hw-vector-op-negative": _cfg(_hw("vector.cycles_per_element.norm", -1)),
    "hw-energy-table-missing": _cfg(_hw("energy_table", "none.yaml")),
    # run: --set and --out
    "set-no-equals": _set("decoding.gamma"),
    "set-unknown-key": _set("hardware.array.speed=3"),
    "set-not-a-list-index": _set("workloads.9.shape.prompts=1"),
    "set-wrong-type": _set("hardware.array.rows=[1, 2]"),
    "set-deep-value": _set("description=" + "[" * 100 + "]" * 100),
    "set-alias-bomb": _set("description={" + _lol().strip().replace("\n", ", ") + "}"),
    "set-huge-gemm-bandwidth": _set("hardware.dram.bandwidth_gbps=1e-300"),
    "out-is-a-file": lambda f, i: ["run", str(f / "inputs" / "good.yaml"), "--out", "notes.txt"],
    "out-under-a-file": lambda f, i: ["run", str(f / "inputs" / "good.yaml"), "--out", "notes.txt/out"],
    "out-users-folder": lambda f, i: ["run", str(f / "inputs" / "good.yaml"), "--out", "mine"],
    "out-current-folder": lambda f, i: ["run", str(f / "inputs" / "good.yaml"), "--out", "."],
    # sweep
    "sweep-no-axes": lambda f, i: ["sweep", str(f / "inputs" / "good.yaml"), "--out", "sw"],
    "sweep-empty-axis": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--set",
        "decoding.gamma=",
        "--out",
        "sw",
    ],
    "sweep-unknown-key": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--set",
        "hardware.x=1,2",
        "--out",
        "sw",
    ],
    "sweep-points-not-list": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--points",
        _write(f, "p.yaml", "a: 1\n"),
        "--out",
        "sw",
    ],
    "sweep-points-alias-bomb": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--points",
        _write(f, "p.yaml", _lol()),
        "--out",
        "sw",
    ],
    "sweep-points-deep": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--points",
        _write(f, "p.yaml", "[" * 500 + "]" * 500),
        "--out",
        "sw",
    ],
    "sweep-workers-zero": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--set",
        "decoding.gamma=1,2",
        "--workers",
        "0",
        "--out",
        "sw",
    ],
    "sweep-workers-huge": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--set",
        "decoding.gamma=1,2",
        "--workers",
        "100000",
        "--out",
        "sw",
    ],
    "sweep-out-users-folder": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--set",
        "decoding.gamma=1,2",
        "--out",
        "mine",
    ],
    "sweep-out-is-a-file": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--set",
        "decoding.gamma=1,2",
        "--out",
        "notes.txt",
    ],
    # plot
    "plot-missing-table": lambda f, i: ["plot", "nowhere.csv", "--kind", "speedup", "-o", "fig.png"],
    "plot-not-a-table": lambda f, i: ["plot", str(f / "notes.txt"), "--kind", "speedup", "-o", "fig.png"],
    "plot-text-in-numbers": lambda f, i: [
        "plot",
        _edited_table(f, "t.csv", "speedup_vs_reference", "fast"),
        "--kind",
        "speedup",
        "-o",
        "fig.png",
    ],
    "plot-text-in-is-main": lambda f, i: [
        "plot",
        _edited_table(f, "t.csv", "is_main", "maybe"),
        "--kind",
        "speedup",
        "-o",
        "fig.png",
    ],
    "plot-infinite-speedup": lambda f, i: [
        "plot",
        _edited_table(f, "t.csv", "speedup_vs_reference", "inf"),
        "--kind",
        "speedup",
        "-o",
        "fig.png",
    ],
    "plot-blank-rows": lambda f, i: [
        "plot",
        _edited_table(f, "t.csv", "rows", "", None),
        "--kind",
        "pe-sweep",
        "-o",
        "fig.png",
    ],
    "plot-no-main-row": lambda f, i: [
        "plot",
        _edited_table(f, "t.csv", "is_main", "False", None),
        "--kind",
        "speedup",
        "-o",
        "fig.png",
    ],
    "plot-zero-reference-energy": lambda f, i: [
        "plot",
        _edited_table(f, "t.csv", "energy_j_per_token", "0", 1),
        "--kind",
        "energy",
        "-o",
        "fig.png",
    ],
    "plot-missing-column": lambda f, i: [
        "plot",
        _write(f, "t.csv", "workload,accelerator,is_main,speedup_vs_reference\nw,a,True,1.0\n"),
        "--kind",
        "speedup",
        "-o",
        "fig.png",
    ],
    "plot-empty-table": lambda f, i: [
        "plot",
        _write(f, "t.csv", (_good_table(f).read_text().splitlines()[0] + "\n")),
        "--kind",
        "speedup",
        "-o",
        "fig.png",
    ],
    "plot-where-bigint": lambda f, i: [
        "plot",
        str(_good_table(f)),
        "--kind",
        "speedup",
        "--where",
        "rows=" + "9" * 400,
        "-o",
        "fig.png",
    ],
    "plot-output-only-suffix": lambda f, i: ["plot", str(_good_table(f)), "--kind", "speedup", "-o", ".png"],
    "plot-overwrite-users-svg-naming-specsim": lambda f, i: [
        "plot",
        str(_good_table(f)),
        "--kind",
        "speedup",
        "-o",
        _write(f, "d.svg", "<svg><!-- made with specsim --></svg>"),
    ],
    "sweep-out-symlink": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--set",
        "decoding.gamma=1,2",
        "--out",
        _symlink(f),
    ],
    "sweep-out-users-lock": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--set",
        "decoding.gamma=1,2",
        "--out",
        _folder_with(f, "locks", ".lock", "the user's lock notes"),
    ],
    "sweep-out-too-long": lambda f, i: [
        "sweep",
        str(f / "inputs" / "good.yaml"),
        "--set",
        "decoding.gamma=1,2",
        "--out",
        "c" * 300,
    ],
    "inspect-compressed-member": lambda f, i: ["trace", "--inspect", _compressed_trace(f)],
    "plot-overwrite-users-png": lambda f, i: ["plot", str(_good_table(f)), "--kind", "speedup", "-o", "photo.png"],
    "plot-output-is-folder": lambda f, i: ["plot", str(_good_table(f)), "--kind", "speedup", "-o", "mine"],
    "plot-output-suffix": lambda f, i: ["plot", str(_good_table(f)), "--kind", "speedup", "-o", "fig.bmp"],
    "plot-output-under-file": lambda f, i: ["plot", str(_good_table(f)), "--kind", "speedup", "-o", "notes.txt/f.png"],
    "plot-kind-unknown": lambda f, i: ["plot", str(_good_table(f)), "--kind", "pie", "-o", "fig.png"],
    "plot-where-malformed": lambda f, i: [
        "plot",
        str(_good_table(f)),
        "--kind",
        "speedup",
        "--where",
        "gamma",
        "-o",
        "fig.png",
    ],
    # trace: arguments
    "trace-gamma-zero": lambda f, i: [
        "trace",
        "--shape",
        "llama-2-7b",
        "--alpha",
        "0.5",
        "--gamma",
        "0",
        "-o",
        "t.npz",
    ],
    "trace-gamma-huge": lambda f, i: ["trace", "--gamma", "33", "-o", "t.npz"],
    "trace-gamma-text": lambda f, i: ["trace", "--gamma", "four", "-o", "t.npz"],
    "trace-limit-negative": lambda f, i: [
        "trace",
        "--shape",
        "llama-2-7b",
        "--alpha",
        "0.5",
        "--limit",
        "-1",
        "-o",
        "t.npz",
    ],
    "trace-limit-zero": lambda f, i: ["trace", "--limit", "0", "-o", "t.npz"],
    "trace-new-tokens-huge": lambda f, i: ["trace", "--max-new-tokens", "1000000000000", "-o", "t.npz"],
    "trace-prompt-len-huge": lambda f, i: [
        "trace",
        "--shape",
        "llama-2-7b",
        "--alpha",
        "0.5",
        "--prompt-len",
        "3000000000",
        "-o",
        "t.npz",
    ],
    "trace-alpha-two": lambda f, i: ["trace", "--shape", "llama-2-7b", "--alpha", "2", "-o", "t.npz"],
    "trace-alpha-nan": lambda f, i: ["trace", "--shape", "llama-2-7b", "--alpha", "nan", "-o", "t.npz"],
    "trace-temperature-zero": lambda f, i: ["trace", "--temperature", "0", "-o", "t.npz"],
    "trace-top-p-two": lambda f, i: ["trace", "--top-p", "2", "-o", "t.npz"],
    "trace-seed-negative": lambda f, i: ["trace", "--seed", "-1", "-o", "t.npz"],
    "trace-output-users-npz": lambda f, i: ["trace", "--shape", "llama-2-7b", "--alpha", "0.5", "-o", "data.npz"],
    "trace-output-users-file": lambda f, i: ["trace", "--shape", "llama-2-7b", "--alpha", "0.5", "-o", "notes.txt"],
    "trace-output-under-file": lambda f, i: [
        "trace",
        "--shape",
        "llama-2-7b",
        "--alpha",
        "0.5",
        "-o",
        "notes.txt/o.npz",
    ],
    "trace-output-folder": lambda f, i: ["trace", "--shape", "llama-2-7b", "--alpha", "0.5", "-o", "mine"],
    "trace-no-output": lambda f, i: ["trace", "--shape", "llama-2-7b", "--alpha", "0.5"],
    "trace-shape-unknown": lambda f, i: ["trace", "--shape", "gpt-9", "--alpha", "0.5", "-o", "t.npz"],
    "trace-shape-file-bomb": lambda f, i: [
        "trace",
        "--shape",
        _write(f, "a.yaml", _lol("name: x\n")),
        "--alpha",
        "0.5",
        "-o",
        "t.npz",
    ],
    "trace-draft-unknown": lambda f, i: ["trace", "--draft", "telepathy", "-o", "t.npz"],
    # trace --inspect: crafted files
    "inspect-missing": lambda f, i: ["trace", "--inspect", "nowhere.npz"],
    "inspect-not-zip": lambda f, i: ["trace", "--inspect", str(f / "notes.txt")],
    "inspect-users-zip": lambda f, i: ["trace", "--inspect", str(f / "data.npz")],
    "inspect-truncated": lambda f, i: [
        "trace",
        "--inspect",
        _write(f, "trunc.npz", (f / "inputs" / "tiny.npz").read_bytes()[:500]),
    ],
    "inspect-op-names-null": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", lambda h: h.__setitem__("op_names", None))),
    ],
    "inspect-level-formats-int": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", lambda h: h.__setitem__("level_formats", 7))),
    ],
    "inspect-gamma-text": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", lambda h: h.__setitem__("gamma", ["four"]))),
    ],
    "inspect-drift-text": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", lambda h: h.__setitem__("drift", {"perplexity": "low"}))),
    ],
    "inspect-header-nested": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", raw_header=b"[" * 100_000 + b"]" * 100_000)),
    ],
    "inspect-header-not-json": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", raw_header=b"\xff{not json")),
    ],
    "inspect-array-2d": lambda f, i: [
        "trace",
        "--inspect",
        str(
            _crafted_trace(
                f / "inputs" / f"x{i}.npz", arrays_edit=lambda a: a.__setitem__("tokens", np.zeros((2, 2), np.int32))
            )
        ),
    ],
    "inspect-array-dtype": lambda f, i: [
        "trace",
        "--inspect",
        str(
            _crafted_trace(
                f / "inputs" / f"x{i}.npz",
                arrays_edit=lambda a: a.__setitem__("step_level", a["step_level"].astype(float)),
            )
        ),
    ],
    "inspect-huge-member": lambda f, i: ["trace", "--inspect", str(_huge_member(f / "inputs" / f"x{i}.npz"))],
    "inspect-payload-changed": lambda f, i: [
        "trace",
        "--inspect",
        str(
            _crafted_trace(
                f / "inputs" / f"x{i}.npz", arrays_edit=lambda a: a.__setitem__("tokens", a["tokens"] + 1), rehash=False
            )
        ),
    ],
    # crafted traces whose payload hash was recomputed: only the checks of their content can refuse them
    "inspect-header-huge-integer": lambda f, i: [
        "trace",
        "--inspect",
        str(
            _crafted_trace(
                f / "inputs" / f"x{i}.npz", raw_header=b'{"kind": "specsim-trace", "x": ' + b"9" * 5000 + b"}"
            )
        ),
    ],
    "inspect-expected-without-tokens": lambda f, i: [
        "trace",
        "--inspect",
        str(
            _crafted_trace(
                f / "inputs" / f"x{i}.npz",
                lambda h: (h.__setitem__("acceptance_mode", "expected"), h.pop("expected_tokens_per_round", None)),
            )
        ),
    ],
    "inspect-tokens-per-round-nan": lambda f, i: [
        "trace",
        "--inspect",
        str(
            _crafted_trace(
                f / "inputs" / f"x{i}.npz",
                raw_header=json.dumps(
                    {**_header_of_tiny(f), "expected_tokens_per_round": None, "configured_alpha": float("nan")}
                ).encode(),
            )
        ),
    ],
    "inspect-op-n-negative": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", arrays_edit=lambda a: a["op_n"].__setitem__(0, -5))),
    ],
    "inspect-op-count-zero": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", arrays_edit=lambda a: a["op_count"].__setitem__(0, 0))),
    ],
    "inspect-step-past-huge": lambda f, i: [
        "trace",
        "--inspect",
        str(
            _crafted_trace(f / "inputs" / f"x{i}.npz", arrays_edit=lambda a: a["step_past"].__setitem__(-1, 2**31 - 1))
        ),
    ],
    "inspect-drafted-huge": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", arrays_edit=lambda a: a["round_drafted"].__setitem__(0, 32767))),
    ],
    "inspect-generated-zero": lambda f, i: [
        "trace",
        "--inspect",
        str(
            _crafted_trace(
                f / "inputs" / f"x{i}.npz",
                arrays_edit=lambda a: (
                    a.__setitem__("generated_len", a["generated_len"] * 0),
                    a.__setitem__("tokens", a["tokens"][:0]),
                ),
            )
        ),
    ],
    "inspect-layer-stat-nan": lambda f, i: [
        "trace",
        "--inspect",
        str(_crafted_trace(f / "inputs" / f"x{i}.npz", arrays_edit=lambda a: _one_layer_stat(a, float("nan")))),
    ],
    "plot-where-drops-main": lambda f, i: [
        "plot",
        str(_good_table(f)),
        "--kind",
        "speedup",
        "--where",
        "is_main=false",
        "-o",
        "fig.png",
    ],
    "out-specsim-folder-with-a-folder-inside": lambda f, i: [
        "run",
        str(f / "inputs" / "good.yaml"),
        "--out",
        _run_folder_with_a_folder(f),
    ],
    # gemm
    "gemm-m-zero": lambda f, i: ["gemm", "--m", "0", "--n", "8", "--k", "8"],
    "gemm-m-huge": lambda f, i: ["gemm", "--m", "1000000000000", "--n", "8", "--k", "8"],
    "gemm-m-beyond-int64": lambda f, i: ["gemm", "--m", "1" + "0" * 30, "--n", "8", "--k", "8"],
    "gemm-all-huge": lambda f, i: ["gemm", "--m", "2147483648", "--n", "2147483648", "--k", "2147483648"],
    "gemm-rows-zero": lambda f, i: ["gemm", "--m", "1", "--n", "8", "--k", "8", "--rows", "0"],
    "gemm-mode-unknown": lambda f, i: ["gemm", "--m", "1", "--n", "8", "--k", "8", "--mode", "fp3"],
    "gemm-config-missing": lambda f, i: ["gemm", "--m", "1", "--n", "8", "--k", "8", "--config", "none.yaml"],
    "gemm-config-bomb": lambda f, i: [
        "gemm",
        "--m",
        "1",
        "--n",
        "8",
        "--k",
        "8",
        "--config",
        _write(f, "h.yaml", _lol()),
    ],
    "gemm-dataflow": lambda f, i: ["gemm", "--m", "1", "--n", "8", "--k", "8", "--dataflow", "rs"],
    # formats (argument errors: refused before a model loads)
    "formats-unknown-format": lambda f, i: ["formats", "--formats", "fp3"],
    "formats-layers-zero": lambda f, i: ["formats", "--layers", "0"],
    "formats-layers-negative": lambda f, i: ["formats", "--layers", "-3"],
    "formats-model-missing": lambda f, i: ["formats", "--model", str(f / "no-model-here")],
    # found by a held-out corpus (a tester with no access to the cases above)
    "run-list-key": _yaml("name: x\nhardware: speq\n[1, 2]: 3\n"),
    "run-mapping-key": _yaml("name: x\nhardware: speq\n{a: 1}: 3\n"),
    "run-bigint-clock": _yaml("name: x\nhardware: {include: speq, clock_ghz: " + "9" * 400 + "}\n"),
    "run-bigint-alpha": _cfg(_shape("acceptance", {"speq": 10**400})),
    "run-name-nul": _yaml('name: "a\\0b"\nhardware: speq\n'),
    "run-name-slash": _cfg(lambda d: d.__setitem__("name", "../../escape")),
    "run-config-fifo": lambda f, i: ["run", _fifo(f), "--out", "out"],
    "run-config-device": lambda f, i: ["run", "/dev/zero", "--out", "out"],
    "gemm-config-device": lambda f, i: ["gemm", "--m", "1", "--n", "8", "--k", "8", "--config", "/dev/zero"],
    "plot-table-fifo": lambda f, i: ["plot", _fifo(f, ".csv"), "--kind", "speedup", "-o", "fig.png"],
    "set-superscript-index": _set("workloads.\u00b9.shape.prompts=1"),
    "set-bigint": _set("hardware.clock_ghz=" + "9" * 400),
    "energy-pe-area-zero": lambda f, i: [
        "run",
        _config(
            f,
            f"c{i}.yaml",
            lambda d: d.update(
                comparison=["same_area", "same_memory"],
                hardware={
                    "include": "speq",
                    "energy_table": _write(
                        f,
                        "e.yaml",
                        yaml.safe_dump(
                            {
                                **yaml.safe_load((ROOT / "specsim/data/energy/default-28nm.yaml").read_text()),
                                "include": str(ROOT / "specsim/data/energy/shared-28nm.yaml"),
                                "pe_area": {"value": 0, "unit": "um^2/PE", "source": "x"},
                            }
                        ),
                    ),
                },
            ),
        ),
        "--out",
        "out",
    ],
    "dram-burst-fraction": lambda f, i: [
        "run",
        _config(
            f,
            f"c{i}.yaml",
            _hw(
                "dram.preset",
                _write(
                    f,
                    "p.yaml",
                    yaml.safe_dump(
                        {
                            **yaml.safe_load((ROOT / "specsim/data/dram/hbm2.yaml").read_text()),
                            "burst_bytes": {"value": 1.5, "unit": "bytes", "source": "x"},
                        }
                    ),
                ),
            ),
        ),
        "--out",
        "out",
    ],
    "out-specsim-folder-with-users-file": lambda f, i: [
        "run",
        str(f / "inputs" / "good.yaml"),
        "--out",
        _run_folder_with_a_user_file(f),
    ],
    "trace-acceptance-from-autoregressive": lambda f, i: [
        "trace",
        "--shape",
        "smollm2-135m",
        "--acceptance-from",
        str(TRACES / "smollm2-135m_fp16.npz"),
        "-o",
        "t.npz",
    ],
    "trace-shape-huge-layers": lambda f, i: _shape_trace(f, "llama-2-7b", layers=40000),
    "trace-shape-bad-sliding-window": lambda f, i: _shape_trace(f, "gemma3-270m", sliding_window=-4),
    "trace-shape-window-pattern-without-window": lambda f, i: _shape_trace(f, "llama-2-7b", sliding_window_pattern=6),
    "trace-shape-too-much-work": lambda f, i: [
        "trace",
        "--shape",
        "llama-2-7b",
        "--alpha",
        "0.5",
        "--limit",
        "100000",
        "--max-new-tokens",
        "16384",
        "-o",
        "t.npz",
    ],
    # a second held-out corpus
    "dram-preset-capacity-denormal": lambda f, i: [
        "run",
        _config(
            f,
            f"c{i}.yaml",
            _hw(
                "dram.preset",
                _write(
                    f,
                    "p.yaml",
                    yaml.safe_dump(
                        {
                            **yaml.safe_load((ROOT / "specsim/data/dram/hbm2.yaml").read_text()),
                            "capacity_gib": {"value": 1e-300, "unit": "GiB", "source": "x"},
                        }
                    ),
                ),
            ),
        ),
        "--out",
        "out",
    ],
    "energy-steep-sram-fit": lambda f, i: [
        "run",
        _config(
            f,
            f"c{i}.yaml",
            lambda d: d["hardware"].update(
                energy_table=_write(
                    f,
                    "e.yaml",
                    yaml.safe_dump(
                        {
                            **yaml.safe_load((ROOT / "specsim/data/energy/default-28nm.yaml").read_text()),
                            **{
                                k: v
                                for k, v in yaml.safe_load(
                                    (ROOT / "specsim/data/energy/shared-28nm.yaml").read_text()
                                ).items()
                            },
                            "sram_points": [
                                {"size_kib": 32, "pj_per_64bit": 1, "source": "x"},
                                {"size_kib": 33, "pj_per_64bit": 20, "source": "x"},
                            ],
                        }
                    ),
                )
            ),
        ),
        "--out",
        "out",
    ],
    "energy-pe-area-denormal": lambda f, i: [
        "run",
        _config(
            f,
            f"c{i}.yaml",
            lambda d: d["hardware"].update(
                energy_table=_write(
                    f,
                    "e.yaml",
                    yaml.safe_dump(
                        {
                            **yaml.safe_load((ROOT / "specsim/data/energy/default-28nm.yaml").read_text()),
                            "include": str(ROOT / "specsim/data/energy/shared-28nm.yaml"),
                            "pe_area": {"value": 1e-320, "unit": "um^2/PE", "source": "x"},
                        }
                    ),
                )
            ),
        ),
        "--out",
        "out",
    ],
    "baseline-named-like-main": _cfg(
        lambda d: d["baselines"].__setitem__("tiny", str(ROOT / "hwconfigs" / "fp16.yaml"))
    ),
    "confidence-denormal": _cfg(lambda d: d.__setitem__("confidence", 1e-320)),
    "sweep-date-values": lambda f, i: [
        "sweep",
        _config(
            f,
            f"c{i}.yaml",
            lambda d: d["baselines"].__setitem__(
                "fp16", {"config": str(ROOT / "hwconfigs" / "fp16.yaml"), "overrides": {}}
            ),
        ),
        "--set",
        "baselines.fp16.overrides.description=!!timestamp 2024-01-01",
        "--out",
        "sw",
    ],
    # unknown command and options
    "unknown-command": lambda f, i: ["simulate-everything"],
    "unknown-option": lambda f, i: ["run", str(f / "inputs" / "good.yaml"), "--turbo"],
}


def _symlink(folder: Path) -> str:
    """A symbolic link to an empty folder of the user's."""
    (folder / "inputs" / "empty").mkdir(exist_ok=True)
    link = folder / "inputs" / "link"
    if not link.exists():
        link.symlink_to(folder / "inputs" / "empty")
    return str(link)


def _folder_with(folder: Path, name: str, file: str, text: str) -> str:
    out = folder / "inputs" / name
    out.mkdir(exist_ok=True)
    (out / file).write_text(text)
    return str(out)


def _compressed_trace(folder: Path) -> str:
    """The tiny trace, re-packed with deflate (specsim writes traces stored, never compressed)."""
    src, dst = folder / "inputs" / "tiny.npz", folder / "inputs" / "deflated.npz"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for name in z.namelist():
            out.writestr(name, z.read(name))
    return str(dst)


def _header_of_tiny(folder: Path) -> dict:
    from specsim.trace.tracefile import read_trace

    return dict(read_trace(folder / "inputs" / "tiny.npz").header)


def _one_layer_stat(arrays: dict, value: float) -> None:
    """Give the trace one layer-statistics row whose Tender group count is ``value``."""
    from specsim.trace.tracefile import LAYER_STATS

    arrays["ls_layer"], arrays["ls_name"] = np.zeros(1, np.int16), np.zeros(1, np.int16)
    for name in LAYER_STATS:
        arrays[name] = np.full(1, value if name == "tender_groups" else 0.0, np.float32)


def _run_folder_with_a_folder(folder: Path) -> str:
    """A run folder of specsim's same configuration whose report.csv the user replaced by a folder of theirs."""
    out = folder / "inputs" / "same"
    if not out.exists():
        assert main(["run", str(folder / "inputs" / "good.yaml"), "--out", str(out)]) == 0
        (out / "report.csv").unlink()
        (out / "report.csv").mkdir()
        (out / "report.csv" / "mine.txt").write_text("the user's file")
    return str(out)


def _fifo(folder: Path, suffix: str = ".yaml") -> str:
    """A named pipe with no writer: reading it would block forever."""
    path = folder / "inputs" / f"pipe{suffix}"
    if not path.exists():
        os.mkfifo(path)
    return str(path)


def _run_folder_with_a_user_file(folder: Path) -> str:
    """A results folder specsim made from another configuration, into which the user put a file."""
    out = folder / "inputs" / "made"
    if not out.exists():
        assert main(["run", str(folder / "inputs" / "good.yaml"), "--out", str(out)]) == 0
        (out / "my_notes.txt").write_text("the user's notes, put into specsim's folder")
    return str(out)


def _good_table(folder: Path) -> Path:
    """The report.csv of a real run of the tiny config."""
    path = folder / "inputs" / "run" / "report.csv"
    if not path.exists():
        assert main(["run", str(folder / "inputs" / "good.yaml"), "--out", str(path.parent)]) == 0
    return path


def _edited_table(folder: Path, name: str, column: str, value: str, row: int = 0) -> str:
    """The good table with one cell (or, for row=None, the whole column) replaced."""
    import csv

    rows = list(csv.reader(_good_table(folder).open()))
    col = rows[0].index(column)
    for r in rows[1:] if row is None else [rows[1 + row]]:
        r[col] = value
    out = folder / "inputs" / name
    with out.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return str(out)


def test_the_corpus_holds_at_least_100_cases():
    assert len(CORPUS) >= 100


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_malformed_input_is_one_line_exit_2_and_changes_nothing(scratch, capsys, case):
    argv = CORPUS[case](scratch, sorted(CORPUS).index(case))
    capsys.readouterr()
    before = _snapshot(scratch)
    start = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - start
    out, err = capsys.readouterr()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err and "internal error" not in err
    assert 1 <= len(lines) <= 2, lines
    assert _snapshot(scratch) == before  # nothing written, nothing of the user's touched
    assert elapsed < TIME_BOUND_S


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "{good}", "--out", "out"],
        ["run", "{good}", "--out", "out"],  # the same config again: its own folder is replaced
        ["gemm", "--m", "1", "--n", "64", "--k", "64", "--json"],
        ["trace", "--inspect", "{tiny}", "--json"],
        ["trace", "--shape", "smollm2-135m", "--alpha", "0.5", "--limit", "1", "--max-new-tokens", "4", "-o", "t.npz"],
        ["plot", "{table}", "--kind", "speedup", "-o", "fig.png"],
    ],
)
def test_valid_controls_succeed(scratch, capsys, argv):
    fill = {
        "good": str(scratch / "inputs" / "good.yaml"),
        "tiny": str(scratch / "inputs" / "tiny.npz"),
        "table": str(_good_table(scratch)),
    }
    argv = [a.format(**fill) for a in argv]
    assert main(argv) == 0, capsys.readouterr().err
    assert main(argv) == 0, capsys.readouterr().err  # twice: its own output may be replaced
    assert (scratch / "mine" / "keep.txt").read_text() == "the user's data"


def test_run_refuses_to_replace_another_configurations_results(scratch, capsys):
    good = str(scratch / "inputs" / "good.yaml")
    assert main(["run", good, "--out", "out"]) == 0
    report = (scratch / "out" / "report.json").read_bytes()
    assert main(["run", good, "--out", "out", "--set", "decoding.gamma=3"]) == 2
    assert "another configuration" in capsys.readouterr().err
    assert (scratch / "out" / "report.json").read_bytes() == report
    assert main(["run", good, "--out", "out", "--set", "decoding.gamma=3", "--replace"]) == 0
    assert main(["run", good]) == 0 and (scratch / "results" / "tiny" / "report.json").exists()  # default folder
    assert main(["run", good, "--set", "decoding.gamma=3"]) == 2  # ... also guarded


# ---- fuzzing ------------------------------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "fp16", "speq", "ws", "1e-300", "../../etc/passwd", "x" * 5000]),
    st.lists(st.integers(-3, 3), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(node, prefix=()):
    """Every key path of a nested config mapping."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _mutate(data, draw):
    """Replace, delete or add one key anywhere in ``data`` (in place)."""
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    node = data
    for key in path[:-1]:
        node = node[key]
    action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    if action == "replace":
        node[path[-1]] = draw(JUNK)
    elif action == "delete" and isinstance(node, dict):
        node.pop(path[-1])
    elif isinstance(node, dict):
        node[draw(st.text(min_size=1, max_size=8))] = draw(JUNK)


def _load_or_refuse(load):
    try:
        load()
    except SpecsimError as err:
        assert "\n" not in str(err) and len(str(err)) < 2000


FUZZ = settings(
    max_examples=40, deadline=10_000, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@FUZZ
@given(st.data())
def test_fuzz_run_configs(tmp_path_factory, data):
    from specsim.results.config import accelerators, load_run_config

    folder = tmp_path_factory.mktemp("fuzz")
    config = yaml.safe_load((ROOT / "hwconfigs" / "paper" / "speq.yaml").read_text())
    config["baselines"] = {
        k: {"config": str(ROOT / "hwconfigs" / "paper" / v["config"]), "overrides": {}}
        for k, v in config["baselines"].items()
    }
    config["hardware"] = dict(yaml.safe_load((ROOT / "specsim" / "data" / "hardware" / "speq.yaml").read_text()))
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(config, data.draw)
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    _load_or_refuse(lambda: accelerators(load_run_config(path)))


@FUZZ
@given(st.data())
def test_fuzz_energy_tables_and_presets(tmp_path_factory, data):
    from specsim.hardware.dram import load_preset
    from specsim.hardware.energy import load_energy_table

    folder = tmp_path_factory.mktemp("fuzz")
    kind, name = data.draw(st.sampled_from([("energy", "default-28nm"), ("energy", "shared-28nm"), ("dram", "hbm2")]))
    table = yaml.safe_load((ROOT / "specsim" / "data" / kind / f"{name}.yaml").read_text())
    if name == "default-28nm":
        table["include"] = str(ROOT / "specsim" / "data" / "energy" / "shared-28nm.yaml")
    _mutate(table, data.draw)
    path = folder / "t.yaml"
    path.write_text(yaml.safe_dump(table))
    _load_or_refuse(lambda: load_energy_table(path) if kind == "energy" else load_preset(str(path)))


@FUZZ
@given(
    points=st.lists(
        st.dictionaries(
            st.sampled_from(
                ["decoding.gamma", "hardware.array.rows", "bogus.key", "workloads.0.shape.prompts", "comparison", ""]
            ),
            JUNK,
            max_size=3,
        ),
        max_size=4,
    )
)
def test_fuzz_sweep_points(tmp_path_factory, points):
    from specsim.results.sweep import plan

    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump(_tiny_config()))
    _load_or_refuse(lambda: plan(path, points))


@FUZZ
@given(st.data())
def test_fuzz_trace_reader(tmp_path_factory, data):
    from specsim.trace.tracefile import read_trace, summarize

    folder = tmp_path_factory.mktemp("fuzz")
    header_key = data.draw(
        st.sampled_from(
            [
                "op_names",
                "levels",
                "level_formats",
                "gamma",
                "mode",
                "formats",
                "architecture",
                "drift",
                "layer_names",
                "schema_version",
                "kind",
            ]
        )
    )
    value = data.draw(JUNK)
    array = data.draw(st.sampled_from(["tokens", "step_level", "op_kind", "round_accepted", "op_n", "none"]))
    junk_array = data.draw(
        st.sampled_from(
            [
                np.zeros(0, np.int32),
                np.full(3, -7, np.int32),
                np.arange(5, dtype=np.int64),
                np.full(4, 2**30, np.int32),
                np.zeros((2, 2), np.int8),
            ]
        )
    )

    def arrays_edit(a):
        if array != "none":
            a[array] = junk_array

    path = _crafted_trace(
        folder / "t.npz", lambda h: h.__setitem__(header_key, value), arrays_edit if data.draw(st.booleans()) else None
    )
    _load_or_refuse(lambda: summarize(read_trace(path)))


COMMAND_TOKENS = [
    "run",
    "sweep",
    "plot",
    "gemm",
    "trace",
    "--set",
    "--out",
    "--points",
    "--kind",
    "-o",
    "--m",
    "--n",
    "--k",
    "--rows",
    "--mode",
    "--inspect",
    "--shape",
    "--alpha",
    "--gamma",
    "--limit",
    "--where",
    "--workers",
    "--json",
    "-1",
    "0",
    "1",
    "8",
    "1e300",
    "nan",
    "x=1",
    "decoding.gamma=0",
    "speedup",
    "fp16",
    "llama-2-7b",
    "{good}",
    "{tiny}",
    "notes.txt",
    "mine",
    "out.npz",
    "fig.png",
    "",
    "=",
    "--",
]


@settings(max_examples=60, deadline=20_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(st.sampled_from(COMMAND_TOKENS), min_size=1, max_size=7))
def test_fuzz_command_lines(scratch, capsys, tokens):
    """Random command lines: exit 0, 1 or 2, never a traceback or an internal error, the user's files
    untouched, and nothing written outside the output paths the line names."""
    fill = {"good": str(scratch / "inputs" / "good.yaml"), "tiny": str(scratch / "inputs" / "tiny.npz")}
    argv = [t.format(**fill) for t in tokens]
    keep = {
        p: p.read_bytes()
        for p in (scratch / "mine" / "keep.txt", scratch / "notes.txt", scratch / "photo.png", scratch / "data.npz")
    }
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 1, 2) and "Traceback" not in out + err and "internal error" not in err, (argv, err)
    if code == 2:
        assert len([ln for ln in err.splitlines() if ln.strip()]) <= 2, err
    assert all(p.read_bytes() == b for p, b in keep.items())
    allowed = {"out", "out.npz", "fig.png", "results", "inputs", "mine", "notes.txt", "photo.png", "data.npz"}
    assert {p.name for p in scratch.iterdir()} <= allowed, sorted(p.name for p in scratch.iterdir())
    # no temp file left behind; a run folder a successful `run` made keeps its marker (.specsim-run.json)
    assert not any(
        p.name.startswith(".") and p.name != RUN_MARKER for p in scratch.rglob("*") if "inputs" not in p.parts
    )
    assert math.isfinite(os.path.getsize(scratch / "notes.txt"))
