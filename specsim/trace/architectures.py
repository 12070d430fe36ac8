"""Shape-only model architectures: the public config numbers of models too large to run here.

Shipped files live in ``specsim/data/architectures/<name>.yaml`` (hidden, layers, heads, KV heads,
FFN, vocab, tied embeddings, family, source; optionally the head size when it is not hidden / heads,
and a sliding attention window with the pattern of layers that use it). Combined with an acceptance profile they give
*shape-derived* workloads (:mod:`specsim.trace.schedule`); everything derived from them is
labelled so. Imports only numpy and yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from specsim.errors import SpecsimError, shown
from specsim.typedconfig import cached, load_yaml_document

#: the largest value of each count an architecture may give (the trace format stores layers as int16 and
#: GEMM sizes as int32; no published decoder comes near)
LIMITS = {"hidden": 1 << 18, "layers": 4096, "heads": 4096, "kv_heads": 4096, "ffn": 1 << 20, "vocab": 1 << 24}
#: optional counts (absent or 0: the default) and their largest values; the window is in tokens (at most
#: the longest context a trace holds)
OPTIONAL_LIMITS = {"head_dim": 1 << 16, "sliding_window": 1 << 24, "sliding_window_pattern": 4096}
#: llama: RMSNorm + gated SwiGLU MLP (also Mistral, Qwen2); opt: LayerNorm + ReLU MLP; gemma3: RMSNorm on the
#: attention and MLP inputs and outputs (pre/post), RMSNorm of every query and key head (q_norm, k_norm), and a
#: gated GELU (tanh) MLP
FAMILIES = ("llama", "opt", "gemma3")


@dataclass(frozen=True)
class Architecture:
    """Shape of a decoder-only transformer (counts; no weights)."""

    name: str
    family: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    tied_embeddings: bool
    source: str = ""
    head_dim: int = 0  #: elements per attention head; 0 (default): hidden / heads
    sliding_window: int = 0  #: tokens a query of a windowed layer attends (itself and the w - 1 before); 0: none
    #: with ``sliding_window``: every ``sliding_window_pattern``-th layer (layer i with (i + 1) % pattern == 0)
    #: attends the full context and the others the window (Gemma 3: 6); 0: every layer is windowed (Mistral)
    sliding_window_pattern: int = 0

    def __post_init__(self) -> None:
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)

    def window(self, layer: int) -> int:
        """Attention window of decoder layer ``layer`` in tokens (0: full attention)."""
        if not self.sliding_window:
            return 0
        full = self.sliding_window_pattern and (layer + 1) % self.sliding_window_pattern == 0
        return 0 if full else self.sliding_window

    @property
    def decoder_weights(self) -> int:
        """Weights of the decoder linears (the operands a draft pass reads at reduced width)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        mlp = (2 if self.family == "opt" else 3) * self.hidden * self.ffn
        return self.layers * (2 * self.hidden * q + 2 * self.hidden * kv + mlp)


def shipped_architectures() -> list[str]:
    folder = resources.files("specsim") / "data" / "architectures"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def architecture_path(name_or_path: str) -> Path:
    """The file of a shipped architecture by name, or the YAML file given (whether or not it exists)."""
    path = Path(name_or_path)
    if name_or_path in shipped_architectures() or path.suffix not in (".yaml", ".yml"):
        return Path(str(resources.files("specsim") / "data" / "architectures" / f"{name_or_path}.yaml"))
    return path


def load_architecture(name_or_path: str) -> Architecture:
    """A shipped architecture by name, or a YAML file; errors name the file and the key."""
    path = architecture_path(name_or_path)
    if path != Path(name_or_path) and not path.is_file():
        raise SpecsimError(f"unknown architecture '{name_or_path}'; shipped: {', '.join(shipped_architectures())}")
    if not path.is_file():
        raise SpecsimError(f"{path}: architecture file not found")
    return cached(Architecture, (path,), lambda: _parse_architecture(path))


def _parse_architecture(path: Path) -> Architecture:
    data = load_yaml_document(path)
    if not isinstance(data, dict):
        raise SpecsimError(f"{path}: expected a mapping of architecture keys")
    known = {f.name: f.type for f in fields(Architecture)}
    for key in data:
        if key not in known:
            raise SpecsimError(f"{path}: unknown key '{key}'; expected {', '.join(known)}")
    for key in ("name", "family", "hidden", "layers", "heads", "kv_heads", "ffn", "vocab", "tied_embeddings"):
        if key not in data:
            raise SpecsimError(f"{path}: missing key '{key}'")
    for key, top in LIMITS.items():
        if not isinstance(data[key], int) or isinstance(data[key], bool) or not 1 <= data[key] <= top:
            raise SpecsimError(f"{path}: '{key}' must be an integer in 1..{top}, got {shown(data[key])}")
    for key, top in OPTIONAL_LIMITS.items():
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            raise SpecsimError(
                f"{path}: '{key}' must be an integer in 1..{top} (or 0 / absent: the default), got {shown(value)}"
            )
    if data.get("sliding_window_pattern") and not data.get("sliding_window"):
        raise SpecsimError(f"{path}: 'sliding_window_pattern' needs 'sliding_window' (the window in tokens)")
    if data.get("sliding_window_pattern") == 1:
        raise SpecsimError(
            f"{path}: 'sliding_window_pattern' must be at least 2 (every N-th layer full; 1 would window no layer)"
        )
    if not isinstance(data["tied_embeddings"], bool):
        raise SpecsimError(f"{path}: 'tied_embeddings' must be true or false")
    if data["family"] not in FAMILIES:
        raise SpecsimError(f"{path}: 'family' must be one of {', '.join(FAMILIES)}, got {data['family']!r}")
    if (not data.get("head_dim") and data["hidden"] % data["heads"]) or data["heads"] % data["kv_heads"]:
        raise SpecsimError(
            f"{path}: 'heads' must divide 'hidden' (unless 'head_dim' is given) and 'kv_heads' must divide 'heads'"
        )
    return Architecture(**{k: (str(v) if k in ("name", "family", "source") else v) for k, v in data.items()})
