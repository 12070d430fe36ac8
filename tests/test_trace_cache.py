"""Faster tracing: the operand recorder observes only some passes; weight views and layer statistics are cached."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny import tiny_llama

from specsim.errors import SpecsimError
from specsim.workload import cache as cache_mod
from specsim.workload import optrace, views
from specsim.workload.cache import model_fingerprint
from specsim.workload.drafts import build_scheme
from specsim.workload.layer_stats import cached_layer_stats, layer_stats
from specsim.workload.models import decoder_linears
from specsim.workload.optrace import OpRecorder
from specsim.workload.speculative import speculative_generate

PROMPTS = ([1, 5, 7], [3, 3, 3, 3, 9, 11, 2, 4])


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama()


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECSIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _record(built, gamma=3, max_new=40):
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    try:
        for i, prompt in enumerate(PROMPTS):
            recorder.prompt = i
            speculative_generate(built.target, built.drafts, prompt, gamma, max_new, observer=recorder)
    finally:
        recorder.remove()
    return recorder


def test_observing_some_passes_records_what_observing_every_pass_does(tiny, monkeypatch):
    built = build_scheme(tiny, "speq")
    some = _record(built)
    monkeypatch.setattr(optrace, "CHECK_EVERY", 1)
    every = _record(built)
    assert some.templates == every.templates and some.steps == every.steps
    assert every.observed == len(every.steps)
    assert 0 < some.observed < len(some.steps) // 4  # first pass of each kind, then one in CHECK_EVERY


def test_an_observed_pass_that_leaves_its_template_raises(tiny):
    built = build_scheme(tiny, "speq")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    try:
        speculative_generate(built.target, built.drafts, [1, 2, 3], 3, 6, observer=recorder)
        recorder.templates[0] = recorder.templates[0][:-1]  # as if the model had changed
        recorder._since_check = optrace.CHECK_EVERY  # the next pass is a spot check
        with pytest.raises(SpecsimError, match="different operator sequence"):
            speculative_generate(built.target, built.drafts, [1, 2, 3], 3, 6, observer=recorder)
    finally:
        recorder.remove()
    assert not recorder._handles


@pytest.mark.parametrize("fmt", ["bsfp_draft_lut8_row_max", "mxfp4"])
def test_weight_view_from_the_cache_is_bit_identical(tiny, user_cache, monkeypatch, fmt):
    fresh = views.weight_view(tiny, fmt)
    fingerprint = model_fingerprint(tiny)
    first = views.weight_view(tiny, fmt, fingerprint)  # computes and stores
    assert list((user_cache / "views").iterdir())

    def no_compute(*_args):
        raise AssertionError("recomputed a cached view")

    monkeypatch.setattr(views, "view_weights", no_compute)
    second = views.weight_view(tiny, fmt, fingerprint)  # reads
    for model in (first, second):
        for (name, a), (_, b) in zip(decoder_linears(fresh), decoder_linears(model)):
            assert torch.equal(a.weight.view(torch.int32), b.weight.view(torch.int32)), name
        for (name, a), (_, b) in zip(fresh.state_dict().items(), model.state_dict().items()):
            assert torch.equal(a, b), name
    assert second.model.embed_tokens.weight.data_ptr() != tiny.model.embed_tokens.weight.data_ptr()  # a copy


def test_weights_that_are_not_fp16_values_are_stored_as_they_are(tmp_path):
    w = {"a": torch.tensor([1.0, 0.5, -2.0]), "b": torch.tensor([1.0 + 2.0**-20, 3.0])}
    views._save_weights(w, tmp_path)
    from safetensors.torch import load_file

    stored = load_file(str(tmp_path / "weights.safetensors"))
    assert stored["a"].dtype == torch.float16 and stored["b"].dtype == torch.float32
    assert torch.equal(stored["b"], w["b"])


def test_layer_stats_cache_hits_misses_and_repairs(tiny, user_cache):
    ids = torch.tensor([[1, 4, 9, 16, 25, 36, 49, 64, 81, 3, 7]])
    fresh = layer_stats(tiny, ids, progress=False)
    fingerprint = model_fingerprint(tiny)
    first, hit1 = cached_layer_stats(tiny, ids, fingerprint, progress=False)
    second, hit2 = cached_layer_stats(tiny, ids, fingerprint, progress=False)
    assert (hit1, hit2) == (False, True)
    for k in fresh:
        assert (
            fresh[k].dtype == second[k].dtype
            and np.array_equal(fresh[k], first[k])
            and np.array_equal(fresh[k], second[k])
        )
    _, hit = cached_layer_stats(tiny, ids[:, :-1], fingerprint, progress=False)  # other calibration text
    assert not hit
    (entry,) = [
        p
        for p in (user_cache / "layer_stats").iterdir()
        if json.loads((p / "key.json").read_text())["calibration_shape"] == [1, 11]
    ]
    (entry / "stats.npz").write_bytes(b"not an npz")  # a damaged entry is recomputed
    repaired, hit = cached_layer_stats(tiny, ids, fingerprint, progress=False)
    assert not hit and all(np.array_equal(fresh[k], repaired[k]) for k in fresh)
    assert cached_layer_stats(tiny, ids, fingerprint, progress=False)[1]


def test_fingerprint_follows_the_weights_not_the_object(tiny):
    other = tiny_llama()
    assert model_fingerprint(other) == model_fingerprint(tiny)
    with torch.no_grad():
        other.model.layers[0].mlp.up_proj.weight[0, 0] += 1
    assert model_fingerprint(other) != model_fingerprint(tiny)


def test_an_unwritable_cache_is_reported_once_and_skipped(tiny, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("SPECSIM_CACHE", str(blocker))
    monkeypatch.setattr(cache_mod, "_warned", False)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    fingerprint = model_fingerprint(tiny)
    for _ in range(2):
        stats, hit = cached_layer_stats(tiny, ids, fingerprint, progress=False)
        assert not hit and stats["ls_layer"].size
    assert capsys.readouterr().err.count("cannot write the cache") == 1


def test_entries_of_older_versions_are_pruned(user_cache):
    def save(value, folder):
        (folder / "v").write_text(str(value))

    def load(folder):
        return int((folder / "v").read_text())

    other, hit = cache_mod.cached("things", {"item": "b", "code": "0"}, lambda: 7, save, load)
    for version in range(5):
        key = {"item": "a", "code": str(version)}
        assert cache_mod.cached("things", key, lambda v=version: v, save, load) == (version, False)
        assert cache_mod.cached("things", key, lambda: -1, save, load) == (version, True)
    kept = [json.loads((p / "key.json").read_text()) for p in (user_cache / "things").iterdir()]
    assert sorted(k["code"] for k in kept if k["item"] == "a") == ["2", "3", "4"][-cache_mod.KEEP :]
    assert cache_mod.cached("things", {"item": "b", "code": "0"}, lambda: -1, save, load) == (7, True)


@pytest.mark.model
def test_trace_is_the_same_with_and_without_the_cache(tmp_path):
    """A trace recorded without the cache, then with it (computing, then reading the entries): same payload."""
    from specsim.workload.models import cache_dir

    user = tmp_path / "cache"
    user.mkdir()
    # a cache of its own, the model converted into it by the first run: nothing another test or run
    # does to the user's cache can change what this test sees
    assert cache_dir() != user
    # one fixed thread count for the three runs: layer statistics depend on it (it is in their cache key),
    # and a Dask nanny started by an earlier test sets OMP_NUM_THREADS=1 in this process's environment
    threads = str(len(os.sched_getaffinity(0)))
    env = {**os.environ, "SPECSIM_CACHE": str(user), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    cmd = [
        sys.executable,
        "-m",
        "specsim.cli.main",
        "trace",
        "--draft",
        "speq",
        "--gamma",
        "3",
        "--limit",
        "1",
        "--max-new-tokens",
        "10",
    ]
    payloads = []
    for name, extra in (("fresh", ["--no-cache"]), ("miss", []), ("hit", [])):
        proc = subprocess.run(
            cmd + extra + ["-o", str(tmp_path / f"{name}.npz")], capture_output=True, text=True, timeout=1800, env=env
        )
        assert proc.returncode == 0, proc.stderr
        payloads.append(proc.stdout.rsplit("payload ", 1)[1].strip())
        if name == "fresh":
            assert not (user / "layer_stats").exists() and not (user / "views").exists()
        if name == "hit":
            keys = [json.loads((e / "key.json").read_text()) for e in sorted((user / "layer_stats").iterdir())]
            differ = {k for k in keys[0] if any(kk.get(k) != keys[0].get(k) for kk in keys)} if keys else set()
            assert "layer statistics: from the cache" in proc.stderr, (len(keys), sorted(differ), proc.stderr)
    assert payloads[0] == payloads[1] == payloads[2]
    assert len(list((user / "views").iterdir())) == 1 and len(list((user / "layer_stats").iterdir())) == 1
    assert (user / "models").is_dir()
