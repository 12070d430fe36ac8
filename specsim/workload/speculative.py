"""Speculative decoding on real PyTorch causal LMs (batch 1, KV caches, rollback on rejection).

One round: the draft proposes ``gamma`` tokens autoregressively; the target scores all of them in
one forward pass over ``gamma + 1`` positions; a prefix is accepted and one more token is taken from
the target (the correction at the first rejection, or a bonus token when all are accepted). Both KV
caches are then cut back to the accepted sequence.

Verification (Leviathan et al., ICML 2023):

* ``greedy`` -- accept while the draft token equals the target's argmax; the output equals the
  target's own greedy output token for token.
* ``sample`` -- accept draft token ``x`` with probability ``min(1, p(x) / q(x))``; on rejection
  sample from ``norm(max(0, p - q))``; after ``gamma`` acceptances sample a bonus token from ``p``.
  ``p`` and ``q`` are the target's and draft's distributions after the same temperature and top-p
  warping, so the output follows the target's warped distribution exactly (lossless).

Chains (ML-SpecQD's multi-level drafts, SpecMQuant's hierarchy): the draft may itself be sped up by
a draft below it, to any depth. Each level generates by the same draft-verify rounds over the level
below, so its tokens follow its own distribution exactly and the level above verifies them as
ordinary draft tokens. The models themselves are built in :mod:`specsim.workload.drafts`.

Token trees (:mod:`specsim.workload.trees`): the bottom level of a chain may draft a static tree
instead (one pass per depth); the level above scores every node in one pass under a tree attention
mask and keeps the longest accepted root path (greedy: the verifier's argmax at each node; sampling:
SpecInfer's multi-candidate rejection sampling, :func:`_accept_tree`). Both caches are then gathered
down to exactly that path.

Every forward pass can be reported to a :class:`StepObserver` (level, phase, tokens fed, cached
length before the pass); operand traces hang off that (:mod:`specsim.workload.optrace`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from specsim.errors import SpecsimError
from specsim.workload.trees import (
    TreeShape,
    attention_groups,
    gather_cache,
    tree_mask,
    tree_positions,
    windowed_tree_mask,
)

VERIFY_MODES = ("greedy", "sample")


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are chosen: ``greedy`` or ``sample`` with temperature and nucleus (top-p)."""

    verify: str = "greedy"
    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.verify not in VERIFY_MODES:
            raise SpecsimError(f"verify mode '{self.verify}': expected one of {', '.join(VERIFY_MODES)}")
        if not self.temperature > 0:
            raise SpecsimError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise SpecsimError(f"top_p must be in (0, 1], got {self.top_p}")

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Warped next-token distribution(s) from logits ``[..., vocab]`` (float64)."""
        p = torch.softmax(logits.double() / self.temperature, dim=-1)
        if self.top_p < 1:
            sorted_p, order = p.sort(dim=-1, descending=True)
            keep = sorted_p.cumsum(dim=-1) - sorted_p < self.top_p  # smallest set reaching top_p
            sorted_p = sorted_p * keep
            p = torch.zeros_like(p).scatter(-1, order, sorted_p)
            p = p / p.sum(dim=-1, keepdim=True)
        return p

    def choose(self, logits: torch.Tensor, gen: torch.Generator) -> tuple[int, torch.Tensor | None]:
        """Next token from logits ``[vocab]``: argmax (greedy) or a sample; also the distribution sampled."""
        if self.verify == "greedy":
            return int(logits.argmax()), None
        p = self.probs(logits)
        return int(torch.multinomial(p, 1, generator=gen)), p

    def choose_k(self, logits: torch.Tensor, k: int, gen: torch.Generator) -> tuple[list[int], torch.Tensor | None]:
        """``k`` children of a tree node from logits ``[vocab]``: the top ``k`` tokens (greedy, most likely
        first) or ``k`` i.i.d. samples (with replacement) of the warped distribution, also returned."""
        if self.verify == "greedy":
            return logits.topk(k).indices.tolist(), None
        p = self.probs(logits)
        return torch.multinomial(p, k, replacement=True, generator=gen).tolist(), p


@dataclass(frozen=True)
class Round:
    """One draft-verify round at one level: tokens drafted, how many were accepted, and whether all were.

    ``level`` 0 is the target verifying the first draft level; level ``i`` is draft level ``i``
    verifying the tokens of level ``i + 1`` (multi-level and hierarchical chains). For a tree round
    ``drafted`` is the tree's depth (the most tokens a round can accept), ``nodes`` the tree's node
    count and ``accepted_node`` the breadth-first index of the deepest accepted node (-1: none); for a
    chain ``nodes == drafted`` and ``accepted_node`` is -1.
    """

    drafted: int
    accepted: int
    bonus: bool  #: True when nothing more could be accepted (all drafted / a leaf) and the verifier added a token
    level: int = 0
    nodes: int = -1  #: tree nodes drafted (chains: ``drafted``; -1 here is replaced by ``drafted``)
    accepted_node: int = -1

    def __post_init__(self) -> None:
        if self.nodes < 0:
            object.__setattr__(self, "nodes", self.drafted)


@dataclass
class Generation:
    """Result of one speculative generation."""

    prompt_len: int
    tokens: list[int]  #: generated tokens (prompt excluded)
    rounds: list[Round] = field(default_factory=list)  #: rounds of every level, in the order they ran

    @property
    def target_rounds(self) -> list[Round]:
        return [r for r in self.rounds if r.level == 0]

    @property
    def mean_tokens_per_round(self) -> float:
        """Mean tokens added per target verify step (accepted + the target's own token)."""
        rounds = self.target_rounds
        return sum(r.accepted + 1 for r in rounds) / max(len(rounds), 1)


class StepObserver(Protocol):
    """Told about every forward pass: level, phase, tokens fed, cached length before, rows through lm_head.

    Tree passes (:mod:`specsim.workload.trees`) also pass ``attention``: one ``(query tokens, keys
    attended)`` pair per group of queries under the tree mask (see :func:`~specsim.workload.trees.attention_groups`);
    other passes call ``begin_step`` without it (their tokens attend ``past + tokens`` keys, causally).
    """

    def begin_step(
        self, level: int, phase: str, tokens: int, past: int, logits: int, attention: list | None = None
    ) -> None: ...

    def end_step(self) -> None: ...


def cache_kwarg(model) -> str:
    """The name ``model.forward`` takes its KV cache under: ``cache`` since transformers 5.2x (which
    deprecates ``past_key_values``), ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def sliding_window(model) -> int:
    """The sliding attention window (tokens) of a model, else 0: of the sliding layers of a model whose
    ``config.layer_types`` lists them (Gemma 3: 512 in 15 of 18 layers), or of every layer of a model whose
    config sets ``sliding_window`` without layer types (Mistral: 4,096). Tree passes cut their mask to it
    (:func:`~specsim.workload.trees.windowed_tree_mask`)."""
    cfg = model.config
    types = getattr(cfg, "layer_types", None)
    if types:
        return int(cfg.sliding_window or 0) if "sliding_attention" in types else 0
    return uniform_window(cfg)


def uniform_window(cfg) -> int:
    """The window of every layer of a config that sets ``sliding_window`` without ``layer_types`` (Mistral),
    else 0. Not for configs that window only some layers by another key (older Gemma 3 configs:
    ``sliding_window_pattern``: refused, its sliding layers cannot be told) or that keep a window they do
    not use (Qwen2: ``use_sliding_window: false``)."""
    if getattr(cfg, "layer_types", None) or getattr(cfg, "use_sliding_window", True) is False:
        return 0
    if getattr(cfg, "sliding_window_pattern", None):
        raise SpecsimError(
            "the model's config windows some layers by 'sliding_window_pattern' without 'layer_types' "
            "(transformers older than specsim supports); install the transformers version of the workload extra"
        )
    return int(getattr(cfg, "sliding_window", None) or 0)


def mixed_attention(model) -> bool:
    """Whether the model mixes sliding and full attention layers (``config.layer_types``), so it takes a dict
    of masks by layer type (``full_attention``, ``sliding_attention``) rather than one mask."""
    return bool(getattr(model.config, "layer_types", None))


def _truncate(cache, length: int) -> None:
    """Cut a Hugging Face KV cache back to its first ``length`` positions."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class _Stream:
    """A model with its KV cache, fed incrementally; ``feed`` returns the logits of the last ``keep`` tokens."""

    def __init__(self, model, level: int = 0, observer: StepObserver | None = None):
        from transformers import DynamicCache

        self.model = model
        self.level = level
        self.observer = observer
        # no config: every layer keeps all its keys (DynamicLayer, croppable to any length); a sliding layer's
        # window is applied by the model's mask, not by a DynamicSlidingWindowLayer (which cannot crop back
        # once the window is full unless it records the past)
        self.cache = DynamicCache()
        self._cache_kwarg = cache_kwarg(model)
        self._window = sliding_window(model)
        self._mixed = mixed_attention(model)

    @property
    def length(self) -> int:
        return self.cache.get_seq_length()

    def feed(self, tokens: list[int], keep: int, phase: str, tree: dict | None = None) -> torch.Tensor:
        """Run ``tokens`` through the model after the cache; ``tree`` (a tree pass): ``attention_mask``,
        ``position_ids`` and the ``attention`` groups told to the observer."""
        ids = torch.tensor([tokens], dtype=torch.long)
        extra = {} if tree is None else {"attention_mask": tree["attention_mask"], "position_ids": tree["position_ids"]}
        if self.observer is not None:
            phase = "prefill" if self.length == 0 else phase
            if tree is None:
                self.observer.begin_step(self.level, phase, len(tokens), self.length, keep)
            else:
                self.observer.begin_step(self.level, phase, len(tokens), self.length, keep, attention=tree["attention"])
        try:
            with torch.inference_mode():  # no autograd bookkeeping at all (cheaper than no_grad per pass)
                out = self.model(ids, **{self._cache_kwarg: self.cache}, use_cache=True, logits_to_keep=keep, **extra)
        finally:
            if self.observer is not None:
                self.observer.end_step()
        return out.logits[0, -keep:].float()

    def truncate(self, length: int) -> None:
        with torch.inference_mode():  # the cached tensors are inference tensors
            _truncate(self.cache, length)

    def feed_tree(
        self, shape: TreeShape, catchup: list[int], tokens: list[int], cached: list[int], fed: list[int], phase: str
    ) -> torch.Tensor:
        """One tree pass: the uncached ``catchup`` tokens, then tree nodes ``fed`` (their ``tokens``) under the
        tree mask, the ``cached`` nodes already in the cache after the context; logits of the last catch-up
        token (if any) and of every fed node."""
        context = self.length - len(cached)
        dtype = next(self.model.parameters()).dtype
        mask = tree_mask(shape, context, len(catchup), cached, fed, dtype)
        if self._window:  # windowed layers (Gemma 3's sliding ones, all of Mistral's) get the mask cut to the window
            windowed = windowed_tree_mask(mask, shape, context, len(catchup), cached, fed, self._window)
            mask = {"full_attention": mask, "sliding_attention": windowed} if self._mixed else windowed
        tree = {
            "attention_mask": mask,
            "position_ids": tree_positions(shape, context, len(catchup), fed),
            "attention": attention_groups(shape, context, len(catchup), fed),
        }
        return self.feed(catchup + [tokens[i] for i in fed], len(fed) + (1 if catchup else 0), phase, tree)

    def keep(self, positions: list[int]) -> None:
        """Keep only these cached positions, in this order (the accepted root path of a tree)."""
        with torch.inference_mode():
            gather_cache(self.cache, positions)


class _Level:
    """One model of a draft chain. ``extend`` returns ``n`` tokens it would generate after a sequence.

    A level with a ``below`` level generates by speculation (``below`` drafts ``gamma`` tokens, this
    level verifies them in one pass); the lowest level generates autoregressively. Either way the
    tokens follow this level's own (warped) distribution exactly, so the level above can treat them
    as ordinary draft tokens with these distributions as ``q``.
    """

    def __init__(
        self,
        model,
        index: int,
        below: _Level | None,
        gamma: int,
        observer,
        rounds: list[Round],
        tree: TreeShape | None = None,
    ):
        self.stream = _Stream(model, index, observer)
        self.index = index
        self.below = below
        self.gamma = gamma
        self.rounds = rounds
        self.tree = tree  #: the tree this level drafts for the level above (bottom level only)
        self._fed: list[int] = []  # tree nodes this level's cache holds after the context, in cache order

    def round(self, seq: list[int], sampling: SamplingConfig, gen) -> tuple[list[int], list]:
        """One draft-verify round after ``seq``: the accepted draft tokens plus this level's own token."""
        if self.below.tree is not None:
            return self._tree_round(seq, sampling, gen)
        drafted, q_dists = self.below.extend(seq, self.gamma, sampling, gen)
        start = self.stream.length
        logits = self.stream.feed(seq[start:] + drafted, len(drafted) + 1, "verify")
        accepted, extra, p_dists = _accept(drafted, q_dists, logits, sampling, gen)
        self.rounds.append(Round(len(drafted), accepted, accepted == len(drafted), self.index))
        self.rollback(len(seq) + accepted + 1)
        dists = [p_dists[i] for i in range(accepted + 1)] if p_dists is not None else []
        return drafted[:accepted] + [extra], dists

    def _tree_round(self, seq: list[int], sampling: SamplingConfig, gen) -> tuple[list[int], list]:
        """A tree round: the level below drafts its tree, this level scores every node in one pass under
        the tree mask and keeps the longest accepted root path (both caches keep exactly that path)."""
        shape = self.below.tree
        tokens, q_rows = self.below.draft_tree(seq, sampling, gen)
        catchup = seq[self.stream.length :]
        every = list(range(shape.size))
        logits = self.stream.feed_tree(shape, catchup, tokens, [], every, "verify")  # row 0: root, 1 + i: node i
        path, extra, p_rows = _accept_tree(shape, tokens, q_rows, logits, sampling, gen)
        deepest = path[-1] if path else -1
        self.rounds.append(
            Round(shape.max_depth, len(path), not shape.children(deepest), self.index, shape.size, deepest)
        )
        context = len(seq)
        self.stream.keep(list(range(context)) + [context + i for i in path])
        self.below.keep_path(context, path)
        self.rollback(context + len(path) + 1)
        dists = [p_rows[1 + i] for i in [-1, *path]] if p_rows is not None else []  # the root's row, then the path's
        return [tokens[i] for i in path] + [extra], dists

    def draft_tree(self, seq: list[int], sampling: SamplingConfig, gen) -> tuple[list[int], list]:
        """Expand this level's tree after ``seq``, depth by depth: one pass catching the cache up (the
        root's logits), then one tree pass per depth over the nodes that have children.

        Returns each node's token and, when sampling, the draft distribution each node's children were
        drawn from (row 0: the root, row ``1 + i``: node ``i``; ``None`` for leaves).
        """
        shape = self.tree
        tokens = [0] * shape.size
        rows: list = [None] * (shape.size + 1)
        logits = {-1: self.stream.feed(seq[self.stream.length :], 1, "draft")[-1]}
        self._fed = []
        for depth in range(1, shape.max_depth + 1):
            for parent in [-1] if depth == 1 else shape.at_depth(depth - 1):
                kids = shape.children(parent)
                if kids:
                    chosen, q = sampling.choose_k(logits[parent], len(kids), gen)
                    for kid, tok in zip(kids, chosen):
                        tokens[kid] = tok
                    rows[parent + 1] = q
            frontier = [i for i in shape.at_depth(depth) if shape.children(i)]
            if frontier:
                out = self.stream.feed_tree(shape, [], tokens, self._fed, frontier, "draft")
                logits.update(zip(frontier, out))
                self._fed += frontier
        return tokens, rows

    def keep_path(self, context: int, path: list[int]) -> None:
        """After a tree round: keep the context and the accepted nodes this level's cache holds."""
        slots = {node: context + j for j, node in enumerate(self._fed)}
        self.stream.keep(list(range(min(context, self.stream.length))) + [slots[i] for i in path if i in slots])
        self._fed = []

    def rollback(self, committed: int) -> None:
        """Forget cached positions beyond the committed sequence minus its last token (for every level below too)."""
        self.stream.truncate(min(self.stream.length, committed - 1))
        if self.below is not None:
            self.below.rollback(committed)

    def extend(self, seq: list[int], n: int, sampling: SamplingConfig, gen) -> tuple[list[int], list]:
        """Exactly ``n`` tokens after ``seq`` and (when sampling) this level's distribution for each."""
        if self.below is None:
            return self._autoregressive(seq, n, sampling, gen)
        out: list[int] = []
        dists: list = []
        while len(out) < n:
            tokens, p = self.round(seq + out, sampling, gen)
            out += tokens
            dists += p
        del out[n:], dists[n:]
        self.rollback(len(seq) + n)
        return out, dists

    def _autoregressive(self, seq: list[int], n: int, sampling: SamplingConfig, gen) -> tuple[list[int], list]:
        out: list[int] = []
        dists: list = []
        logits = self.stream.feed(seq[self.stream.length :], 1, "draft")[-1]
        for i in range(n):
            tok, q = sampling.choose(logits, gen)
            out.append(tok)
            if q is not None:
                dists.append(q)
            if i + 1 < n:
                logits = self.stream.feed([tok], 1, "draft")[-1]
        return out, dists


def speculative_generate(
    target,
    draft,
    prompt: list[int],
    gamma: int | Sequence[int],
    max_new_tokens: int,
    sampling: SamplingConfig = SamplingConfig(),
    seed: int = 0,
    eos_token_id: int | None = None,
    observer: StepObserver | None = None,
    trees=None,
) -> Generation:
    """Generate up to ``max_new_tokens`` tokens after ``prompt`` with draft-verify rounds.

    ``draft`` is one model or a chain ``[level-1 draft, level-2 draft, ...]`` in which each model
    drafts for the one above it; ``gamma`` is one draft length for every level or one per level
    (``gamma[i]`` tokens drafted by level ``i + 1`` per round). ``observer`` hears of every forward pass.
    ``trees``: the bottom draft level drafts this :class:`~specsim.workload.trees.TreeShape` each round
    (or one shape or ``None`` per level, only the last not ``None``); see :func:`_chain`.
    """
    if not prompt:
        raise SpecsimError("empty prompt")
    gen = torch.Generator().manual_seed(seed)
    result = Generation(prompt_len=len(prompt), tokens=[])
    top = _chain(target, draft, gamma, observer, result.rounds, trees)
    # the target prefills the prompt and picks the first token; draft levels prefill on first use
    first, _ = sampling.choose(top.stream.feed(list(prompt), 1, "prefill")[-1], gen)
    seq = list(prompt) + [first]
    while len(seq) - len(prompt) < max_new_tokens and first != eos_token_id:
        seq += top.round(seq, sampling, gen)[0]
        new = seq[len(prompt) :]
        if eos_token_id is not None and eos_token_id in new:
            seq = seq[: len(prompt) + new.index(eos_token_id) + 1]
            break
    result.tokens = seq[len(prompt) : len(prompt) + max_new_tokens]
    return result


def speculative_round(
    target,
    draft,
    prefix: list[int],
    gamma: int | Sequence[int],
    sampling: SamplingConfig = SamplingConfig(),
    seed: int = 0,
    trees=None,
) -> list[int]:
    """The tokens one draft-verify round adds after a fixed ``prefix`` (fresh caches).

    Its first token is a speculated position whose distribution must equal the target's next-token
    distribution after ``prefix``; statistical tests of losslessness sample it many times.
    """
    gen = torch.Generator().manual_seed(seed)
    top = _chain(target, draft, gamma, None, [], trees)
    return top.round(list(prefix), sampling, gen)[0]


def _chain(target, draft, gamma: int | Sequence[int], observer, rounds: list[Round], trees=None) -> _Level:
    """The levels of a draft chain (one model or a list, one gamma or one per level), linked bottom-up.

    ``trees``: one tree shape (or ``None``) per draft level, or one shape for the bottom level; only
    the bottom level may draft a tree (the level above it verifies trees; a tree above a chain level
    is not supported). The gamma of the level verifying a tree is not used.
    """
    drafts = list(draft) if isinstance(draft, (list, tuple)) else [draft]
    gammas = [gamma] * len(drafts) if isinstance(gamma, int) else list(gamma)
    if not drafts or len(gammas) != len(drafts):
        raise SpecsimError(f"need one gamma per draft level: {len(drafts)} levels, gammas {gammas}")
    if any(g < 1 for g in gammas):
        raise SpecsimError(f"gamma must be >= 1, got {gammas}")
    if trees is None or isinstance(trees, TreeShape):
        trees = [None] * (len(drafts) - 1) + [trees]
    if len(trees) != len(drafts):
        raise SpecsimError(f"need one tree shape (or None) per draft level: {len(drafts)} levels, {len(trees)} given")
    if any(t is not None for t in trees[:-1]):
        raise SpecsimError("trees: only the bottom draft level may draft a tree (a tree above a chain level)")
    below = None
    for index in range(len(drafts), 0, -1):
        gamma_i = gammas[index] if index < len(drafts) else 0
        below = _Level(drafts[index - 1], index, below, gamma_i, observer, rounds, trees[index - 1])
    return _Level(target, 0, below, gammas[0], observer, rounds)


def _accept(drafted, q_dists, t_logits, sampling: SamplingConfig, gen):
    """Accepted draft-token count, the token the verifier adds after them, and its warped distributions.

    The distributions (``[len(drafted) + 1, vocab]``, float64) are ``None`` for greedy verification.
    """
    if sampling.verify == "greedy":
        target_choice = t_logits.argmax(dim=-1).tolist()
        n = 0
        while n < len(drafted) and drafted[n] == target_choice[n]:
            n += 1
        return n, target_choice[n], None
    p_dists = sampling.probs(t_logits)
    for i, tok in enumerate(drafted):
        p, q = p_dists[i], q_dists[i]
        if float(torch.rand((), generator=gen, dtype=torch.float64)) < min(1.0, float(p[tok] / q[tok])):
            continue
        residual = (p - q).clamp_min(0)
        total = residual.sum()
        residual = residual / total if total > 0 else p
        return i, int(torch.multinomial(residual, 1, generator=gen)), p_dists
    return len(drafted), int(torch.multinomial(p_dists[len(drafted)], 1, generator=gen)), p_dists


def _accept_tree(shape: TreeShape, tokens: list[int], q_rows: list, t_logits, sampling: SamplingConfig, gen):
    """The accepted root path (node indices), the token the verifier adds after it, and its warped
    distributions (rows as ``t_logits``: 0 = the root, ``1 + i`` = node ``i``; ``None`` when greedy).

    Greedy: follow the child whose token is the verifier's argmax. Sampling: multi-step speculative
    sampling (SpecInfer): the children of a node were drawn i.i.d. from the draft's ``q``; try them in
    order, accepting ``x`` with probability ``min(1, p(x) / q(x))`` and on rejection replacing ``p`` by
    ``norm(max(0, p - q))``; an accepted child is recursed into; when all are rejected (or at a leaf)
    the verifier samples from the current ``p``. The output follows the verifier's distribution.
    """
    path: list[int] = []
    node = -1
    if sampling.verify == "greedy":
        choice = t_logits.argmax(dim=-1).tolist()
        while True:
            nxt = next((k for k in shape.children(node) if tokens[k] == choice[node + 1]), None)
            if nxt is None:
                return path, choice[node + 1], None
            path.append(nxt)
            node = nxt
    p_rows = sampling.probs(t_logits)
    while True:
        p, q = p_rows[node + 1], q_rows[node + 1]
        nxt = None
        for kid in shape.children(node):
            x = tokens[kid]
            if float(torch.rand((), generator=gen, dtype=torch.float64)) < min(1.0, float(p[x] / q[x])):
                nxt = kid
                break
            residual = (p - q).clamp_min(0)
            total = residual.sum()
            p = residual / total if total > 0 else p
        if nxt is None:
            return path, int(torch.multinomial(p, 1, generator=gen)), p_rows
        path.append(nxt)
        node = nxt


def autoregressive_generate(
    model,
    prompt: list[int],
    max_new_tokens: int,
    sampling: SamplingConfig = SamplingConfig(),
    seed: int = 0,
    eos_token_id: int | None = None,
    observer: StepObserver | None = None,
) -> list[int]:
    """Plain decoding with a KV cache, one token per forward pass (the reference for speculation)."""
    gen = torch.Generator().manual_seed(seed)
    stream = _Stream(model, 0, observer)
    logits = stream.feed(list(prompt), 1, "decode")[-1]
    out: list[int] = []
    while len(out) < max_new_tokens:
        tok, _ = sampling.choose(logits, gen)
        out.append(tok)
        if tok == eos_token_id or len(out) == max_new_tokens:
            break
        logits = stream.feed([tok], 1, "decode")[-1]
    return out
