"""Accelerator methods are plug-ins: registered, typed, validated at load, and confined to their module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from specsim.errors import SpecsimError
from specsim.hardware.config import load_hardware
from specsim.hardware.lowering import level_templates
from specsim.methods import get_method, method_for, method_names
from specsim.results.config import load_run_config
from specsim.trace.tracefile import LAYER_STATS, read_trace

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("fp16", "speq", "mlspecqd", "hierarchical", "olive", "tender", "w4a16")
#: method names that name nothing else (speq, fp16 and hierarchical are also formats, modes or schemes)
DISTINCT = ("olive", "tender", "w4a16", "mlspecqd")
#: the torch-free library: a method's name may appear in its own plug-in module and the registry only
LIBRARY = [
    p for sub in ("hardware", "engine", "trace", "results", "methods") for p in (ROOT / "specsim" / sub).rglob("*.py")
]
LIBRARY += [p for p in (ROOT / "specsim").glob("*.py") if p.name != "__init__.py"]


def test_every_shipped_method_is_registered():
    assert set(SHIPPED) <= set(method_names())
    assert get_method("tender").kind == "autoregressive" and get_method("speq").kind == "speculative"
    assert method_for("speculative", "mxfp4", "fp16").name == "mlspecqd"
    assert method_for("autoregressive", "none", "fp16").name == "fp16"
    with pytest.raises(SpecsimError, match="no accelerator method replays 'olive4' weights autoregressively"):
        method_for("autoregressive", "none", "olive4")


def _code_words(path: Path) -> set[str]:
    """Identifiers and string constants of a module, docstrings left out (they are documentation)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.add(node.value)
        elif isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            words.add(node.name)
        elif isinstance(node, ast.alias):
            words.add(node.name)
    return words


def _without_stat_names(text: str) -> str:
    """The trace schema names its layer-statistic columns after the formats they measure (tender_groups,
    w_olive_pair_frac): column names, not the methods."""
    for stat in LAYER_STATS:
        text = text.replace(stat, "")
    return text


@pytest.mark.parametrize("name", DISTINCT)
def test_a_method_lives_in_its_module(name):
    """Outside ``specsim/methods/<name>.py`` and the registry, no library code names the method."""
    pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", re.IGNORECASE)
    allowed = {ROOT / "specsim" / "methods" / f"{name}.py", ROOT / "specsim" / "methods" / "__init__.py"}
    hits = [
        (p.relative_to(ROOT), w)
        for p in LIBRARY
        if p not in allowed
        for w in _code_words(p)
        if pattern.search(_without_stat_names(w))
    ]
    assert not hits, f"{name} named outside its plug-in: {hits[:5]}"


def test_unknown_method_and_bad_params_are_one_line(tmp_path):
    cfg = ROOT / "hwconfigs" / "tender.yaml"
    with pytest.raises(SpecsimError, match=r"decoding\.method: unknown accelerator method 'foo'; expected one of"):
        load_run_config(cfg, ["decoding.method=foo"])
    with pytest.raises(SpecsimError, match=r"decoding\.params\.shift_cycles: expected an integer \(cycles\)"):
        load_run_config(cfg, ["decoding.params.shift_cycles=fast"])
    with pytest.raises(SpecsimError, match=r"decoding\.params\.bogus: unknown key"):
        load_run_config(cfg, ["decoding.params.bogus=1"])
    with pytest.raises(SpecsimError, match=r"decoding\.formats\[0\]: method 'tender' expects a target format"):
        load_run_config(cfg, ["decoding.formats=[olive4]"])
    with pytest.raises(SpecsimError, match=r"decoding\.kind: method 'tender' is autoregressive, not speculative"):
        load_run_config(cfg, ["decoding.kind=speculative"])


def test_modes_are_checked_at_load():
    cfg = ROOT / "hwconfigs" / "speq.yaml"
    with pytest.raises(SpecsimError, match=r"decoding\.level_modes\[1\]: PE mode 'int2' is not one of"):
        load_run_config(cfg, ["decoding.level_modes=[fp16, int2]"])
    with pytest.raises(SpecsimError, match=r"decoding\.attention_mode: PE mode 'int2' is not one of"):
        load_run_config(cfg, ["decoding.attention_mode=int2"])


def _templates(config: str, trace: str, *overrides: str):
    cfg = load_run_config(ROOT / "hwconfigs" / config, list(overrides))
    t = read_trace(ROOT / "traces" / trace)
    dec = cfg.decoding
    return (
        cfg,
        t,
        level_templates(
            t, dec.level_modes, tuple(cfg.hardware.modes), attention_mode=dec.attention_mode, lower=dec.lowering()
        )[0].columns,
    )


def test_tender_lowering_by_hand():
    """Per quantized GEMM: (G - 1) x shift cycles per output tile with G from the trace's layer statistics,
    and one requant pass right after it; FP16 GEMMs (lm_head) and attention get nothing."""
    cfg, t, cols = _templates("tender.yaml", "smollm2-135m_tender4.npz", "decoding.params.shift_cycles=3")
    names = t.header["layer_names"]
    measured = {
        (int(lay), names[int(nm)]): max(1, round(float(g)))
        for lay, nm, g in zip(t["ls_layer"], t["ls_name"], t["tender_groups"])
    }
    sel = t["op_level"] == 0
    quantized = (t["op_kind"][sel] == 0) & (t["op_weight_format"][sel] != t.header["formats"].index("fp16"))
    ops = np.asarray(t.header["op_names"])[t["op_name"][sel]]
    expect = [3 * (measured[(int(lay), str(nm))] - 1) for lay, nm, q in zip(t["op_layer"][sel], ops, quantized) if q]
    gemm_rows = np.flatnonzero(cols["kind"] == 0)
    shifted = cols["extra_cycles_per_output_tile"][gemm_rows]
    assert sorted(shifted[shifted > 0]) == sorted(e for e in expect if e > 0)
    assert (cols["kind"][gemm_rows[shifted > 0] + 1] == 2).all()  # each followed by its requant pass
    assert int((cols["vector_op"][cols["kind"] == 2] == 4).sum()) == int(quantized.sum())  # VECTOR_OPS: requant = 4


def test_olive_and_w4a16_pay_their_latency_once_per_quantized_gemm():
    for config, trace, key, cycles in (
        ("olive.yaml", "smollm2-135m_olive4.npz", "decoder_cycles", 5),
        ("w4a16.yaml", "smollm2-135m_int4_g128.npz", "dequant_cycles", 7),
    ):
        _, t, cols = _templates(config, trace, f"decoding.params.{key}={cycles}")
        sel = t["op_level"] == 0
        quantized = (t["op_kind"][sel] == 0) & (t["op_weight_format"][sel] != t.header["formats"].index("fp16"))
        assert int(cols["extra_cycles"].sum()) == cycles * int(quantized.sum()) > 0
        assert not cols["extra_cycles_per_output_tile"].any()


def test_w4a16_baseline_runs_beside_fp16():
    """The W4A16 baseline: same array, INT4 weights at 4.125 bits: its decode moves about 4.125/16 of the FP16
    linear-weight bytes (lm_head and embeddings stay FP16), so it is faster than FP16 on the same hardware."""
    from specsim.results.run import run

    cfg = load_run_config(ROOT / "hwconfigs" / "w4a16.yaml")
    report = run(cfg, progress=False)
    for workload in report["workloads"]:
        accs = workload["accelerators"]
        w4, fp16 = accs["w4a16"]["steps"]["decode"], accs["fp16"]["steps"]["decode"]
        assert w4["dram_bytes"] < 0.6 * fp16["dram_bytes"]
        assert workload["speedup"]["fp16"] > 1.5
    assert report["differences"] == {}


def test_hardware_has_no_method_constants():
    hw = load_hardware("tender")
    assert not any("shift" in f or "decoder" in f for f in vars(hw.vector))


# ---- a setting without effect is refused or reported, never silently ignored ---------------------


def _tiny_run(tmp_path, *overrides: str):
    from specsim.results.run import run

    cfg = load_run_config(
        ROOT / "hwconfigs" / "speq.yaml",
        [
            "baselines={fp16: fp16.yaml, olive: olive.yaml}",
            "workloads=[{name: smol, traces: {speq: ../traces/smollm2-135m_speq_g4.npz, "
            "fp16: ../traces/smollm2-135m_fp16.npz, olive: ../traces/smollm2-135m_olive4.npz}}]",
            *overrides,
        ],
    )
    return run(cfg, progress=False)


def test_a_trace_workload_notes_a_gamma_it_does_not_use(tmp_path):
    assert not any("gamma" in n for n in _tiny_run(tmp_path)["notes"])
    notes = _tiny_run(tmp_path, "decoding.gamma=8")["notes"]
    assert any("decoding.gamma 8 applies to shape workloads only" in n and "gamma 4" in n for n in notes), notes


def test_a_trace_verified_otherwise_is_refused(tmp_path):
    with pytest.raises(SpecsimError, match=r"was verified greedy, the accelerator's decoding.verify is sample"):
        _tiny_run(tmp_path, "decoding.verify=sample")


def test_acceptance_for_an_autoregressive_accelerator_is_refused():
    from specsim.results.run import run

    cfg = load_run_config(
        ROOT / "hwconfigs" / "speq.yaml",
        [
            "baselines={fp16: fp16.yaml}",
            "workloads=[{name: l7, shape: {architecture: llama-2-7b, prompts: 1, max_new_tokens: 4, "
            "acceptance: {speq: 0.8, fp16: 0.5}}}]",
        ],
    )
    with pytest.raises(SpecsimError, match=r"shape\.acceptance\.fp16: no speculative accelerator replays it"):
        run(cfg, progress=False)


def test_methods_command_lists_every_method_with_units(capsys):
    import json

    from specsim.cli.main import main

    assert main(["methods", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert set(SHIPPED) <= set(listed)
    assert {p["name"]: p["unit"] for p in listed["tender"]["params"]}["shift_cycles"] == "cycles"
    assert listed["speq"]["lossless"] and not listed["w4a16"]["lossless"]
    assert main(["methods"]) == 0 and "decoding.params.dequant_cycles (required, cycles)" in capsys.readouterr().out
