"""A layered layout for computational graphs, with no system binary and no randomness.

Inputs go in the first column and every node one column right of its furthest parent
(longest path). An edge that spans several columns gets a dummy point in each column between,
so it bends around nodes instead of crossing them. Within a column, nodes are ordered by the
mean position of their neighbours (barycenter sweeps, alternating left-to-right and
right-to-left); ties keep the previous order, so the same graph always gets the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .graph import Graph

__all__ = ["Layout", "layered_layout", "count_crossings"]

SWEEPS = 8
DUMMY_WIDTH = 0.3  # the room a long edge's bend takes in a column or row


@dataclass
class Layout:
    """Positions of nodes (and of the bends of long edges) in data units."""

    positions: dict[int, tuple[float, float]]  # node index -> centre
    chains: list[list[tuple[float, float]]]  # per graph edge: the points it passes through
    layers: list[list[object]]  # per column: node indices and dummy keys, top to bottom
    box: tuple[float, float]  # node width, height
    crossings: int = 0
    extent: tuple[float, float, float, float] = (0, 0, 0, 0)  # xmin, xmax, ymin, ymax
    column_of: dict[int, int] = field(default_factory=dict)
    direction: str = "right"  # "right": columns left to right; "down": rows top to bottom
    sizes: dict[int, tuple[float, float]] = field(default_factory=dict)  # node -> (w, h)

    def size_of(self, index: int) -> tuple[float, float]:
        """The box of one node (every node has ``box`` unless widths were given)."""
        return self.sizes.get(index, self.box)


def layered_layout(graph: Graph, box: tuple[float, float] = (1.9, 0.9),
                   gap: tuple[float, float] = (0.9, 0.45), direction: str = "right",
                   widths: dict[int, float] | None = None) -> Layout:
    """Lay the graph out left to right (or top-down with ``direction="down"``, for long
    chains); ``box`` is the largest node's size, ``gap`` the horizontal and vertical space
    between boxes. ``widths`` gives each node its own width (a column, or a row, is then only
    as wide as its own nodes); without it every node is ``box`` wide."""
    if direction not in ("right", "down"):
        raise ValueError(f"layered_layout: direction must be 'right' or 'down', got "
                         f"{direction!r}")
    column = {}
    for node in graph.nodes:  # evaluation order: parents come first
        column[node.index] = 1 + max((column[p] for p in node.parents), default=-1)
    n_columns = max(column.values()) + 1
    layers: list[list[object]] = [[] for _ in range(n_columns)]
    for node in graph.nodes:
        layers[column[node.index]].append(node.index)
    # chains of points for each edge, with a dummy per column in between
    chains_keys: list[list[object]] = []
    for e, edge in enumerate(graph.edges):
        keys: list[object] = [edge.source]
        for c in range(column[edge.source] + 1, column[edge.target]):
            dummy = ("dummy", e, c)
            layers[c].append(dummy)
            keys.append(dummy)
        keys.append(edge.target)
        chains_keys.append(keys)
    below, above = _neighbours(chains_keys)
    layers = _order(layers, below, above)
    crossings = count_crossings(layers, below)
    width, height = box
    own = {node.index: width for node in graph.nodes} if widths is None else dict(widths)
    size = {key: own.get(key, DUMMY_WIDTH) if isinstance(key, int) else DUMMY_WIDTH
            for layer in layers for key in layer}
    place: dict[object, tuple[float, float]] = {}
    if direction == "right":  # columns as wide as their widest node; rows of equal height
        dy = height + gap[1]
        tallest = max(len(layer) for layer in layers)
        x, previous = 0.0, 0.0
        for c, layer in enumerate(layers):
            column_width = max(size[key] for key in layer)
            if c:  # from the previous column's centre to this one's
                x += previous / 2 + gap[0] + column_width / 2
            offset = (tallest - len(layer)) / 2
            for r, key in enumerate(layer):
                place[key] = (x, -(r + offset) * dy)
            previous = column_width
    else:  # rows top to bottom; within a row each box as wide as its own label
        dy = height + gap[1]
        for c, layer in enumerate(layers):
            total = sum(size[key] for key in layer) + gap[0] * (len(layer) - 1)
            x = -total / 2
            for key in layer:
                place[key] = (x + size[key] / 2, -c * dy)
                x += size[key] + gap[0]
    positions = {k: v for k, v in place.items() if isinstance(k, int)}
    chains = [[place[k] for k in keys] for keys in chains_keys]
    xs = [place[k][0] - size[k] / 2 for k in place] + [place[k][0] + size[k] / 2 for k in place]
    ys = [place[k][1] for k in place]
    extent = (min(xs), max(xs), min(ys) - height / 2, max(ys) + height / 2)
    sizes = {k: (own.get(k, width), height) for k in positions}
    return Layout(positions, chains, layers, box, crossings, extent, column, direction,
                  sizes)


def _neighbours(chains_keys):
    """For each key, the keys one column to the left (below) and right (above) it."""
    below: dict[object, list[object]] = {}
    above: dict[object, list[object]] = {}
    for keys in chains_keys:
        for a, b in zip(keys[:-1], keys[1:]):
            below.setdefault(b, []).append(a)
            above.setdefault(a, []).append(b)
    return below, above


def _order(layers, below, above):
    """Barycenter sweeps; the ordering with the fewest crossings wins (first one on ties)."""
    best, best_crossings = [list(layer) for layer in layers], count_crossings(layers, below)
    current = [list(layer) for layer in layers]
    for sweep in range(SWEEPS):
        if sweep % 2 == 0:
            columns, neighbours, step = range(1, len(current)), below, -1
        else:
            columns, neighbours, step = range(len(current) - 2, -1, -1), above, 1
        for c in columns:
            reference = {key: i for i, key in enumerate(current[c + step])}
            previous = {key: i for i, key in enumerate(current[c])}

            def barycenter(key, reference=reference, previous=previous, neighbours=neighbours):
                linked = [reference[n] for n in neighbours.get(key, ()) if n in reference]
                centre = sum(linked) / len(linked) if linked else previous[key]
                return (centre, previous[key])

            current[c] = sorted(current[c], key=barycenter)
        crossings = count_crossings(current, below)
        if crossings < best_crossings:
            best, best_crossings = [list(layer) for layer in current], crossings
    return best


def count_crossings(layers, below) -> int:
    """Pairs of edges between neighbouring columns that cross."""
    total = 0
    for c in range(1, len(layers)):
        left = {key: i for i, key in enumerate(layers[c - 1])}
        edges = [(left[a], r) for r, key in enumerate(layers[c]) for a in below.get(key, ())
                 if a in left]
        for i, (a1, b1) in enumerate(edges):
            for a2, b2 in edges[i + 1:]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total
