"""Trace files: the one interface between the workload side and the hardware side.

A trace is an uncompressed ``.npz`` archive of numpy arrays plus one JSON header (stored as the
``uint8`` array ``__header__``). This module imports only numpy, so hardware configs, the engine,
reports and sweeps can read traces on machines without torch.

Header keys: ``kind`` (``specsim-trace``), ``schema_version``, ``model``, ``draft`` (scheme),
``mode`` (``speculative``, ``autoregressive`` or ``drift``), ``gamma`` (one per verifying level),
``verify``, ``temperature``, ``top_p``, ``seed``, ``max_new_tokens``, ``prompts`` (name),
``prompts_sha256``, ``levels`` (name of each chain level, 0 = the model whose output is produced),
``level_formats`` / ``activation_formats`` (number formats of each level's decoder-linear weights
and inputs), ``lm_head_formats`` (each level's lm_head weights; optional, absent = all ``fp16``), ``op_names`` / ``formats`` (tables the op arrays index), ``layer_stat_names``,
``drift`` (drift runs: token agreement with FP16 greedy and perplexities), ``source`` (``trace`` for
real model runs, ``shape`` for shape-derived workloads, with a ``shape_note`` saying so),
``chat_template`` (prompts wrapped in the model's chat template), ``packages`` (versions),
``payload_sha256`` (SHA-256 over every array's name, dtype, shape and bytes, in name order).

Arrays of schema 2, by length group:

* ``rounds`` -- acceptance events, one row per draft-verify round of any level, in execution order
  (``round_prompt`` int32, ``round_level`` int8: the verifying level, ``round_drafted`` int16,
  ``round_accepted`` int16);
* ``prompts`` -- ``prompt_len``, ``generated_len`` (int32); ``tokens`` -- generated tokens (int32);
* ``steps`` -- one row per forward pass of any level (``step_prompt`` int32, ``step_level`` int8,
  ``step_phase`` int8 index into :data:`PHASES`, ``step_tokens`` int32 tokens fed (M),
  ``step_past`` int32 cached tokens before the pass, ``step_logits`` int32 rows through lm_head);
* ``ops`` -- each level's operator template (``op_level`` int8, ``op_kind`` int8 index into
  :data:`OP_KINDS`, ``op_layer`` int16, ``op_name`` int16, ``op_m`` int8 (-1 tokens, -2 lm_head
  rows), ``op_n``/``op_k`` int32 (-1 = the step's KV length, past + tokens), ``op_count`` int32
  (heads of a batched GEMM), ``op_weight_format`` int8 (-1: no weight operand), ``op_window`` int32
  (schema 4: the sliding attention window in tokens of an attention operator, 0 = full attention;
  traces of schemas 2 and 3 read as 0 everywhere)); an operator's work in a step is M x N x K x count
  MACs (GEMMs) or elements (vector ops), where a windowed operator's KV length is
  ``min(past + tokens, window + tokens - 1)``;
* ``layers`` -- per decoder linear of the target, operand statistics measured once
  (``ls_layer``, ``ls_name`` int16 indexing the header's ``layer_names`` (q_proj, ...), and the
  float32 statistics in ``layer_stat_names``; see
  :mod:`specsim.workload.layer_stats`).

:func:`read_trace` validates everything and raises :class:`SpecsimError` with one line naming the
file and the problem; :func:`write_trace` writes atomically (no partial file on failure).
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specsim.atomicdir import atomic_file
from specsim.errors import SpecsimError, shown

KIND = "specsim-trace"
SCHEMA_VERSION = 4
#: schema 2 traces read as schema 4 without trees and windows, schema 3 ones without windows (:func:`with_defaults`)
READABLE_VERSIONS = (2, 3, 4)
HEADER_KEY = "__header__"
MAX_HEADER_BYTES = 16 << 20  #: a trace header larger than this is not one specsim wrote
PHASES = ("prefill", "draft", "verify", "decode")  #: step_phase codes
OP_KINDS = ("gemm", "attn_qk", "attn_pv", "softmax", "norm", "activation")  #: op_kind codes
MODES = ("speculative", "autoregressive", "drift")
LAYER_STATS = (
    "w_zero_frac",
    "a_zero_frac",
    "w_olive_pair_frac",
    "a_olive_pair_frac",
    "tender_groups",
    "bsfp_outlier_frac",
)

#: name -> (dtype, length group); arrays of one group must have equal lengths
SCHEMA: dict[str, tuple[str, str]] = {
    "round_prompt": ("int32", "rounds"),
    "round_level": ("int8", "rounds"),
    "round_drafted": ("int16", "rounds"),
    "round_accepted": ("int16", "rounds"),
    "round_nodes": ("int16", "rounds"),
    "round_accepted_node": ("int16", "rounds"),
    "prompt_len": ("int32", "prompts"),
    "generated_len": ("int32", "prompts"),
    "tokens": ("int32", "tokens"),
    "step_prompt": ("int32", "steps"),
    "step_level": ("int8", "steps"),
    "step_phase": ("int8", "steps"),
    "step_tokens": ("int32", "steps"),
    "step_past": ("int32", "steps"),
    "step_logits": ("int32", "steps"),
    "attn_step": ("int32", "attn"),
    "attn_tokens": ("int32", "attn"),
    "attn_kv": ("int32", "attn"),
    "op_level": ("int8", "ops"),
    "op_kind": ("int8", "ops"),
    "op_layer": ("int16", "ops"),
    "op_name": ("int16", "ops"),
    "op_m": ("int8", "ops"),
    "op_n": ("int32", "ops"),
    "op_k": ("int32", "ops"),
    "op_count": ("int32", "ops"),
    "op_weight_format": ("int8", "ops"),
    "op_window": ("int32", "ops"),
    "ls_layer": ("int16", "layers"),
    "ls_name": ("int16", "layers"),
    **{name: ("float32", "layers") for name in LAYER_STATS},
}


#: arrays schema 3 added, and their values in a trace without token trees (every schema 2 trace)
SCHEMA_3_DEFAULTS = {
    "round_nodes": lambda a: np.asarray(a["round_drafted"], dtype=np.int16),  # a chain drafts one node per token
    "round_accepted_node": lambda a: np.full(np.asarray(a["round_drafted"]).size, -1, dtype=np.int16),
    "attn_step": lambda a: np.zeros(0, dtype=np.int32),  # every pass attends the default way
    "attn_tokens": lambda a: np.zeros(0, dtype=np.int32),
    "attn_kv": lambda a: np.zeros(0, dtype=np.int32),
}
#: arrays schema 4 added, and their values in a trace of full attention only (every schema 2 or 3 trace)
SCHEMA_4_DEFAULTS = {
    "op_window": lambda a: np.zeros(np.asarray(a["op_kind"]).size, dtype=np.int32),
}
#: the arrays each schema version added (a trace of an older version must not hold them)
ADDED_IN = {3: SCHEMA_3_DEFAULTS, 4: SCHEMA_4_DEFAULTS}


def with_defaults(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` with the schema-3 and schema-4 arrays it lacks at their tree-free, full-attention values
    (schema 2 and 3 traces, and the in-memory traces of code that records no trees or windows)."""
    makers = {**SCHEMA_3_DEFAULTS, **SCHEMA_4_DEFAULTS}
    missing = {name: make(arrays) for name, make in makers.items() if name not in arrays}
    return {**arrays, **missing} if missing else arrays


def empty_arrays(*groups: str) -> dict[str, np.ndarray]:
    """Zero-length arrays for every schema array of the given length groups (parts a trace leaves out)."""
    return {name: np.zeros(0, dtype=dtype) for name, (dtype, group) in SCHEMA.items() if group in groups}


REQUIRED_HEADER = (
    "kind",
    "schema_version",
    "model",
    "draft",
    "mode",
    "gamma",
    "verify",
    "levels",
    "level_formats",
    "activation_formats",
    "op_names",
    "formats",
    "payload_sha256",
)


def payload_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class Trace:
    """A validated trace: header dict and arrays."""

    path: str
    header: dict
    arrays: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self.arrays = with_defaults(self.arrays)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def _stored(name: str, values) -> np.ndarray:
    """``values`` as the schema's dtype for ``name``; a value that does not fit it is an error, never a
    wrapped number."""
    a = np.asarray(values)
    if name not in SCHEMA:
        return np.ascontiguousarray(a)
    dtype = np.dtype(SCHEMA[name][0])
    if a.size and dtype.kind in "iu" and a.dtype.kind in "iuf":
        info = np.iinfo(dtype)
        if a.min() < info.min or a.max() > info.max:
            raise SpecsimError(
                f"trace array '{name}': values up to {a.max()} do not fit {dtype} "
                f"({info.min}..{info.max}); the workload is too large for the trace format"
            )
    return np.ascontiguousarray(a, dtype=dtype)


def write_trace(path: str | Path, header: dict, arrays: dict[str, np.ndarray]) -> str:
    """Validate and write a trace atomically; returns the payload SHA-256."""
    arrays = {k: _stored(k, v) for k, v in with_defaults(arrays).items()}
    _check_arrays(str(path), arrays)
    # written as this schema whatever the header came from (a schema 2 trace's header, say)
    header = {"kind": KIND, **header, "schema_version": SCHEMA_VERSION, "payload_sha256": payload_sha256(arrays)}
    _check_header(str(path), header, arrays)
    path = Path(path)
    blob = np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp, tmp.open("wb") as f:
            np.savez(f, **{HEADER_KEY: blob}, **arrays)
    except OSError as err:
        raise SpecsimError(f"{path}: cannot write the trace ({err.strerror or type(err).__name__})") from None
    return header["payload_sha256"]


MAX_TRACE_BYTES = 8 << 30  #: a trace file larger than this is refused before it is read
MAX_CONTEXT = 1 << 24  #: tokens of a prompt, a generation or a KV cache a trace may hold
MAX_DRAFT = 32  #: draft tokens per round a trace may hold (specsim trace --gamma 1..32)
MAX_TREE_NODES = 256  #: nodes of a token tree a trace may hold


def _read_members(where: str) -> dict[str, np.ndarray]:
    """Every array of the archive, each checked from its .npy header before it is read: a plain 1-D
    numeric array whose stored bytes match its shape (a member claiming more elements than it holds is
    refused, never allocated)."""
    try:
        if Path(where).stat().st_size > MAX_TRACE_BYTES:
            raise SpecsimError(f"{where}: larger than the {MAX_TRACE_BYTES >> 30} GiB a trace may be")
        out = {}
        with zipfile.ZipFile(where) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_TRACE_BYTES:
                raise SpecsimError(f"{where}: unpacks to more than the {MAX_TRACE_BYTES >> 30} GiB a trace may be")
            for info in z.infolist():
                name = info.filename.removesuffix(".npy")
                if not info.filename.endswith(".npy") or (name not in SCHEMA and name != HEADER_KEY):
                    continue  # not a trace array: never read
                if info.compress_type != zipfile.ZIP_STORED:  # specsim writes traces uncompressed
                    raise SpecsimError(
                        f"{where}: trace array '{name}' is compressed; specsim writes traces "
                        "uncompressed (np.savez), and does not unpack others"
                    )
                with z.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read_header = {
                        (1, 0): np.lib.format.read_array_header_1_0,
                        (2, 0): np.lib.format.read_array_header_2_0,
                    }.get(version)
                    if read_header is None:
                        raise SpecsimError(f"{where}: trace array '{name}' has .npy format {version}; expected 1.0")
                    shape, _, dtype = read_header(fh, max_header_size=10000)
                    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
                        raise SpecsimError(f"{where}: trace array '{name}' has a malformed shape")
                    expected = np.dtype(SCHEMA[name][0] if name in SCHEMA else np.uint8)
                    if dtype != expected or len(shape) != 1:
                        raise SpecsimError(
                            f"{where}: trace array '{name}' must be 1-D {expected}, got {len(shape)}-D {dtype}"
                        )
                    if shape[0] * dtype.itemsize != info.file_size - fh.tell():
                        raise SpecsimError(
                            f"{where}: trace array '{name}' claims {shape[0]:,} elements but holds "
                            f"{info.file_size - fh.tell():,} bytes (corrupt or crafted file)"
                        )
                    if name == HEADER_KEY and shape[0] > MAX_HEADER_BYTES:
                        raise SpecsimError(f"{where}: trace header of {shape[0]:,} bytes is too large")
                    out[name] = np.frombuffer(fh.read(), dtype=dtype).copy()
        return out
    except SpecsimError:
        raise
    except (
        OSError,
        ValueError,
        zipfile.BadZipFile,
        EOFError,
        KeyError,
        TypeError,
        SyntaxError,
        NotImplementedError,
        RuntimeError,
    ) as err:
        raise SpecsimError(f"{where}: not a readable trace (truncated or corrupt .npz: {type(err).__name__})") from None


#: header fields the simulator reads, and the JSON types they must have
HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "schema_version": (int,),
    "model": (str,),
    "draft": (str,),
    "mode": (str,),
    "gamma": (list,),
    "verify": (str,),
    "levels": (list,),
    "level_formats": (list,),
    "activation_formats": (list,),
    "lm_head_formats": (list,),
    "op_names": (list,),
    "formats": (list,),
    "payload_sha256": (str,),
    "layer_names": (list,),
    "drift": (dict,),
    "source": (str,),
    "shape_note": (str,),
    "architecture": (dict,),
    "acceptance_profile": (list, type(None)),
    "acceptance_mode": (str, type(None)),
    "expected_tokens_per_round": (int, float, type(None)),
    "configured_alpha": (int, float, type(None)),
    "prompt_count": (int,),
    "prompts_sha256": (str, type(None)),
    "trees": (dict,),
}
_LIST_ITEMS = {
    "gamma": (int,),
    "levels": (str,),
    "level_formats": (str,),
    "activation_formats": (str,),
    "lm_head_formats": (str,),
    "op_names": (str,),
    "formats": (str,),
    "layer_names": (str,),
    "acceptance_profile": (int, float),
}


def _check_header_types(where: str, header: dict) -> None:
    """Every header field the simulator reads has its JSON type (a crafted header is one line, not a
    TypeError deep in a replay)."""
    for key, types in HEADER_TYPES.items():
        if key in header and (not isinstance(header[key], types) or isinstance(header[key], bool)):
            raise SpecsimError(
                f"{where}: trace header '{key}' must be {' or '.join(t.__name__ for t in types)}, "
                f"got {shown(header[key])}"
            )
        items = _LIST_ITEMS.get(key)
        if (
            items
            and isinstance(header.get(key), list)
            and not all(isinstance(v, items) and not isinstance(v, bool) for v in header[key])
        ):
            raise SpecsimError(
                f"{where}: trace header '{key}' must list {items[0].__name__} values, got {shown(header[key])}"
            )
    if isinstance(header.get("drift"), dict) and not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in header["drift"].values()
    ):
        raise SpecsimError(f"{where}: trace header 'drift' must map names to numbers")
    if header.get("acceptance_mode") not in (None, "sampled", "expected"):
        raise SpecsimError(f"{where}: trace header 'acceptance_mode' must be sampled or expected")
    for key in ("expected_tokens_per_round", "configured_alpha"):
        value = header.get(key)
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise SpecsimError(f"{where}: trace header '{key}' must be a finite number >= 0")
    if header.get("acceptance_mode") == "expected" and not (header.get("expected_tokens_per_round") or 0) >= 1:
        raise SpecsimError(f"{where}: trace header 'expected_tokens_per_round' must be >= 1 for expected acceptance")
    for level, tree in (header.get("trees") or {}).items():
        fields = ("parent", "depth", "rank")
        if (
            not isinstance(tree, dict)
            or not all(isinstance(tree.get(k), list) for k in fields)
            or len({len(tree[k]) for k in fields}) != 1
            or not 1 <= len(tree["parent"]) <= MAX_TREE_NODES
            or not all(isinstance(v, int) and not isinstance(v, bool) for k in fields for v in tree[k])
        ):
            raise SpecsimError(
                f"{where}: trace header 'trees.{level}' must hold lists 'parent', 'depth' and 'rank' of "
                f"1..{MAX_TREE_NODES} integers each"
            )
    arch = header.get("architecture")
    if isinstance(arch, dict):
        for key in ("hidden", "layers", "heads", "kv_heads", "ffn", "vocab"):
            if not isinstance(arch.get(key), int) or isinstance(arch.get(key), bool) or not 1 <= arch[key] <= 1 << 24:
                raise SpecsimError(f"{where}: trace header 'architecture.{key}' must be an integer in 1..{1 << 24}")
        if not isinstance(arch.get("tied_embeddings", False), bool):
            raise SpecsimError(f"{where}: trace header 'architecture.tied_embeddings' must be true or false")


def _check_arrays(where: str, arrays: dict[str, np.ndarray]) -> None:
    lengths: dict[str, int] = {}
    for name, (dtype, group) in SCHEMA.items():
        if name not in arrays:
            raise SpecsimError(f"{where}: trace array '{name}' is missing")
        a = arrays[name]
        if a.dtype != np.dtype(dtype) or a.ndim != 1:
            raise SpecsimError(f"{where}: trace array '{name}' must be 1-D {dtype}, got {a.ndim}-D {a.dtype}")
        if lengths.setdefault(group, a.size) != a.size:
            raise SpecsimError(f"{where}: trace arrays of group '{group}' differ in length")
    if int(arrays["generated_len"].sum()) != arrays["tokens"].size:
        raise SpecsimError(
            f"{where}: 'tokens' holds {arrays['tokens'].size} tokens, 'generated_len' sums to "
            f"{int(arrays['generated_len'].sum())}"
        )
    n_prompts = arrays["prompt_len"].size
    rp = arrays["round_prompt"]
    if rp.size and (rp.min() < 0 or rp.max() >= n_prompts or np.any(np.diff(rp) < 0)):
        raise SpecsimError(f"{where}: 'round_prompt' must index prompts in non-decreasing order")
    acc, dr = arrays["round_accepted"], arrays["round_drafted"]
    if np.any(acc < 0) or np.any(acc > dr):
        raise SpecsimError(f"{where}: 'round_accepted' must lie in [0, round_drafted]")
    _in_range(where, arrays, "step_phase", 0, len(PHASES))
    _in_range(where, arrays, "op_kind", 0, len(OP_KINDS))
    _in_range(where, arrays, "step_prompt", 0, n_prompts)
    _in_range(where, arrays, "step_tokens", 1, MAX_CONTEXT)
    _in_range(where, arrays, "step_past", 0, MAX_CONTEXT)
    _in_range(where, arrays, "round_drafted", 1, MAX_DRAFT + 1)
    _in_range(where, arrays, "prompt_len", 1, MAX_CONTEXT)
    _in_range(where, arrays, "generated_len", 1, MAX_CONTEXT)
    # operator templates: symbolic sizes are -1 (tokens, KV length) or -2 (lm_head rows), the rest positive
    for name, symbols in (("op_m", (-1, -2)), ("op_n", (-1,)), ("op_k", (-1,))):
        a = arrays[name]
        if np.any((a < 1) & ~np.isin(a, symbols)):
            raise SpecsimError(f"{where}: '{name}' must be positive or one of {symbols} (symbolic sizes)")
    _in_range(where, arrays, "op_count", 1, None)
    _in_range(where, arrays, "op_layer", -1, None)
    _in_range(where, arrays, "op_window", 0, MAX_CONTEXT + 1)
    attention = np.isin(arrays["op_kind"], [OP_KINDS.index(k) for k in ("attn_qk", "attn_pv", "softmax")])
    if np.any((arrays["op_window"] > 0) & ~attention):
        raise SpecsimError(f"{where}: 'op_window' must be 0 on operators other than attn_qk, attn_pv and softmax")
    stats = np.stack([arrays[n] for n in LAYER_STATS]) if arrays["ls_layer"].size else np.zeros((0, 0))
    if stats.size and (not np.isfinite(stats).all() or stats.min() < 0):
        raise SpecsimError(f"{where}: layer statistics must be finite and non-negative")
    if arrays["tender_groups"].size and arrays["tender_groups"].max() > 64:
        raise SpecsimError(f"{where}: 'tender_groups' must lie in [0, 64] (channel groups)")
    _check_trees(where, arrays)
    if np.any(arrays["step_logits"] < 1) or np.any(arrays["step_logits"] > arrays["step_tokens"]):
        raise SpecsimError(f"{where}: 'step_logits' must lie in [1, step_tokens]")
    if not set(np.unique(arrays["step_level"]).tolist()) <= set(np.unique(arrays["op_level"]).tolist()):
        raise SpecsimError(f"{where}: a level in 'step_level' has no operator template in 'op_level'")


def _check_trees(where: str, arrays: dict[str, np.ndarray]) -> None:
    """Tree rounds and the attention groups of tree passes (schema 3)."""
    nodes, drafted = arrays["round_nodes"], arrays["round_drafted"]
    if np.any(nodes < drafted) or np.any(nodes > MAX_TREE_NODES):
        raise SpecsimError(f"{where}: 'round_nodes' must lie in [round_drafted, {MAX_TREE_NODES}]")
    node = arrays["round_accepted_node"]
    if np.any(node < -1) or np.any(node >= nodes) or np.any((node >= 0) & (arrays["round_accepted"] < 1)):
        raise SpecsimError(
            f"{where}: 'round_accepted_node' must be -1 or a node of the round's tree (and then a token accepted)"
        )
    step, tokens, kv = arrays["attn_step"], arrays["attn_tokens"], arrays["attn_kv"]
    if not step.size:
        return
    steps = arrays["step_tokens"].size
    if step.min() < 0 or step.max() >= steps or np.any(np.diff(step) < 0) or tokens.min() < 1 or kv.min() < 1:
        raise SpecsimError(
            f"{where}: 'attn_step' must index steps in non-decreasing order, 'attn_tokens' and 'attn_kv' be >= 1"
        )
    grouped = np.unique(step)
    total = np.bincount(step, weights=tokens, minlength=steps)[grouped]
    context = (arrays["step_past"].astype(np.int64) + arrays["step_tokens"])[step]
    if np.any(total != arrays["step_tokens"][grouped]) or np.any(kv > context):
        raise SpecsimError(
            f"{where}: a pass's attention groups must add up to its tokens and attend to at most its past + tokens"
        )


def _in_range(where: str, arrays: dict[str, np.ndarray], name: str, lo: int, hi: int | None) -> None:
    a = arrays[name]
    if a.size and (a.min() < lo or (hi is not None and a.max() >= hi)):
        raise SpecsimError(f"{where}: '{name}' must lie in [{lo}, {hi if hi is not None else 'inf'})")


def lm_head_formats(header: dict) -> list[str]:
    """Weight format of each level's lm_head (traces before the choice existed: all ``fp16``)."""
    return list(header.get("lm_head_formats") or ["fp16"] * len(header["levels"]))


def _check_header(where: str, header: dict, arrays: dict[str, np.ndarray]) -> None:
    """Cross-checks between the header's tables and the arrays that index them."""
    missing = [k for k in REQUIRED_HEADER if k not in header]
    if missing:
        raise SpecsimError(f"{where}: trace header lacks '{missing[0]}'")
    if header["mode"] not in MODES:
        raise SpecsimError(f"{where}: header 'mode' must be one of {', '.join(MODES)}")
    levels = header["levels"]
    if (
        not isinstance(levels, list)
        or not levels
        or any(len(header[k]) != len(levels) for k in ("level_formats", "activation_formats"))
    ):
        raise SpecsimError(
            f"{where}: header 'levels', 'level_formats' and 'activation_formats' must be non-empty lists of one length"
        )
    heads = header.get("lm_head_formats")
    if heads is not None and (len(heads) != len(levels) or heads[0] != "fp16"):
        raise SpecsimError(f"{where}: header 'lm_head_formats' must list one format per level, 'fp16' first")
    for name in ("step_level", "op_level", "round_level"):
        _in_range(where, arrays, name, 0, len(levels))
    _in_range(where, arrays, "op_name", 0, len(header["op_names"]))
    _in_range(where, arrays, "op_weight_format", -1, len(header["formats"]))
    if heads is not None:
        _check_lm_head_rows(where, header, arrays, heads)
    if "layer_names" in header:
        _in_range(where, arrays, "ls_name", 0, len(header["layer_names"]))
    for key, tree in (header.get("trees") or {}).items():
        if not key.isdigit() or not 1 <= int(key) < len(levels):
            raise SpecsimError(
                f"{where}: trace header 'trees' key {key!r} must name a draft level (1..{len(levels) - 1})"
            )
        mine = arrays["round_level"] == int(key) - 1
        node, acc = arrays["round_accepted_node"][mine].astype(np.int64), arrays["round_accepted"][mine]
        depth = np.asarray([0, *tree["depth"]])[np.clip(node, -1, len(tree["depth"]) - 1) + 1]
        if np.any(node >= len(tree["depth"])) or np.any(depth != acc):
            raise SpecsimError(
                f"{where}: a round of the level-{key} tree accepts a path whose length is not its accepted "
                "node's depth ('round_accepted_node', header 'trees')"
            )


def _check_lm_head_rows(where: str, header: dict, arrays: dict[str, np.ndarray], heads: list[str]) -> None:
    """Every recorded lm_head operator row carries its level's format from header 'lm_head_formats'."""
    if "lm_head" not in header["op_names"] or not len(arrays["op_name"]):
        return
    rows = arrays["op_name"] == header["op_names"].index("lm_head")
    formats = np.asarray([*header["formats"], ""])[arrays["op_weight_format"][rows]]  # -1: no weight -> ""
    expected = np.asarray(heads)[arrays["op_level"][rows]]
    if np.any(formats != expected):
        bad = int(np.flatnonzero(formats != expected)[0])
        raise SpecsimError(
            f"{where}: an lm_head operator row of level {int(arrays['op_level'][rows][bad])} has format "
            f"'{formats[bad]}', but header 'lm_head_formats' says '{expected[bad]}'"
        )


def is_trace_file(path: str | Path) -> bool:
    """Whether ``path`` is a specsim trace (its header member names the trace kind); reads the header only."""
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(HEADER_KEY + ".npy")
            if info.file_size > MAX_HEADER_BYTES:
                return False
            return f'"kind": "{KIND}"'.encode() in z.read(info)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError, EOFError):
        return False


def read_trace(path: str | Path, kind: str = KIND) -> Trace:
    """Read and validate a trace file; any problem raises a one-line :class:`SpecsimError`."""
    where = str(path)
    if not Path(path).is_file():
        raise SpecsimError(f"{where}: trace file not found")
    data = _read_members(where)
    blob = data.pop(HEADER_KEY, None)
    if blob is None or blob.dtype != np.uint8:
        raise SpecsimError(f"{where}: no trace header (not a specsim trace)")
    try:
        header = json.loads(blob.tobytes().decode())
    except ValueError:  # not UTF-8, not JSON, or an integer of more than 4,300 digits
        raise SpecsimError(f"{where}: trace header is not valid JSON") from None
    except RecursionError:
        raise SpecsimError(f"{where}: trace header nested too deeply (not a specsim trace)") from None
    if not isinstance(header, dict):
        raise SpecsimError(f"{where}: trace header must be a JSON object")
    _check_header_types(where, header)
    if header.get("kind") != kind:
        raise SpecsimError(f"{where}: kind '{header.get('kind')}' is not '{kind}'")
    if header.get("schema_version") not in READABLE_VERSIONS:
        raise SpecsimError(
            f"{where}: schema_version {header.get('schema_version')!r} is not supported "
            f"(this specsim reads versions {', '.join(map(str, READABLE_VERSIONS))}); regenerate the trace"
        )
    version = header["schema_version"]
    for added, defaults in ADDED_IN.items():
        if version < added and any(name in data for name in defaults):
            raise SpecsimError(f"{where}: a schema {version} trace with schema {added} arrays (crafted file)")
    stored_sha = payload_sha256(data)  # over the arrays as stored (older schemas: without the newer ones)
    data = with_defaults(data) if version < SCHEMA_VERSION else data
    _check_arrays(where, data)
    _check_header(where, header, data)
    if stored_sha != header["payload_sha256"]:
        raise SpecsimError(f"{where}: payload SHA-256 does not match the header (file modified or corrupt)")
    return Trace(where, header, data)


@dataclass(frozen=True)
class AcceptanceSummary:
    """Acceptance statistics of a trace (of the target's rounds; inner levels in ``level_alpha``)."""

    rounds: int
    tokens_generated: int
    mean_accepted_per_round: float
    mean_tokens_per_round: float  #: accepted + the target's own token
    position_acceptance: list[float]  #: P(draft token i accepted | tokens before it accepted), i = 1..gamma
    alpha: float  #: i.i.d. acceptance-rate estimate (accepted / positions examined)
    level_alpha: list[float]  #: alpha of the rounds each level verifies (index 0 = the target)
    steps_by_phase: dict[str, int]  #: forward passes of all levels, by phase
    ops_per_step: list[int]  #: operators per forward pass, per level


@dataclass(frozen=True)
class TreeSummary:
    """Token-tree rounds verified at one level (schema 3): how much of the tree was used."""

    level: int  #: the verifying level (its draft level is ``level + 1``)
    rounds: int
    nodes: float  #: mean nodes drafted per round
    depth: int  #: depth of the tree
    mean_accepted: float  #: mean accepted path length (tokens) per round
    accepted_histogram: list[int]  #: rounds that accepted 0, 1, ..., depth tokens
    depth_acceptance: list[float]  #: P(the path reaches depth d | it reached d - 1), d = 1..depth
    rank_share: list[list[float]]  #: per depth d, the share of the accepted nodes at d of each sibling rank


def tree_summaries(trace: Trace) -> list[TreeSummary]:
    """One :class:`TreeSummary` per level whose rounds verify a tree (the header's ``trees``)."""
    out = []
    for key, tree in sorted((trace.header.get("trees") or {}).items()):
        verifier = int(key) - 1
        mine = trace["round_level"] == verifier
        acc = trace["round_accepted"][mine].astype(np.int64)
        node = trace["round_accepted_node"][mine].astype(np.int64)
        parent, depth_of, rank = (np.asarray(tree[k], dtype=np.int64) for k in ("parent", "depth", "rank"))
        depth = int(depth_of.max())
        reached = np.array([(acc >= d - 1).sum() for d in range(1, depth + 1)], dtype=float)
        passed = np.array([(acc >= d).sum() for d in range(1, depth + 1)], dtype=float)
        ranks = np.zeros((depth, int(rank.max()) + 1))
        for n in node[node >= 0]:
            while n >= 0:  # walk the accepted path up to the root
                ranks[depth_of[n] - 1, rank[n]] += 1
                n = parent[n]
        share = ranks / np.maximum(ranks.sum(axis=1, keepdims=True), 1)
        out.append(
            TreeSummary(
                level=verifier,
                rounds=int(acc.size),
                nodes=float(trace["round_nodes"][mine].mean()) if acc.size else 0.0,
                depth=depth,
                mean_accepted=float(acc.mean()) if acc.size else 0.0,
                accepted_histogram=np.bincount(acc, minlength=depth + 1).tolist(),
                depth_acceptance=np.divide(passed, reached, out=np.zeros(depth), where=reached > 0).tolist(),
                rank_share=share.round(4).tolist(),
            )
        )
    return out


def _alpha(acc: np.ndarray, drafted: np.ndarray) -> float:
    examined = np.minimum(acc + 1, drafted).sum()  # positions looked at (stop after the first rejection)
    return float(acc.sum() / examined) if examined else 0.0


def summarize(trace: Trace) -> AcceptanceSummary:
    """Per-position acceptance rates, alpha estimates and step counts from a trace."""
    level = trace["round_level"]
    acc = trace["round_accepted"].astype(np.int64)
    drafted = trace["round_drafted"].astype(np.int64)
    top = level == 0
    acc0, drafted0 = acc[top], drafted[top]
    gamma = int(drafted0.max(initial=0))
    reached = np.array([(acc0 >= i).sum() for i in range(gamma)], dtype=float)  # rounds examining position i+1
    passed = np.array([(acc0 >= i + 1).sum() for i in range(gamma)], dtype=float)
    position = np.divide(passed, reached, out=np.zeros(gamma), where=reached > 0)
    n_levels = len(trace.header["levels"])
    return AcceptanceSummary(
        rounds=int(acc0.size),
        tokens_generated=int(trace["generated_len"].sum()),
        mean_accepted_per_round=float(acc0.mean()) if acc0.size else 0.0,
        mean_tokens_per_round=float((acc0 + 1).mean()) if acc0.size else 0.0,
        position_acceptance=[float(x) for x in position],
        alpha=_alpha(acc0, drafted0),
        level_alpha=[_alpha(acc[level == i], drafted[level == i]) for i in range(n_levels - 1)],
        steps_by_phase={p: int((trace["step_phase"] == i).sum()) for i, p in enumerate(PHASES)},
        ops_per_step=[int((trace["op_level"] == i).sum()) for i in range(n_levels)],
    )
