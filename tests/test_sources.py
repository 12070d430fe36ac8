"""Every shipped constant cites a public source listed in the repo's own bibliography."""

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "specsim" / "data"
KEYS = set(re.findall(r"^- \*\*\[([a-z0-9-]+)\]\*\*", (ROOT / "docs" / "bibliography.md").read_text(), re.M))


def _constants(node, where=""):
    """Every ``{value, unit, source}`` record (and every ``{..., source}`` list item) of a YAML tree."""
    if isinstance(node, dict):
        if "source" in node and ("value" in node or "pj_per_64bit" in node):
            yield where, node
        for k, v in node.items():
            yield from _constants(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _constants(v, f"{where}[{i}]")


def test_bibliography_has_the_keys_the_data_files_use():
    assert {"horowitz2014", "oconnor2017", "dramsim3", "bitmod2025", "ant2022"} <= KEYS


def test_every_energy_and_dram_constant_cites_a_bibliography_entry():
    files = sorted((DATA / "energy").glob("*.yaml")) + sorted((DATA / "dram").glob("*.yaml"))
    seen = 0
    for path in files:
        for where, c in _constants(yaml.safe_load(path.read_text())):
            cited = set(re.findall(r"\[([a-z0-9-]+)\]", c["source"]))
            assert cited or c["source"].startswith("not charged"), f"{path.name}{where}: no [key] in its source"
            assert cited <= KEYS, f"{path.name}{where}: unknown keys {cited - KEYS}"
            seen += 1
    assert seen >= 40


def test_hardware_and_architecture_sources_cite_or_say_design_choice():
    for path in sorted((DATA / "hardware").glob("*.yaml")) + sorted((DATA / "architectures").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        sources = [data["source"]] + [v["source"] for v in data.values() if isinstance(v, dict) and "source" in v]
        for s in sources:
            cited = set(re.findall(r"\[([a-z0-9-]+)\]", s))
            assert cited <= KEYS, (path.name, cited - KEYS)
            assert cited or s.startswith("design choice"), (path.name, s)


def test_nothing_in_the_repo_points_outside_it():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    pattern = re.compile(r"\.\./shared|reference\.md")
    offenders = [
        f
        for f in files
        if not f.startswith(".ci")
        and (ROOT / f).is_file()
        and (ROOT / f).suffix in (".py", ".md", ".yaml", ".ipynb", ".toml", ".sh")
        and pattern.search((ROOT / f).read_text(errors="ignore"))
    ]
    assert offenders == []
