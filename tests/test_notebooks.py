"""The three notebooks execute headless (nbclient) on small settings and write their figures."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebooks
ROOT = Path(__file__).resolve().parents[1]
FIGURES = {
    "pe_array_sweep.ipynb": ["pe_array_sweep.png"],
    "paper_figures.ipynb": [
        "speedup_paper_setting.png",
        "energy_paper_setting.png",
        "roofline_llama2_7b.png",
        "pe_sweep_llama2_7b.png",
        "gamma_alpha_heatmap.png",
    ],
    "explore_acceptance.ipynb": ["acceptance_smollm2.png"],
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_runs_and_writes_its_figures(name, tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), (
        "notebooks are stored without outputs (python notebooks/make_notebooks.py)"
    )
    monkeypatch.setenv("SPECSIM_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("SPECSIM_FIGURES", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
    ).execute()
    for figure in FIGURES[name]:
        assert (tmp_path / figure).stat().st_size > 5000, figure
    assert os.environ.get("SPECSIM_FIGURES") == str(tmp_path)


def test_stored_notebooks_are_what_make_notebooks_writes():
    """The .ipynb files are generated (python notebooks/make_notebooks.py): editing one by hand is caught here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_notebooks", ROOT / "notebooks" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.NOTEBOOKS) == sorted(FIGURES)
    for name, cells in module.NOTEBOOKS.items():
        stored = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        assert [(c.cell_type, c.source) for c in stored.cells] == [(c.cell_type, c.source) for c in cells], name
