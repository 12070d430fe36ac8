import pytest

from specsim.errors import SpecsimError
from specsim.workload.prompts import load_prompts, prompts_hash, shipped_text


def test_shipped_prompt_set_covers_five_categories():
    prompts = load_prompts()
    assert len(prompts) >= 32
    assert {p.category for p in prompts} == {"qa", "code", "summarisation", "story", "arithmetic"}
    assert len(prompts_hash(prompts)) == 64
    assert len(shipped_text("perplexity").split()) > 300


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"id": "a", "text": "x"}\nnot json\n', "line 2: invalid JSON"),
        ('{"id": "a"}\n', "line 1: key 'text'"),
        ('{"id": "a", "text": "x", "colour": 1}\n', "unknown key 'colour'"),
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "duplicate prompt id 'a'"),
        ("\n", "no prompts"),
    ],
)
def test_bad_prompt_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(SpecsimError, match=message):
        load_prompts(path)


def test_missing_prompt_file(tmp_path):
    with pytest.raises(SpecsimError, match="cannot read"):
        load_prompts(tmp_path / "none.jsonl")
