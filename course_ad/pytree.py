"""Pytrees: nested dicts, lists and tuples of arrays as the arguments and results of transforms.

A pytree is a container (``dict``, ``list``, ``tuple``, named tuple, ``None``) whose entries are
containers or *leaves* (floats, arrays, traced values). ``flatten`` lists the leaves and keeps
the shape of the nesting in a ``TreeDef``; ``TreeDef.unflatten`` puts new leaves back in the
same places. Why: a model's parameters are a dict of arrays, and ``grad`` should hand back a
dict of the same keys, as JAX does, without the user packing everything into one vector.

Both directions walk the tree with an explicit stack, never recursion, so a deep nesting
cannot overflow Python's call stack; ``None`` is an empty container, as in JAX.
"""

from __future__ import annotations

import contextlib
import numbers
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dispatch import Traced

__all__ = ["TreeDef", "LEAF", "flatten", "unflatten", "tree_map", "differentiable_leaves"]


@dataclass(frozen=True)
class _Node:
    """One entry of a tree in post-order: a leaf, or a container of ``arity`` children."""

    kind: str  # "leaf", "none", "list", "tuple", "namedtuple", "dict"
    arity: int = 0
    meta: Any = None  # dict keys, the named tuple's class, or (dict class, keys, default)


_LEAF = _Node("leaf")
_NONE = _Node("none")


class TreeDef:
    """The nesting of a pytree without its leaves: enough to rebuild it from a list of leaves.

    ``path(i)`` says where leaf i sits, e.g. ``['w'][1]``, for error messages. Each leaf
    keeps only a link to its parent's path, so flattening a deep tree stays linear in time."""

    __slots__ = ("nodes", "_links")

    def __init__(self, nodes: tuple[_Node, ...], links: tuple[Any, ...]) -> None:
        self.nodes = nodes
        self._links = links

    @property
    def num_leaves(self) -> int:
        return len(self._links)

    def path(self, i: int) -> str:
        """Where leaf i sits: the keys and indices from the root, ``['w'][1]``."""
        labels = []
        link = self._links[i]
        while link is not None:
            link, label = link
            labels.append(label)
        return "".join(reversed(labels))

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self.path(i) for i in range(self.num_leaves))

    @property
    def is_leaf(self) -> bool:
        """A bare leaf (no container around it)."""
        return self.nodes == _LEAF_NODES

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TreeDef) and self.nodes == other.nodes

    def __hash__(self) -> int:
        return hash(self.nodes)

    def __repr__(self) -> str:
        return f"TreeDef({describe(self)})"

    def unflatten(self, leaves: Any) -> Any:
        """The tree with ``leaves`` in the places of the old ones, in flattening order."""
        leaves = list(leaves)
        if self.nodes == _LEAF_NODES and len(leaves) == 1:
            return leaves[0]
        if len(leaves) != self.num_leaves:
            raise ValueError(f"unflatten: the tree {describe(self)} has {self.num_leaves} "
                             f"leaves but {len(leaves)} values were given")
        built: list[Any] = []
        position = 0
        for node in self.nodes:
            if node.kind == "leaf":
                built.append(leaves[position])
                position += 1
            elif node.kind == "none":
                built.append(None)
            else:
                start = len(built) - node.arity
                children = built[start:]
                del built[start:]
                built.append(_build(node, children))
        return built[0]


_LEAF_NODES = (_LEAF,)
LEAF = TreeDef(_LEAF_NODES, (None,))  # the tree of a bare leaf


def flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """(leaves in order, TreeDef): dict entries by sorted key (insertion order for an
    ``OrderedDict`` or unsortable keys), lists and tuples by position."""
    leaves: list[Any] = []
    links: list[Any] = []  # per leaf: (parent's link, label), a path without string copies
    nodes: list[_Node] = []
    open_ids: set[int] = set()
    stack: list[tuple[bool, Any, Any]] = [(False, tree, None)]
    while stack:
        leaving, item, link = stack.pop()
        if leaving:  # all children done: the container itself, in post-order
            node, ident = item
            open_ids.discard(ident)
            nodes.append(node)
            continue
        if item is None:
            nodes.append(_NONE)
            continue
        split = _children(item)
        if split is None:
            leaves.append(item)
            links.append(link)
            nodes.append(_LEAF)
            continue
        if id(item) in open_ids:
            where = TreeDef((), (link,)).path(0) or "the top"
            raise ValueError(f"flatten: the container at {where} contains itself; "
                             "a pytree must be a tree, without cycles")
        node, labelled = split
        open_ids.add(id(item))
        stack.append((True, (node, id(item)), None))
        for label, child in reversed(labelled):
            stack.append((False, child, (link, label)))
    return leaves, TreeDef(tuple(nodes), tuple(links))


def unflatten(treedef: TreeDef, leaves: Any) -> Any:
    """``treedef.unflatten(leaves)``, as a function."""
    return treedef.unflatten(leaves)


def tree_map(fn: Any, tree: Any, *rest: Any) -> Any:
    """The tree with ``fn(leaf, *matching leaves of rest)`` in place of each leaf."""
    leaves, treedef = flatten(tree)
    others = [check_structure(treedef, r, "tree_map") for r in rest]
    return treedef.unflatten(fn(*group) for group in zip(leaves, *others))


def check_structure(treedef: TreeDef, tree: Any, what: str) -> list[Any]:
    """The leaves of ``tree``, which must be nested as ``treedef``; else a ValueError saying
    how the two differ."""
    leaves, other = flatten(tree)
    if other != treedef:
        raise ValueError(f"{what}: expected a tree shaped like {describe(treedef)}, got "
                         f"{describe(other)}; give one value per leaf, nested the same way")
    return leaves


def differentiable_leaves(tree: Any, who: str, label: str,
                          position: int | None = None) -> tuple[list[Any], TreeDef]:
    """Flatten an argument to be differentiated; a leaf that is not a number or an array of
    numbers is a TypeError naming its path, e.g. ``argument 0['w'][1] is a str`` (``label``
    and ``position`` give its start, formatted only for the message)."""
    kind = type(tree)
    if kind is float or (kind is np.ndarray and tree.dtype.kind in "fc") or \
            isinstance(tree, Traced):
        return [tree], LEAF  # the common case, kept cheap: grad runs once per training step
    leaves, treedef = flatten(tree)
    for i, leaf in enumerate(leaves):
        problem = _not_differentiable(leaf)
        if problem:
            raise TypeError(
                f"{who}: {label}{'' if position is None else f' {position}'}"
                f"{treedef.path(i)} is {problem}; only floats and float arrays "
                "can be differentiated (containers may be dicts, lists, tuples and None). Pass "
                "other values through a closure, or pick the arguments with argnums"
            )
    return leaves, treedef


def describe(treedef: TreeDef) -> str:
    """A short picture of a tree's nesting: ``{'b': *, 'w': [*, *]}``, * for each leaf."""
    built: list[str] = []
    for node in treedef.nodes:
        if node.kind == "leaf":
            built.append("*")
        elif node.kind == "none":
            built.append("None")
        else:
            start = len(built) - node.arity
            children = built[start:]
            del built[start:]
            if node.kind == "list":
                built.append("[" + ", ".join(children) + "]")
            elif node.kind == "dict":
                keys = node.meta[1]
                built.append("{" + ", ".join(f"{k!r}: {c}" for k, c in zip(keys, children))
                             + "}")
            else:
                comma = "," if len(children) == 1 else ""
                name = node.meta.__name__ if node.kind == "namedtuple" else ""
                built.append(f"{name}(" + ", ".join(children) + comma + ")")
    return built[0]


def _children(item: Any) -> tuple[_Node, list[tuple[str, Any]]] | None:
    """A container's node and its (path label, child) pairs; None for a leaf."""
    kind = type(item)
    if kind is list:
        return _Node("list", len(item)), [(f"[{i}]", c) for i, c in enumerate(item)]
    if kind is tuple:
        return _Node("tuple", len(item)), [(f"[{i}]", c) for i, c in enumerate(item)]
    if isinstance(item, tuple) and hasattr(kind, "_fields"):
        return (_Node("namedtuple", len(item), kind),
                [(f".{name}", c) for name, c in zip(kind._fields, item)])
    if isinstance(item, dict):
        keys = list(item)
        if not isinstance(item, OrderedDict):
            with contextlib.suppress(TypeError):  # mixed key types keep their insertion order
                keys = sorted(keys)
        default = item.default_factory if isinstance(item, defaultdict) else None
        meta = (kind if kind in (OrderedDict, defaultdict) else dict, tuple(keys), default)
        return _Node("dict", len(keys), meta), [(f"[{k!r}]", item[k]) for k in keys]
    return None


def _build(node: _Node, children: list[Any]) -> Any:
    if node.kind == "list":
        return children
    if node.kind == "tuple":
        return tuple(children)
    if node.kind == "namedtuple":
        return node.meta(*children)
    cls, keys, default = node.meta
    if cls is defaultdict:
        return defaultdict(default, zip(keys, children))
    return cls(zip(keys, children))


def _not_differentiable(leaf: Any) -> str:
    """'' for a leaf the engines accept; otherwise what it is, for the error message."""
    if isinstance(leaf, Traced | numbers.Number) and not isinstance(leaf, str):
        return ""
    if isinstance(leaf, np.ndarray):
        if leaf.dtype.kind in "biufc":
            return ""
        return f"an array of dtype {leaf.dtype}"
    article = "an" if type(leaf).__name__[:1].lower() in "aeiou" else "a"
    return f"{article} {type(leaf).__name__}"
