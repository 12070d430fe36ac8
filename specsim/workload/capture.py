"""Workload capture: run a real model over a prompt set under a draft scheme and build a trace.

This is what ``specsim trace`` runs. Speculative schemes record acceptance events of every chain
level; ``none`` and drift schemes (``olive``, ``tender``, ``int4``) decode autoregressively, and
drift runs also measure how far the quantized model's output moves from FP16: free-running token
agreement with FP16 decoding, teacher-forced agreement, and perplexity on the shipped text. With
``operands=True`` the operand recorder (:mod:`specsim.workload.optrace`) records each level's operator
template and one step row per forward pass. Layer statistics and the drafts' weight views are taken
from specsim's cache when it holds them (:mod:`specsim.workload.cache`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from specsim.errors import SpecsimError
from specsim.trace.schedule import refuse_lm_head_without_draft
from specsim.trace.tracefile import LAYER_STATS, MAX_DRAFT, empty_arrays
from specsim.workload.speculative import SamplingConfig


@dataclass(frozen=True)
class CaptureConfig:
    """Everything that determines a trace (the trace header records all of it)."""

    model: str = "smollm2-135m"
    draft: str = "speq"
    gamma: int = 4
    inner_gamma: int | None = None  #: draft length of inner chain levels (default: ``gamma``)
    prompts: str = "default"
    limit: int | None = None
    max_new_tokens: int = 128
    verify: str = "greedy"
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    operands: bool = True  #: record the operand trace (forward hooks)
    layer_stats: bool = True  #: per-layer operand statistics (SmolLM2: ~20 s once, then from the cache)
    draft_lm_head: str = "fp16"  #: lm_head format of the draft levels (:func:`specsim.workload.drafts.lm_head_format`)

    def validate(self) -> None:
        if not 1 <= self.gamma <= MAX_DRAFT:
            raise SpecsimError(f"--gamma: expected 1..{MAX_DRAFT}, got {self.gamma}")
        if self.inner_gamma is not None and not 1 <= self.inner_gamma <= MAX_DRAFT:
            raise SpecsimError(f"--inner-gamma: expected 1..{MAX_DRAFT}, got {self.inner_gamma}")
        if self.max_new_tokens < 1:
            raise SpecsimError(f"--max-new-tokens: expected a positive integer, got {self.max_new_tokens}")
        if self.limit is not None and self.limit < 1:
            raise SpecsimError(f"--limit: expected a positive integer, got {self.limit}")
        SamplingConfig(self.verify, self.temperature, self.top_p)


def capture(
    cfg: CaptureConfig, progress: bool = True, cache: bool = True, timings: dict[str, float] | None = None
) -> tuple[dict, dict[str, np.ndarray]]:
    """Run the capture; returns the trace header (without payload hash) and arrays.

    ``cache``: take weight views and layer statistics from specsim's cache (:mod:`specsim.workload.cache`),
    storing them there when missing; the trace is the same either way. ``timings``, if given, receives
    the wall seconds of each phase (``load``, ``fingerprint``, ``draft``, ``decode``, ``layer_stats``,
    ``drift``) and ``layer_stats_cached`` (1.0 when the statistics came from the cache).
    """
    import time

    import transformers
    from tqdm import tqdm

    import specsim
    from specsim.workload.drafts import build_scheme, level_format, lm_head_format, parse_scheme, split_tree
    from specsim.workload.format_report import CALIBRATION_TOKENS
    from specsim.workload.models import load_model
    from specsim.workload.optrace import OpRecorder
    from specsim.workload.prompts import encode_prompt, load_prompts, prompts_hash, shipped_text
    from specsim.workload.speculative import autoregressive_generate, speculative_generate

    clock = [time.perf_counter()]

    def lap(phase: str) -> None:
        now = time.perf_counter()
        if timings is not None:
            timings[phase] = timings.get(phase, 0.0) + now - clock[0]
        clock[0] = now

    cfg.validate()
    plan = parse_scheme(cfg.draft)  # fail on a bad scheme before loading anything
    refuse_lm_head_without_draft(cfg.draft_lm_head, cfg.draft, plan.mode == "speculative")
    for level in plan.levels:
        lm_head_format(level, cfg.draft_lm_head)
    for level in plan.levels:
        tree = split_tree(level)[1]
        if tree is not None and tree.max_depth > MAX_DRAFT:
            raise SpecsimError(
                f"--draft: tree '{tree.name}' is {tree.max_depth} deep; a trace holds at most {MAX_DRAFT}"
            )
    sampling = SamplingConfig(cfg.verify, cfg.temperature, cfg.top_p)
    prompts = load_prompts(cfg.prompts)[: cfg.limit]
    loaded = load_model(cfg.model)
    tok = loaded.tokenizer
    lap("load")

    def calibration_ids() -> torch.Tensor:
        return tok(shipped_text("calibration"), return_tensors="pt").input_ids[:, :CALIBRATION_TOKENS]

    views = plan.mode == "speculative" and (
        plan.target != "fp16" or any(level_format(lv) != "fp16" for lv in plan.levels)
    )
    fingerprint = None
    if cache and (cfg.layer_stats or views):
        from specsim.workload.cache import model_fingerprint

        fingerprint = model_fingerprint(loaded.model)
    lap("fingerprint")
    built = build_scheme(
        loaded.model, cfg.draft, calibration=calibration_ids, fingerprint=fingerprint, draft_lm_head=cfg.draft_lm_head
    )
    lap("draft")
    gammas = [cfg.gamma] + [cfg.inner_gamma or cfg.gamma] * (plan.depth - 1) if plan.depth else []
    recorder = (
        OpRecorder([built.target, *built.drafts], built.level_formats, built.lm_head_formats) if cfg.operands else None
    )
    rounds: dict[str, list] = {
        "round_prompt": [],
        "round_level": [],
        "round_drafted": [],
        "round_accepted": [],
        "round_nodes": [],
        "round_accepted_node": [],
    }
    plen, glen, tokens, prompt_ids = [], [], [], []
    eos = tok.eos_token_id
    bar = tqdm(
        prompts,
        desc=f"trace {cfg.draft}" + (f" gamma={gammas}" if gammas else ""),
        unit="prompt",
        file=sys.stderr,
        disable=None if progress else True,
    )
    try:
        for i, prompt in enumerate(bar):
            ids = encode_prompt(tok, prompt.text)
            if recorder is not None:
                recorder.prompt = i
            if plan.mode == "speculative":
                out = speculative_generate(
                    built.target,
                    built.drafts,
                    ids,
                    gammas,
                    cfg.max_new_tokens,
                    sampling,
                    seed=cfg.seed + i,
                    eos_token_id=eos,
                    observer=recorder,
                    trees=built.trees,
                )
                generated = out.tokens
                for r in out.rounds:
                    for key, value in zip(rounds, (i, r.level, r.drafted, r.accepted, r.nodes, r.accepted_node)):
                        rounds[key].append(value)
            else:
                generated = autoregressive_generate(
                    built.target,
                    ids,
                    cfg.max_new_tokens,
                    sampling,
                    seed=cfg.seed + i,
                    eos_token_id=eos,
                    observer=recorder,
                )
            prompt_ids.append(ids)
            plen.append(len(ids))
            glen.append(len(generated))
            tokens.extend(generated)
    finally:
        if recorder is not None:
            recorder.remove()
    lap("decode")
    arrays = {**rounds, "prompt_len": plen, "generated_len": glen, "tokens": tokens}
    header_tables: dict = {"op_names": [], "formats": []}
    if recorder is not None:
        op_arrays, header_tables["op_names"], header_tables["formats"] = recorder.arrays()
        arrays.update(op_arrays)
        arrays.update(recorder.attention_arrays())
    else:
        arrays.update(empty_arrays("steps", "ops", "attn"))
    if cfg.layer_stats:
        from specsim.workload.layer_stats import cached_layer_stats, linear_short_names

        stats, hit = cached_layer_stats(loaded.model, calibration_ids(), fingerprint, progress)
        if hit:  # said even without progress bars: the statistics were not measured in this run
            print("layer statistics: from the cache", file=sys.stderr)
        if timings is not None:
            timings["layer_stats_cached"] = float(hit)
        arrays.update(stats)
        header_tables["layer_names"] = linear_short_names(loaded.model)
    else:
        arrays.update(empty_arrays("layers"))
    lap("layer_stats")
    header = {
        "source": "trace",
        "model": cfg.model,
        "draft": cfg.draft,
        "mode": plan.mode,
        "gamma": gammas,
        "verify": cfg.verify,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "seed": cfg.seed,
        "max_new_tokens": cfg.max_new_tokens,
        "prompts": cfg.prompts,
        "prompt_count": len(prompts),
        "chat_template": bool(getattr(tok, "chat_template", None)),
        "prompts_sha256": prompts_hash(prompts),
        "levels": built.level_names,
        "level_formats": built.level_formats,
        "lm_head_formats": built.lm_head_formats if plan.mode == "speculative" else ["fp16"],
        "activation_formats": [plan.target if plan.target in ("olive4", "olive8", "tender4", "tender8") else "fp16"]
        + ["fp16"] * plan.depth,
        "operands_recorded": cfg.operands,
        "layer_stat_names": list(LAYER_STATS),
        **header_tables,
        "packages": {
            "specsim": specsim.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
        },
    }
    trees = {str(i + 1): t.header() for i, t in enumerate(built.trees) if t is not None}
    if trees:  # draft level (as a string) -> the tree it drafts; chain traces carry no 'trees'
        header["trees"] = trees
    if plan.mode == "drift":
        header["drift"] = drift_metrics(loaded.model, built.target, tok, prompt_ids, tokens, glen, cfg, sampling)
    lap("drift")
    return header, {k: np.asarray(v) for k, v in arrays.items()}


def drift_metrics(
    fp16_model,
    quantized,
    tok,
    prompt_ids: list[list[int]],
    tokens: list[int],
    glen: list[int],
    cfg: CaptureConfig,
    sampling: SamplingConfig,
) -> dict:
    """How far a quantized model's output moves from the FP16 model's, on the same prompts and settings.

    * ``token_agreement``: fraction of generated positions where the quantized output equals the
      FP16 output (free running, position by position);
    * ``matching_prefix_mean``: mean number of leading tokens identical to the FP16 output;
    * ``teacher_forced_agreement``: fraction of positions of the FP16 output where the quantized
      model's argmax equals FP16's next token, given the FP16 prefix;
    * ``perplexity`` / ``perplexity_fp16``: on the shipped perplexity text.
    """
    from specsim.workload.prompts import shipped_text
    from specsim.workload.quantized import perplexity
    from specsim.workload.speculative import autoregressive_generate

    same = total = prefix = forced_same = forced_total = 0
    offset = 0
    for i, ids in enumerate(prompt_ids):
        ours = tokens[offset : offset + glen[i]]
        offset += glen[i]
        ref = autoregressive_generate(
            fp16_model, ids, cfg.max_new_tokens, sampling, seed=cfg.seed + i, eos_token_id=tok.eos_token_id
        )
        n = min(len(ours), len(ref))
        same += sum(a == b for a, b in zip(ours[:n], ref[:n]))
        total += max(len(ours), len(ref))
        prefix += next((j for j in range(n) if ours[j] != ref[j]), n)
        full = torch.tensor([ids + ref])
        with torch.no_grad():
            want = fp16_model(full).logits[0, len(ids) - 1 : -1].argmax(-1)
            got = quantized(full).logits[0, len(ids) - 1 : -1].argmax(-1)
        forced_same += int((want == got).sum())
        forced_total += want.numel()
    text = tok(shipped_text("perplexity"), return_tensors="pt").input_ids
    return {
        "token_agreement": same / max(total, 1),
        "matching_prefix_mean": prefix / max(len(prompt_ids), 1),
        "teacher_forced_agreement": forced_same / max(forced_total, 1),
        "perplexity": perplexity(quantized, text),
        "perplexity_fp16": perplexity(fp16_model, text),
        "perplexity_tokens": int(text.shape[1]),
    }
