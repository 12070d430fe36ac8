"""Trace files: round trip, validation of bad files, acceptance summary."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from specsim.errors import SpecsimError
from specsim.workload.tracefile import read_trace, summarize, write_trace

HEADER = {"model": "m", "draft": "speq", "gamma": 4, "verify": "greedy"}


def arrays(acc=(0, 2, 4)):
    n = len(acc)
    return {
        "round_prompt": np.zeros(n), "round_drafted": np.full(n, 4), "round_accepted": np.array(acc),
        "prompt_len": np.array([5]), "generated_len": np.array([n + sum(acc)]),
        "tokens": np.arange(n + sum(acc)),
    }


def test_round_trip_and_summary(tmp_path):
    path = tmp_path / "t.npz"
    digest = write_trace(path, HEADER, arrays())
    trace = read_trace(path)
    assert trace.header["payload_sha256"] == digest and trace.header["gamma"] == 4
    s = summarize(trace)
    assert s.rounds == 3 and s.mean_tokens_per_round == pytest.approx(3.0)
    assert s.position_acceptance == pytest.approx([2 / 3, 1.0, 0.5, 1.0])
    assert s.alpha == pytest.approx(6 / 8)
    assert write_trace(tmp_path / "u.npz", HEADER, arrays()) == digest  # deterministic payload hash


def test_bad_arrays_are_rejected_before_writing(tmp_path):
    bad = arrays()
    bad["round_accepted"] = np.array([0, 2, 5])  # more accepted than drafted
    with pytest.raises(SpecsimError, match="round_accepted"):
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


@pytest.mark.parametrize("how,message", [
    ("truncated", "truncated or corrupt"), ("garbage", "truncated or corrupt"), ("version", "schema_version"),
    ("kind", "kind"), ("payload", "SHA-256"),
])
def test_bad_trace_files_give_one_clear_error(tmp_path, how, message):
    path = tmp_path / "t.npz"
    write_trace(path, HEADER, arrays())
    _corrupt(path, how)
    with pytest.raises(SpecsimError, match=message):
        read_trace(path)
    proc = subprocess.run([sys.executable, "-m", "specsim.cli.main", "trace", "--inspect", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr


def test_missing_trace_file(tmp_path):
    with pytest.raises(SpecsimError, match="not found"):
        read_trace(tmp_path / "none.npz")
