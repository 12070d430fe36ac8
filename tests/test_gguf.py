"""--model FILE.gguf: a GGUF file given by path is converted once into the user cache; what is refused."""

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
