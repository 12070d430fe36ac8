"""Static token trees for speculative decoding (SpecInfer, Medusa, EAGLE): shapes, masks, cache gathers.

A round drafts a *tree* of continuations instead of one chain: the root is the last committed token,
its children are the draft's most likely next tokens, each with its own children, and so on. The
target scores every node in one pass under a *tree attention mask* (a node sees the cached context
and its own ancestors only) and keeps the longest root path it accepts.

A :class:`TreeShape` lists the nodes (root excluded) in breadth-first order, each with its
``parent`` (``-1`` = the root), ``depth`` (1 = a child of the root) and ``rank`` among its siblings
(0 = the draft's most likely child when greedy; the order of the i.i.d. draws when sampling). Shapes
come from branch factors per depth (``4,2,2,1``: four children of the root, two for each of those,
...), from a parent list, or from EAGLE-style rank paths (``[[0], [1], [0, 0], ...]``).

Named shapes (:data:`NAMED_TREES`):

* ``eagle`` -- EAGLE-1's static tree (``mc_sim_7b_63`` in the EAGLE code): 25 nodes (26 with the
  root), depth 5, lopsided towards the most likely children (4, 8, 8, 3, 2 nodes per depth).
* ``eagle-wide`` -- branch factors ``4,2,2,1,1``: 60 nodes, depth 5 (Medusa's 63-node class).
* ``binary`` -- branch factors ``2,2,2,2``: 30 nodes, depth 4.
* ``chain5`` / ``fork4`` -- small trees of the verify width of a gamma-4 chain, for comparisons:
  ``fork4`` has 4 nodes (``[0], [1], [0, 0], [0, 0, 0]``), so the target's pass has 5 query tokens
  like a gamma-4 chain (the root plus 4 drafted tokens); ``chain5`` is a 5-node chain (gamma 5).

The torch helpers (:func:`tree_mask`, :func:`gather_cache`) build 4D float masks for the Hugging Face
Llama forward (``[1, 1, queries, keys]``, 0 = attend, the dtype's minimum = masked; transformers 5.x
passes a 4D mask through unchanged) and keep only chosen positions of a ``DynamicCache``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specsim.errors import SpecsimError, shown

MAX_TREE_NODES = 64  #: nodes a tree may have (root excluded); EAGLE-1 uses 25, Medusa 63

#: EAGLE-1's static tree as rank paths (EAGLE repository, ``eagle/model/choices.py``).
EAGLE_PATHS = (
    (0,), (1,), (2,), (3,),
    (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (2, 1), (3, 0),
    (0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0), (0, 1, 1), (0, 2, 0), (0, 2, 1), (1, 0, 0),
    (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 0, 2),
    (0, 0, 0, 0, 0), (0, 0, 0, 0, 1),
)  # fmt: skip


@dataclass(frozen=True)
class TreeShape:
    """A static token tree: nodes in breadth-first order (root excluded), see the module docstring."""

    name: str
    parent: tuple[int, ...]  #: parent node of each node, -1 for a child of the root
    depth: tuple[int, ...]  #: 1-based depth of each node
    rank: tuple[int, ...]  #: rank among its siblings (0 first)

    @property
    def size(self) -> int:
        return len(self.parent)

    @property
    def max_depth(self) -> int:
        return max(self.depth)

    def children(self, node: int) -> list[int]:
        """Children of ``node`` (``-1`` = the root), in rank order."""
        return [i for i, p in enumerate(self.parent) if p == node]

    def at_depth(self, depth: int) -> list[int]:
        """Nodes of one depth (``0``: none; the root is not a node)."""
        return [i for i, d in enumerate(self.depth) if d == depth]

    def path(self, node: int) -> list[int]:
        """The nodes from depth 1 down to ``node`` (empty for the root)."""
        out = []
        while node >= 0:
            out.append(node)
            node = self.parent[node]
        return out[::-1]

    def header(self) -> dict:
        """The trace header's description of this tree (``trees`` mapping)."""
        return {"shape": self.name, "parent": list(self.parent), "depth": list(self.depth), "rank": list(self.rank)}


def from_parents(parents: Sequence[int], name: str | None = None) -> TreeShape:
    """A tree from the parent of each node in breadth-first order (``-1`` = the root)."""
    where = f"tree shape '{name}'" if name else "tree shape"
    parents = list(parents)
    if not parents:
        raise SpecsimError(f"{where}: expected at least one node")
    if len(parents) > MAX_TREE_NODES:
        raise SpecsimError(f"{where}: {len(parents)} nodes, at most {MAX_TREE_NODES} allowed")
    depth: list[int] = []
    rank: list[int] = []
    for i, p in enumerate(parents):
        if isinstance(p, bool) or not isinstance(p, int) or not -1 <= p < i:
            raise SpecsimError(f"{where}: parent of node {i} must be an earlier node or -1, got {shown(p)}")
        if i and p < parents[i - 1]:
            raise SpecsimError(f"{where}: parents must be in breadth-first order (non-decreasing), got {parents}")
        depth.append(1 if p < 0 else depth[p] + 1)
        rank.append(rank[i - 1] + 1 if i and parents[i - 1] == p else 0)
    return TreeShape(name or "p:" + ",".join(map(str, parents)), tuple(parents), tuple(depth), tuple(rank))


def from_branches(factors: Sequence[int], name: str | None = None) -> TreeShape:
    """A tree in which every node of depth ``d - 1`` (the root for ``d = 1``) has ``factors[d - 1]`` children."""
    where = f"tree shape '{name}'" if name else "tree shape"
    factors = list(factors)
    if not factors or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in factors):
        raise SpecsimError(f"{where}: branch factors must be positive integers, got {shown(factors)}")
    total, width = 0, 1
    for f in factors:
        width *= f
        total += width
        if total > MAX_TREE_NODES:
            raise SpecsimError(f"{where}: branch factors {factors} make over {MAX_TREE_NODES} nodes")
    parents: list[int] = []
    frontier = [-1]
    for f in factors:
        start = len(parents)
        for p in frontier:
            parents += [p] * f
        frontier = list(range(start, len(parents)))
    return from_parents(parents, name or "-".join(map(str, factors)))


def from_paths(paths: Sequence[Sequence[int]], name: str | None = None) -> TreeShape:
    """A tree from rank paths (EAGLE/Medusa "choices"): ``(0, 1)`` = the second child of the first child."""
    where = f"tree shape '{name}'" if name else "tree shape"
    keys = sorted({tuple(p) for p in paths}, key=lambda p: (len(p), p))
    index = {p: i for i, p in enumerate(keys)}
    for p in keys:
        if not p or (len(p) > 1 and p[:-1] not in index) or (p[-1] > 0 and p[:-1] + (p[-1] - 1,) not in index):
            raise SpecsimError(f"{where}: rank path {list(p)} lacks its parent or its elder sibling")
    return from_parents([index[p[:-1]] if len(p) > 1 else -1 for p in keys], name)


NAMED_TREES: dict[str, TreeShape] = {
    "eagle": from_paths(EAGLE_PATHS, "eagle"),
    "eagle-wide": from_branches([4, 2, 2, 1, 1], "eagle-wide"),
    "binary": from_branches([2, 2, 2, 2], "binary"),
    "fork4": from_paths([(0,), (1,), (0, 0), (0, 0, 0)], "fork4"),
    "chain5": from_branches([1, 1, 1, 1, 1], "chain5"),
}


def parse_tree(spec: str) -> TreeShape:
    """A tree from its name in :data:`NAMED_TREES`, branch factors (``4-2-2-1`` or ``4,2,2,1``) or a parent
    list (``p:-1,-1,0,1``)."""
    spec = spec.strip()
    if spec in NAMED_TREES:
        return NAMED_TREES[spec]
    if spec.startswith("p:"):
        items = spec[2:].split(",")
        if not all(_is_int(s) for s in items):
            raise SpecsimError(f"tree shape '{spec}': p:<parent>,<parent>,... needs integers")
        return from_parents([int(s) for s in items], spec)
    items = spec.replace(",", "-").split("-")
    if not all(s.strip().isdigit() for s in items):
        raise SpecsimError(
            f"tree shape '{spec}': expected one of {', '.join(NAMED_TREES)}, branch factors like 4-2-2-1, "
            "or a parent list like p:-1,-1,0"
        )
    return from_branches([int(s) for s in items], "-".join(s.strip() for s in items))


def _is_int(text: str) -> bool:
    text = text.strip()
    return text.lstrip("-").isdigit() and text.count("-") <= 1 and not text.endswith("-")


# -- passes over a tree (torch) ------------------------------------------------------------------


def attention_groups(shape: TreeShape, context: int, catchup: int, fed: Sequence[int]) -> list[tuple[int, int]]:
    """(query tokens, keys attended) per group of a tree pass: the catch-up tokens attend ``context +
    catchup`` keys (causally; the group is counted at its last token's length), then the fed nodes of
    each depth ``d`` attend the context, the catch-up tokens and their ``d`` ancestors-or-self."""
    groups = [(catchup, context + catchup)] if catchup else []
    for d in sorted({shape.depth[i] for i in fed}):
        groups.append((sum(shape.depth[i] == d for i in fed), context + catchup + d))
    return groups


def tree_mask(shape: TreeShape, context: int, catchup: int, cached: Sequence[int], fed: Sequence[int], dtype):
    """4D float attention mask ``[1, 1, catchup + len(fed), context + catchup + len(cached) + len(fed)]``.

    Keys are: ``context`` cached tokens every query sees, ``catchup`` tokens fed now (causal among
    themselves), the ``cached`` tree nodes (already in the KV cache, in cache order), then the ``fed``
    nodes. A node sees the context, the catch-up tokens and the nodes on its own root path.
    """
    import torch

    if catchup and cached:
        raise SpecsimError("tree pass: catch-up tokens cannot follow cached tree nodes")
    entries = list(cached) + list(fed)
    slot = {node: context + catchup + j for j, node in enumerate(entries)}
    keys = context + catchup + len(entries)
    allowed = torch.zeros(catchup + len(fed), keys, dtype=torch.bool)
    for j in range(catchup):
        allowed[j, : context + j + 1] = True
    for j, node in enumerate(fed):
        row = catchup + j
        allowed[row, : context + catchup] = True
        for a in shape.path(node):
            if a not in slot:
                raise SpecsimError(f"tree pass: node {node}'s ancestor {a} is not in the cache")
            allowed[row, slot[a]] = True
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[None, None]


def windowed_tree_mask(
    mask, shape: TreeShape, context: int, catchup: int, cached: Sequence[int], fed: Sequence[int], window: int
):
    """:func:`tree_mask`'s ``mask`` for a sliding-window layer of ``window`` tokens: a query also ignores every
    key at a position ``window`` or more before its own (positions as :func:`tree_positions`: the context and
    catch-up tokens in order, a node of depth ``d`` at ``context + catchup + d - 1``), as the model's own
    sliding-window mask does for a chain."""
    import torch

    queries = tree_positions(shape, context, catchup, fed)[0]
    nodes = [context + catchup + shape.depth[i] - 1 for i in [*cached, *fed]]
    keys = torch.tensor([*range(context + catchup), *nodes], dtype=torch.long)
    out = mask.clone()
    out[0, 0][(queries[:, None] - keys[None, :]) >= window] = torch.finfo(mask.dtype).min
    return out


def tree_positions(shape: TreeShape, context: int, catchup: int, fed: Sequence[int]):
    """Position ids ``[1, catchup + len(fed)]``: catch-up tokens continue the context; a node of depth
    ``d`` sits at ``context + catchup + d - 1`` (its position on its root path)."""
    import torch

    pos = list(range(context, context + catchup)) + [context + catchup + shape.depth[i] - 1 for i in fed]
    return torch.tensor([pos], dtype=torch.long)


def gather_cache(cache, keep: Sequence[int]) -> None:
    """Keep only positions ``keep`` (in that order) of every layer of a Hugging Face ``DynamicCache``.

    transformers 5.x stores each layer's keys and values as ``[batch, kv_heads, length, head_dim]``
    tensors (``cache.layers[i].keys`` / ``.values``) and reads the cached length off their shape, so
    ``get_seq_length`` follows.
    """
    import torch

    index = torch.tensor(list(keep), dtype=torch.long)
    if len(keep) == cache.get_seq_length() and torch.equal(index, torch.arange(len(keep))):
        return
    for layer in cache.layers:
        if getattr(layer, "is_initialized", True) and layer.keys is not None and layer.keys.numel():
            layer.keys = layer.keys.index_select(-2, index)
            layer.values = layer.values.index_select(-2, index)
