"""Prompt sets and texts shipped with specsim (or given by the user as JSON Lines).

A prompt file has one JSON object per line: ``{"id": str, "category": str, "text": str}``. The
shipped set ``default`` holds 40 prompts written for this project: question answering, code,
summarisation, story and arithmetic (8 each).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from specsim.errors import SpecsimError

DEFAULT_PROMPTS = "default"


@dataclass(frozen=True)
class Prompt:
    id: str
    category: str
    text: str


def _read_source(source: str | Path) -> tuple[str, str]:
    """(display name, content) of a shipped prompt set name or a file path."""
    path = Path(source)
    if path.suffix != ".jsonl" and not path.exists():
        res = resources.files("specsim.data").joinpath(f"prompts/{source}.jsonl")
        if res.is_file():
            return f"shipped prompt set '{source}'", res.read_text(encoding="utf-8")
    try:
        return str(path), path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecsimError(f"{path}: cannot read prompt file ({getattr(err, 'strerror', None) or err})") from None


def load_prompts(source: str | Path = DEFAULT_PROMPTS) -> list[Prompt]:
    """Load and validate a prompt set (shipped name or ``.jsonl`` path)."""
    name, content = _read_source(source)
    prompts: list[Prompt] = []
    for lineno, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise SpecsimError(f"{name}: line {lineno}: invalid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise SpecsimError(f"{name}: line {lineno}: expected an object with id, category, text")
        for key in ("id", "text"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise SpecsimError(f"{name}: line {lineno}: key '{key}' must be a non-empty string")
        unknown = set(obj) - {"id", "category", "text"}
        if unknown:
            raise SpecsimError(
                f"{name}: line {lineno}: unknown key '{sorted(unknown)[0]}' (expected id, category, text)"
            )
        prompts.append(Prompt(obj["id"], str(obj.get("category", "")), obj["text"]))
    if not prompts:
        raise SpecsimError(f"{name}: no prompts")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise SpecsimError(f"{name}: duplicate prompt id '{next(i for i in ids if ids.count(i) > 1)}'")
    return prompts


def prompts_hash(prompts: list[Prompt]) -> str:
    """SHA-256 over the prompts' ids and texts (identifies a prompt set in trace headers)."""
    h = hashlib.sha256()
    for p in prompts:
        h.update(json.dumps([p.id, p.text]).encode())
    return h.hexdigest()


def shipped_text(name: str) -> str:
    """A shipped text: ``calibration`` (activation calibration) or ``perplexity`` (held-out text)."""
    res = resources.files("specsim.data").joinpath(f"text/{name}.txt")
    if not res.is_file():
        raise SpecsimError(f"no shipped text '{name}' (expected calibration or perplexity)")
    return res.read_text(encoding="utf-8")


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Token ids of a prompt: wrapped in the model's chat template when it has one (instruct models
    answer a bare question with end-of-turn), else the plain text."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
        )
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    return list(tokenizer(text).input_ids)
