"""Regenerate the notebooks of this folder (stored without outputs) from the cell sources below.

    python notebooks/make_notebooks.py

Every notebook reads two environment variables: ``SPECSIM_NOTEBOOK_SMALL=1`` shrinks its sweeps (the
tests execute the notebooks headless that way) and ``SPECSIM_FIGURES`` names the folder its figures go
to (default: ``results/notebooks``, outside version control; the committed figures of docs/sweeps.md
are made with ``SPECSIM_FIGURES=notebooks/figures``).
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """import os
from pathlib import Path

import matplotlib
import pandas as pd

import specsim
from specsim.results import plots

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "hwconfigs").is_dir())
SMALL = os.environ.get("SPECSIM_NOTEBOOK_SMALL") == "1"       # the tests run the notebooks small
FIGURES = Path(os.environ.get("SPECSIM_FIGURES", ROOT / "results" / "notebooks"))
FIGURES.mkdir(parents=True, exist_ok=True)
pd.set_option("display.precision", 3)
PROGRESS = not SMALL   # a progress bar on long sweeps (the headless test runs stay quiet)
print(f"specsim {specsim.__version__}, small settings: {SMALL}, figures -> {FIGURES}")"""

NOTEBOOKS = {
    "pe_array_sweep.ipynb": [
        new_markdown_cell(
            "# PE-array size sweep\n\n"
            "How does SPEQ's decode speedup over FP16, OliVe, Tender, ML-SpecQD and SpecMQuant's hierarchical "
            "scheme move with the size of the PE array? Every accelerator gets the same rows x cols, clock, "
            "buffers and memory (the default `comparison: like_for_like`). The workload is **SHAPE-DERIVED**: "
            "Llama-2-7B's operators from the "
            "shipped architecture file, SPEQ's acceptance a parametric alpha, the other drafts' acceptance "
            "measured on SmolLM2 (`hwconfigs/sweep_llama2_7b.yaml`)."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            'CONFIG = ROOT / "hwconfigs" / "sweep_llama2_7b.yaml"\n'
            "sizes = [16, 64] if SMALL else [8, 16, 32, 64, 128, 256]\n"
            'space = {"hardware.array.rows": sizes, "hardware.array.cols": sizes}\n'
            "table = specsim.sweep(CONFIG, space, workers=2, progress=PROGRESS)\n"
            'summary = table.attrs["summary"]\n'
            "print(summary.line())\n"
            "for failure in summary.failures:      # points that cannot be built are recorded, the sweep goes on\n"
            '    print(dict(failure["params"]), "->", failure["error"])\n'
            "table.head()"
        ),
        new_markdown_cell(
            "The three largest arrays (128 x 256, 256 x 128, 256 x 256) do not fit the shipped buffers: one "
            "quarter-mode tile of a 128 x 256 array (4 lanes) needs a 256 KiB KV-cache slot (the 256 KiB buffer "
            "holds two 128 KiB slots), and a 256 x 256 output tile 256 KiB of FP32 partial sums. Those points fail, "
            "naming the buffer that is too small (recorded above; the sweep goes on). Larger buffers "
            "(`hardware.buffers.kv_cache.size_kib`, ...) reach every baseline too: like for like, they share the "
            "main accelerator's buffers."
        ),
        new_markdown_cell("SPEQ's decode speedup over each baseline, per array shape (rows x cols):"),
        new_code_cell(
            "base = table[~table.is_main]\n"
            'base.pivot_table(index=["hardware.array.rows", "hardware.array.cols"], columns="accelerator",\n'
            '                 values="main_speedup_over")'
        ),
        new_markdown_cell("Decode time per token of every accelerator on square arrays (ms):"),
        new_code_cell(
            'square = table[table["hardware.array.rows"] == table["hardware.array.cols"]]\n'
            '(square.pivot_table(index="pes", columns="accelerator", values="decode_latency_per_token_s") * 1e3)'
        ),
        new_code_cell('fig = plots.speedup_vs_pes(square)\nplots.save(fig, FIGURES / "pe_array_sweep.png")\nfig'),
    ],
    "paper_figures.ipynb": [
        new_markdown_cell(
            "# Paper-style figures (those of docs/sweeps.md)\n\n"
            "1. decode speedup over FP16 per model with a geomean group, and 2. the energy breakdown, in the "
            "SPEQ paper's setting (`hwconfigs/paper/speq.yaml`: Llama-class shapes, alpha 0.976, gamma 4, "
            "against FP16, OliVe W8A8 and Tender W8A8; SHAPE-DERIVED);\n"
            "3. the roofline of the main job's draft, verify and decode passes (`hwconfigs/speq.yaml`, "
            "Llama-2-7B shape);\n"
            "4. SPEQ's speedup over each baseline against PE-array size and 5. over FP16 across draft length "
            "x acceptance rate (`hwconfigs/sweep_llama2_7b.yaml`)."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            "from specsim.results.config import load_run_config\n"
            "from specsim.results.report import report_rows\n"
            "from specsim.results.run import run\n"
            "\n"
            "def run_table(config, overrides=()):\n"
            '    """The tidy table of one `specsim run`."""\n'
            "    return pd.DataFrame(report_rows(run(load_run_config(ROOT / config, list(overrides)), progress=False)))\n"
            "\n"
            "tokens = 16 if SMALL else 128\n"
            'paper = run_table("hwconfigs/paper/speq.yaml",\n'
            '                  [f"workloads.{i}.shape.max_new_tokens={tokens}" for i in range(5)])\n'
            'paper.pivot_table(index="workload", columns="accelerator", values="speedup_vs_reference", sort=False)'
        ),
        new_code_cell('fig = plots.speedup_bars(paper)\nplots.save(fig, FIGURES / "speedup_paper_setting.png")\nfig'),
        new_code_cell(
            'fig = plots.energy_breakdown(paper)\nplots.save(fig, FIGURES / "energy_paper_setting.png")\nfig'
        ),
        new_code_cell(
            'main_job = run_table("hwconfigs/speq.yaml")\n'
            'fig = plots.roofline(main_job, workload="llama-2-7b")\n'
            'plots.save(fig, FIGURES / "roofline_llama2_7b.png")\n'
            "fig"
        ),
        new_code_cell(
            'CONFIG = ROOT / "hwconfigs" / "sweep_llama2_7b.yaml"\n'
            "sizes = [16, 64] if SMALL else [8, 16, 32, 64, 128]\n"
            'pe = specsim.sweep(CONFIG, [{"hardware.array.rows": n, "hardware.array.cols": n} for n in sizes],\n'
            "                   workers=2, progress=PROGRESS)\n"
            "fig = plots.speedup_vs_pes(pe)\n"
            'plots.save(fig, FIGURES / "pe_sweep_llama2_7b.png")\n'
            "fig"
        ),
        new_code_cell(
            "gammas = [1, 4] if SMALL else [1, 2, 3, 4, 5, 6, 7, 8]\n"
            "alphas = [0.6, 0.9] if SMALL else [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98]\n"
            "# the sweep config runs acceptance at its expectation: every cell deterministic, no sampling noise\n"
            'steady = {} if SMALL else {"workloads.0.shape.max_new_tokens": [256]}\n'
            'grid = specsim.sweep(CONFIG, {"decoding.gamma": gammas, "workloads.0.shape.acceptance.speq": alphas,\n'
            "                              **steady}, workers=2, progress=PROGRESS)\n"
            "fig = plots.gamma_alpha_heatmap(grid)\n"
            'plots.save(fig, FIGURES / "gamma_alpha_heatmap.png")\n'
            "fig"
        ),
    ],
    "explore_acceptance.ipynb": [
        new_markdown_cell(
            "# Acceptance statistics from real traces\n\n"
            "Every speculative trace under `traces/` (SmolLM2-135M, 5 shipped prompts x 64 tokens, greedy; "
            "`traces/make_default_traces.sh`) records each round's drafted and accepted tokens. Here: alpha, "
            "tokens per round, per-position acceptance against the i.i.d. model, and how the accepted "
            "lengths are distributed. This notebook needs numpy only (no torch)."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            "import numpy as np\n"
            "from specsim.trace.tracefile import read_trace, summarize\n"
            "\n"
            "traces = {}\n"
            'for path in sorted((ROOT / "traces").glob("*.npz")):\n'
            "    trace = read_trace(path)\n"
            '    if trace.header["mode"] == "speculative":\n'
            "        traces[path.stem] = trace\n"
            "rows = []\n"
            "for name, trace in traces.items():\n"
            "    s = summarize(trace)\n"
            '    rows.append({"trace": name, "draft": trace.header["draft"], "gamma": trace.header["gamma"][0],\n'
            '                 "rounds": s.rounds, "tokens": s.tokens_generated, "alpha": s.alpha,\n'
            '                 "accepted/round": s.mean_accepted_per_round, "tokens/round": s.mean_tokens_per_round,\n'
            '                 "inner-level alpha": s.level_alpha[1] if len(s.level_alpha) > 1 else None})\n'
            'summary = pd.DataFrame(rows).set_index("trace")\n'
            "summary"
        ),
        new_markdown_cell(
            "Per-position acceptance P(draft token i accepted | tokens before it accepted) against the "
            "i.i.d. assumption (a constant alpha), and the distribution of accepted tokens per round. "
            "`multilevel` lies exactly under `mxfp4`: its top level is the same MXFP4 draft (itself drafted by "
            "a cheaper one, losslessly), so the target sees the same draft tokens in every round."
        ),
        new_code_cell(
            "from matplotlib.figure import Figure\n"
            "\n"
            "with matplotlib.rc_context(plots.STYLE):\n"
            '    fig = Figure(figsize=(9, 3.4), layout="constrained")\n'
            "    pos, hist = fig.subplots(1, 2)\n"
            "    seen = []                      # a curve equal to an earlier one is drawn dashed, hollow\n"
            "    for color, (name, trace) in zip(plots.PALETTE, traces.items()):\n"
            "        s = summarize(trace)\n"
            "        k = np.arange(1, len(s.position_acceptance) + 1)\n"
            '        top = trace["round_level"] == 0\n'
            '        accepted = trace["round_accepted"][top]\n'
            "        counts = np.bincount(accepted, minlength=len(k) + 1) / accepted.size\n"
            "        same = next((d for d, c in seen if np.array_equal(counts, c)), None)\n"
            '        seen.append((trace.header["draft"], counts))\n'
            '        look = dict(color=color, label=trace.header["draft"] + (f" (same as {same})" if same else ""),\n'
            '                    linestyle="--" if same else "-", markerfacecolor="none" if same else color,\n'
            "                    markersize=9 if same else 6)\n"
            '        pos.plot(k, s.position_acceptance, marker="o", **look)\n'
            '        pos.axhline(s.alpha, color=color, linestyle=":", linewidth=0.8)\n'
            '        hist.plot(np.arange(len(counts)), counts, marker="s", **look)\n'
            "    pos.set_xticks(k)\n"
            "    hist.set_xticks(np.arange(len(k) + 1))\n"
            '    pos.set_xlabel("draft position i")\n'
            '    pos.set_ylabel("P(accept i | 1..i-1 accepted)")\n'
            '    pos.set_title("per-position acceptance (dotted: alpha)")\n'
            "    pos.set_ylim(0, 1)\n"
            '    hist.set_xlabel("accepted draft tokens per round")\n'
            '    hist.set_ylabel("fraction of rounds")\n'
            '    hist.set_title("accepted length per round")\n'
            "    hist.legend(frameon=False)\n"
            'plots.save(fig, FIGURES / "acceptance_smollm2.png")\n'
            "fig"
        ),
        new_markdown_cell(
            "Leviathan et al.'s expected tokens per round under i.i.d. acceptance, (1 - a^(g+1)) / (1 - a), "
            "beside the measured one:"
        ),
        new_code_cell(
            'g = summary["gamma"].astype(float)\n'
            'a = summary["alpha"]\n'
            'summary.assign(iid_tokens_per_round=(1 - a ** (g + 1)) / (1 - a))[["alpha", "tokens/round",\n'
            '                                                                 "iid_tokens_per_round"]]'
        ),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        for i, cell in enumerate(cells):  # stable cell ids: regenerating changes only what changed
            cell["id"] = f"{Path(name).stem}-{i}"
        nb = new_notebook(
            cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
        )
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
