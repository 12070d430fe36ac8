"""Trace files: round trip, validation of bad files, acceptance summary."""

import json
import subprocess
import sys

import numpy as np
import pytest

from specsim.errors import SpecsimError
from specsim.trace.tracefile import LAYER_STATS, read_trace, summarize, write_trace

HEADER = {
    "model": "m",
    "draft": "speq",
    "mode": "speculative",
    "gamma": [4],
    "verify": "greedy",
    "levels": ["target", "speq"],
    "level_formats": ["fp16", "bsfp_draft_lut8_row_max"],
    "activation_formats": ["fp16", "fp16"],
    "op_names": ["q_proj", "attn_qk"],
    "formats": ["fp16"],
}


def arrays(acc=(0, 2, 4)):
    n = len(acc)
    return {
        "round_prompt": np.zeros(n),
        "round_level": np.zeros(n),
        "round_drafted": np.full(n, 4),
        "round_accepted": np.array(acc),
        "prompt_len": np.array([5]),
        "generated_len": np.array([n + sum(acc)]),
        "tokens": np.arange(n + sum(acc)),
        # two passes (target prefill, one draft step) and a two-op template per level
        "step_prompt": [0, 0],
        "step_level": [0, 1],
        "step_phase": [0, 1],
        "step_tokens": [5, 1],
        "step_past": [0, 5],
        "step_logits": [1, 1],
        "op_level": [0, 0, 1, 1],
        "op_kind": [0, 1, 0, 1],
        "op_layer": [0, 0, 0, 0],
        "op_name": [0, 1, 0, 1],
        "op_m": [-1] * 4,
        "op_n": [64, -1, 64, -1],
        "op_k": [64, 16, 64, 16],
        "op_count": [1, 4, 1, 4],
        "op_weight_format": [0, -1, 0, -1],
        **{name: [] for name in ("ls_layer", "ls_name", *LAYER_STATS)},
    }


def test_round_trip_and_summary(tmp_path):
    path = tmp_path / "t.npz"
    digest = write_trace(path, HEADER, arrays())
    trace = read_trace(path)
    assert trace.header["payload_sha256"] == digest and trace.header["gamma"] == [4]
    s = summarize(trace)
    assert s.rounds == 3 and s.mean_tokens_per_round == pytest.approx(3.0)
    assert s.position_acceptance == pytest.approx([2 / 3, 1.0, 0.5, 1.0])
    assert s.alpha == pytest.approx(6 / 8)
    assert s.steps_by_phase == {"prefill": 1, "draft": 1, "verify": 0, "decode": 0} and s.ops_per_step == [2, 2]
    assert write_trace(tmp_path / "u.npz", HEADER, arrays()) == digest  # deterministic payload hash


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("round_accepted", [0, 2, 5], "round_accepted"),  # more accepted than drafted
        ("step_level", [0, 2], "step_level"),  # no such level
        ("step_logits", [1, 2], "step_logits"),  # more lm_head rows than tokens
        ("op_name", [0, 1, 0, 7], "op_name"),  # index past the header's table
        ("op_kind", [0, 9, 0, 1], "op_kind"),
        ("step_phase", [0, 4], "step_phase"),
    ],
)
def test_bad_arrays_are_rejected_before_writing(tmp_path, key, value, match):
    bad = arrays()
    bad[key] = np.array(value)
    with pytest.raises(SpecsimError, match=match):
        write_trace(tmp_path / "t.npz", HEADER, bad)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def _corrupt(path, how):
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif how == "garbage":
        path.write_bytes(b"not a zip at all")
    elif how in ("version", "kind", "payload"):
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
        header = json.loads(data["__header__"].tobytes())
        if how == "version":
            header["schema_version"] = 99
        elif how == "kind":
            header["kind"] = "something-else"
        else:
            data["tokens"] = data["tokens"] + 1
        data["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        np.savez(path, **data)


@pytest.mark.parametrize(
    "how,message",
    [
        ("truncated", "truncated or corrupt"),
        ("garbage", "truncated or corrupt"),
        ("version", "schema_version"),
        ("kind", "kind"),
        ("payload", "SHA-256"),
    ],
)
def test_bad_trace_files_give_one_clear_error(tmp_path, how, message):
    path = tmp_path / "t.npz"
    write_trace(path, HEADER, arrays())
    _corrupt(path, how)
    with pytest.raises(SpecsimError, match=message):
        read_trace(path)
    proc = subprocess.run(
        [sys.executable, "-m", "specsim.cli.main", "trace", "--inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr


def test_missing_trace_file(tmp_path):
    with pytest.raises(SpecsimError, match="not found"):
        read_trace(tmp_path / "none.npz")


def _with_lm_head(heads: list[str], row_formats: list[int]) -> tuple[dict, dict]:
    """HEADER and arrays() with an lm_head operator per level whose weight format indexes 'formats'."""
    header = {**HEADER, "op_names": [*HEADER["op_names"], "lm_head"], "formats": ["fp16", "int8"]}
    header["lm_head_formats"] = heads
    data = arrays()
    extra = {"op_level": [0, 1], "op_kind": [0, 0], "op_layer": [-1, -1], "op_name": [2, 2], "op_m": [-2, -2]}
    extra |= {"op_n": [32, 32], "op_k": [64, 64], "op_count": [1, 1], "op_weight_format": row_formats}
    for key, values in extra.items():
        data[key] = np.concatenate([np.asarray(data[key]), values])
    return header, data


def test_lm_head_rows_must_carry_the_header_lm_head_formats(tmp_path):
    header, data = _with_lm_head(["fp16", "int8"], [0, 1])
    write_trace(tmp_path / "ok.npz", header, data)
    assert read_trace(tmp_path / "ok.npz").header["lm_head_formats"] == ["fp16", "int8"]
    header, data = _with_lm_head(["fp16", "fp16"], [0, 1])  # the header hides the draft's int8 lm_head
    with pytest.raises(SpecsimError, match=r"lm_head operator row of level 1 has format 'int8'.*says 'fp16'"):
        write_trace(tmp_path / "bad.npz", header, data)
    assert not (tmp_path / "bad.npz").exists()
