"""The house follows the data flow: which package may import which (static, over the source).

workload (torch) -> trace contract (numpy) <- hardware -> engine -> results; accelerator methods are
plug-ins on the hardware side. Every ``import`` statement is read with :mod:`ast`, those inside
functions too, so a lazy import cannot hide a dependency or a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "specsim"
BASE = {"errors", "typedconfig", "outputs", "paths", "atomicdir", "allocator", "data", "_version"}
#: package -> the specsim packages it may import (besides itself and the base modules)
ALLOWED = {
    "trace": set(),
    "hardware": {"trace"},
    "methods": {"trace", "hardware"},
    "engine": {"hardware"},
    "results": {"trace", "hardware", "methods", "engine"},
    "workload": {"trace"},
    "cli": {"trace", "hardware", "methods", "engine", "results", "workload"},
    "base": set(),
    "facade": {"results"},
}
#: the only modules outside the workload package that may import it or torch (lazily, in their workload commands)
WORKLOAD_COMMANDS = {"specsim.cli.trace_cmd", "specsim.cli.formats_cmd"}
HEAVY = ("torch", "transformers", "accelerate", "gguf", "safetensors", "huggingface_hub", "tokenizers")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _package(module: str) -> str:
    """The package a module (or a name inside one) belongs to; ``specsim`` itself is the public facade."""
    while module not in MODULES and "." in module:
        module = module.rpartition(".")[0]
    parts = module.split(".")
    if len(parts) == 1:
        return "facade"
    return "base" if parts[1] in BASE else parts[1]


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports (absolute names), with the line."""
    tree = ast.parse(path.read_text(), str(path))
    me = _module_name(path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = me.split(".")[: len(me.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join(pkg + ([base] if base else []))
            out.append((base, node.lineno))
            out += [(f"{base}.{a.name}", node.lineno) for a in node.names]  # from pkg import module
    return out


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _specsim_deps(module: str) -> set[str]:
    deps = set()
    for name, _ in _imports(MODULES[module]):
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module and name.startswith("specsim"):
            deps.add(name)
    return deps


@pytest.mark.parametrize("module", sorted(MODULES))
def test_package_rules(module):
    """A module imports only the packages its own package may depend on."""
    pkg = _package(module)
    torch_side = pkg == "workload" or module in WORKLOAD_COMMANDS
    for name, line in _imports(MODULES[module]):
        if name.split(".")[0] in HEAVY:
            assert torch_side, f"{module}:{line} imports {name}: only the workload side may"
        if _package(name) == "workload":
            assert torch_side, f"{module}:{line} imports {name}: only the workload side and its commands may"
        if not name.startswith("specsim.") or name == "specsim":
            continue
        other = _package(name)
        if other in (pkg, "base"):
            continue
        assert other in ALLOWED[pkg], f"{module}:{line} imports {name}: {pkg} may not depend on {other}"


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if _package(m) != "workload" and m not in WORKLOAD_COMMANDS)
)
def test_no_dynamic_import_of_the_torch_side(module):
    """No name of the workload package or a heavy library in a string (importlib.import_module, __import__)."""
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            for arg in node.args:
                text = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else ""
                assert not text.startswith(("specsim.workload", *HEAVY)), f"{module}:{node.lineno} imports {text}"


def test_no_import_cycles():
    """No loop in the module graph, lazy imports included (a package __init__ that only re-exports its
    own modules is part of its package, not a loop)."""
    graph = {
        m: {d for d in _specsim_deps(m) if not (MODULES[d].name == "__init__.py" and m.startswith(d + "."))}
        for m in MODULES
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                loop = stack[stack.index(d) :] + [d]
                raise AssertionError("import loop: " + " -> ".join(loop))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_rules_cover_every_package():
    assert {_package(m) for m in MODULES} <= set(ALLOWED)


def test_a_workload_command_without_its_extra_names_it(monkeypatch, capsys, tmp_path):
    """On the light install (no torch) `specsim trace` with a model says in one line which extra to install."""
    import importlib.util

    from specsim.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    assert main(["trace", "--model", "smollm2-135m", "--draft", "speq", "-o", str(tmp_path / "x.npz")]) == 2
    assert main(["formats", "--model", "smollm2-135m"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all('pip install -e ".[workload]"' in line for line in lines), lines
