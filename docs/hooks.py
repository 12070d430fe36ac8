r"""MkDocs hooks (registered in ``mkdocs.yml``): what the site generates at build time.

* ``<!-- specsim:reference run -->`` / ``<!-- specsim:reference hardware -->`` in a page is replaced by
  the config reference generated from specsim's typed schema (``docs/schema_reference.py``), so the
  reference cannot drift from the code;
* ``<!-- specsim:readme-commands -->`` is replaced by the commands table of the README (one copy);
* in table rows, ``\|`` inside a code span (which GitHub needs, and Python-Markdown would show with its
  backslash) becomes ``|``;
* the figures of ``notebooks/figures/`` are published with the site, and a page's links to them
  (``../notebooks/figures/x.png``, which work on GitHub) are pointed at the published copies.

Torch-free: it imports specsim's config modules only.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "notebooks" / "figures"
_REFERENCE = re.compile(r"<!-- specsim:reference (\w+) -->")
_COMMANDS = "<!-- specsim:readme-commands -->"
_CODE = re.compile(r"`[^`]*`")
_FIGURE_LINK = re.compile(r"\]\((?:\.\./)+notebooks/figures/")
_schema = None


def _schema_reference():
    """``docs/schema_reference.py``, importing the specsim of this tree (not another installed copy)."""
    global _schema
    if _schema is None:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        spec = importlib.util.spec_from_file_location("schema_reference", ROOT / "docs" / "schema_reference.py")
        _schema = sys.modules["schema_reference"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_schema)
    return _schema


def readme_commands() -> str:
    """The README's commands table: the lines from its header row to the first line that is not a row."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("| command | what it does |")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def unescape_table_code(markdown: str) -> str:
    """``\\|`` inside the code spans of table rows as ``|`` (Python-Markdown keeps code-span pipes in
    their cell, and would print the backslash)."""
    return "\n".join(
        _CODE.sub(lambda m: m.group(0).replace("\\|", "|"), line) if line.startswith("|") else line
        for line in markdown.split("\n")
    )


def on_files(files, config):
    from mkdocs.structure.files import File

    for png in sorted(FIGURES.glob("*.png")):
        files.append(File.generated(config, f"figures/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown, page, config, files):
    depth = page.file.src_uri.count("/")
    markdown = _FIGURE_LINK.sub("](" + "../" * depth + "figures/", markdown)
    if _COMMANDS in markdown:
        markdown = markdown.replace(_COMMANDS, readme_commands())
    markdown = _REFERENCE.sub(lambda m: _schema_reference().render(m.group(1)), markdown)
    return unescape_table_code(markdown)
