"""The DAG of repos and pipelines: a layered layout, drawn as SVG (pure).

Theory of operation
-------------------
Nodes are repos and pipelines; an edge runs from each input repo to its
pipeline and from the pipeline to its output repo.  ``layout`` places them
in layers, left to right (Sugiyama's scheme, reduced to what a few dozen
nodes need):

1. layer = length of the longest path from a source (a repo nobody writes
   has layer 0; a pipeline sits one right of its deepest input);
2. order within a layer: by name first, then one barycentre pass per layer
   (each node moves towards the mean position of its predecessors), which
   untangles the common fan-in/fan-out shapes;
3. coordinates from (layer, index) on a fixed grid.

``pipeline create`` refuses cycles; should one appear anyway the layering
stops after ``len(nodes)`` rounds instead of looping.  ``svg`` draws boxes
(repo: plain, pipeline: coloured by its latest job's state) with links, and
edges as curves with arrow heads; every label is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .render import Html, esc

__all__ = ["Node", "Graph", "Placed", "layout", "svg", "NODE_W", "NODE_H"]

NODE_W, NODE_H = 150, 46
GAP_X, GAP_Y, MARGIN = 48, 22, 12


@dataclass(frozen=True)
class Node:
    id: str                  # "repo:<name>" or "pipeline:<name>"
    kind: str                # "repo" | "pipeline"
    label: str
    href: str                # not yet escaped
    state: str | None = None  # pipelines: the latest job's state
    detail: str = ""          # a second line (e.g. head commit, job state)


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)

    def add(self, node: Node) -> None:
        self.nodes.setdefault(node.id, node)

    def edge(self, a: str, b: str) -> None:
        if a in self.nodes and b in self.nodes and a != b:
            self.edges.add((a, b))


@dataclass(frozen=True)
class Placed:
    node: Node
    layer: int
    index: int
    x: int
    y: int


def layout(graph: Graph) -> tuple[dict[str, Placed], int, int]:
    """Positions of every node, and the drawing's width and height."""
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        preds[b].append(a)
    layer = {n: 0 for n in graph.nodes}
    for _ in range(len(graph.nodes)):             # longest path; bounded even with a cycle
        changed = False
        for n, ps in preds.items():
            want = max((layer[p] + 1 for p in ps), default=0)
            if want > layer[n]:
                layer[n], changed = want, True
        if not changed:
            break
    layers: dict[int, list[str]] = {}
    for n in sorted(graph.nodes, key=lambda n: (graph.nodes[n].label, n)):
        layers.setdefault(layer[n], []).append(n)
    index: dict[str, int] = {}
    for depth in sorted(layers):
        members = layers[depth]

        def centre(n: str, pos: int) -> float:
            ps = [index[p] for p in preds[n] if p in index]
            return sum(ps) / len(ps) if ps else float(pos)

        start = {n: i for i, n in enumerate(members)}
        members.sort(key=lambda n: (centre(n, start[n]), graph.nodes[n].label))
        for i, n in enumerate(members):
            index[n] = i
    placed = {}
    for n in graph.nodes:
        x = MARGIN + layer[n] * (NODE_W + GAP_X)
        y = MARGIN + index[n] * (NODE_H + GAP_Y)
        placed[n] = Placed(graph.nodes[n], layer[n], index[n], x, y)
    width = MARGIN * 2 + (max(layers, default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max((len(m) for m in layers.values()), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return placed, width, height


def _clip(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def svg(graph: Graph) -> Html:
    """The graph as an inline ``<svg>`` element."""
    placed, width, height = layout(graph)
    out = [f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="repos and pipelines">'
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
           'class="arrowhead"/></marker></defs>']
    for a, b in sorted(graph.edges):
        pa, pb = placed[a], placed[b]
        x1, y1 = pa.x + NODE_W, pa.y + NODE_H // 2
        x2, y2 = pb.x - 2, pb.y + NODE_H // 2
        mid = (x1 + x2) // 2
        out.append(f'<path class="edge" data-from="{esc(a)}" data-to="{esc(b)}" '
                   f'd="M {x1} {y1} C {mid} {y1}, {mid} {y2}, {x2} {y2}" '
                   'marker-end="url(#arrow)"/>')
    for n in sorted(placed.values(), key=lambda p: (p.layer, p.index)):
        node = n.node
        state = f" state-{esc(node.state.lower())}" if node.state else ""
        rx = 4 if node.kind == "repo" else 14
        out.append(
            f'<a href="{esc(node.href)}" class="node {esc(node.kind)}{state}" '
            f'data-node="{esc(node.id)}">'
            f'<title>{esc(node.kind)} {esc(node.label)}</title>'
            f'<rect x="{n.x}" y="{n.y}" width="{NODE_W}" height="{NODE_H}" rx="{rx}"/>'
            f'<text x="{n.x + 10}" y="{n.y + 19}" class="label">{esc(_clip(node.label))}</text>'
            f'<text x="{n.x + 10}" y="{n.y + 36}" class="detail">'
            f'{esc(_clip(node.detail, 26))}</text></a>')
    out.append("</svg>")
    return Html("".join(out))
