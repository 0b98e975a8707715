"""The dependency graph as a self-contained SVG: namespaces as boxes, components inside, broken edges red.

No graphviz binary and no JavaScript: a small deterministic layered layout
written for this one picture, so the same report always gives the same bytes
(the committed sample reports are compared byte for byte) and the HTML report
and ``Report.draw()`` in a notebook show the same drawing.

The layout works on namespaces first, because that is what the reader is
reasoning about ("who calls across namespaces?"):

1. Namespaces get columns by longest path in the namespace graph, callers on
   the left, dependencies on the right. Cycles (nova-backend ↔ nova-content
   through postgres) are broken by a depth-first search in name order, so the
   edge that closes a cycle is the one drawn right to left.
2. Inside a column, namespaces are ordered by the average position of the
   namespaces that call them (the barycenter heuristic), which removes most
   crossings for service graphs; components inside a box the same way.
3. Edges leave a component on its right side and enter on the left; edges
   inside one column curve out to the right; a component's ports are spread
   along its side in the order of the other ends, so arrows do not pile up.

Colours come from CSS classes with custom-property fallbacks: standalone the
picture has its own light background (readable on a dark notebook too), and
the HTML report retints it for its dark theme by setting the properties.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from novadiag.model import Edge
from novadiag.report.core import Figure, Report
from novadiag.report.drawing import Drawing, Link, Node, build_drawing
from novadiag.report.views import PSEUDO_NAMESPACES, host_port

FONT = 12
CHAR_W = 7.2
KIND_CHAR_W = 6.0
NODE_H = 24
NODE_GAP = 8
GROUP_PAD = 12
GROUP_TITLE = 26
GROUP_GAP = 26
COLUMN_GAP = 150
MARGIN = 20
LEGEND_H = 34
SWEEPS = 4

_KIND_TAGS = {"Deployment": "", "Service": "svc", "Host": "", "StatefulSet": "sts", "DaemonSet": "ds"}

STYLE = """
.nd-graph{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:12px}
.nd-bg{fill:var(--nd-svg-bg,#ffffff)}
.nd-ns>rect{fill:var(--nd-ns-fill,#f6f8fa);stroke:var(--nd-ns-stroke,#afb8c1);stroke-width:1}
.nd-ns.nd-pseudo>rect{stroke-dasharray:5 4;fill:none}
.nd-ns-title{font-weight:600;fill:var(--nd-fg,#1f2328);paint-order:stroke;stroke:var(--nd-ns-fill,#f6f8fa);
stroke-width:5px;stroke-linejoin:round}
.nd-ns-title.nd-halo-bg{stroke:var(--nd-svg-bg,#ffffff)}
.nd-node rect{fill:var(--nd-node-fill,#ffffff);stroke:var(--nd-node-stroke,#8c959f)}
.nd-node.nd-broken rect{fill:var(--nd-node-broken,#ffebe9);stroke:#cf222e;stroke-width:1.5}
.nd-node text{fill:var(--nd-fg,#1f2328)}
.nd-node .nd-kind{fill:var(--nd-muted,#656d76);font-size:10px}
.nd-node{cursor:pointer}
.nd-link{fill:none;stroke-width:1.5}
.nd-link:hover{stroke-width:3.5}
.nd-link.nd-ok{stroke:#2da44e;stroke-opacity:.75}
.nd-link.nd-broken{stroke:#cf222e;stroke-width:2.5}
.nd-link.nd-broken:hover{stroke-width:4}
.nd-link.nd-external{stroke:#8c959f;stroke-dasharray:5 4}
.nd-link.nd-unverified{stroke:#0969da;stroke-dasharray:2 3}
.nd-legend text{fill:var(--nd-muted,#656d76)}
"""
"""Shared with the HTML report, which inlines the SVG and sets the ``--nd-*`` properties."""


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True)
class Layout:
    groups: dict[str, Box]
    nodes: dict[str, Box]
    columns: dict[str, int]
    width: float
    height: float


def draw_report(report: Report) -> Figure:
    """The dependency graph as a figure (``Report.draw()``)."""
    return Figure(render_svg(report))


def render_svg(report: Report, **_: object) -> str:
    """The drawing as a standalone SVG document (also the ``svg`` output format)."""
    return draw_svg(build_drawing(report))


def draw_svg(drawing: Drawing) -> str:
    if not drawing.nodes:
        return _svg_document(320, 60, ['<text x="20" y="35" class="nd-ns-title">no edges to draw</text>'])
    layout = compute_layout(drawing)
    parts = [_group_svg(g, layout.groups[g], drawing) for g in drawing.groups]
    parts += ['<g class="nd-links">', *_links_svg(drawing, layout), "</g>"]
    parts += [_group_title_svg(g, layout.groups[g]) for g in drawing.groups]
    parts += [_node_svg(n, layout.nodes[n.id], drawing) for n in drawing.nodes]
    unverified = any(link.status == "unverified" and not link.broken for link in drawing.links)
    parts.append(_legend_svg(layout.height - LEGEND_H + 8, unverified=unverified))
    return _svg_document(layout.width, layout.height, parts)


# --- layout ------------------------------------------------------------------------------------


def compute_layout(drawing: Drawing) -> Layout:
    group_of = {n.id: n.group for n in drawing.nodes}
    arcs = sorted({(group_of[lk.source], group_of[lk.target]) for lk in drawing.links} - _self_pairs(drawing))
    dag = _break_cycles(list(drawing.groups), arcs)
    columns = _ranks(list(drawing.groups), dag)
    order = [[g for g in drawing.groups if columns[g] == c] for c in range(max(columns.values()) + 1)]
    nodes = {g: drawing.nodes_in(g) for g in drawing.groups}
    layout = _place(drawing, columns, order, nodes)
    for _ in range(SWEEPS):
        order, nodes = _reorder(drawing, order, nodes, layout)
        layout = _place(drawing, columns, order, nodes)
    return layout


def _self_pairs(drawing: Drawing) -> set[tuple[str, str]]:
    return {(g, g) for g in drawing.groups}


def _break_cycles(groups: list[str], arcs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop the arcs that close a cycle in a name-ordered depth-first search."""
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in arcs:
        succ[a].append(b)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in groups:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack.pop()
            if i < len(succ[node]):
                stack.append((node, i + 1))
                nxt = succ[node][i]
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
    return [arc for arc in arcs if arc not in back]


def _ranks(groups: list[str], dag: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from a source: callers left, dependencies right."""
    rank = dict.fromkeys(groups, 0)
    for _ in groups:  # at most |groups| relaxations in a DAG
        changed = False
        for a, b in dag:
            if rank[b] < rank[a] + 1:
                rank[b] = rank[a] + 1
                changed = True
        if not changed:
            break
    return rank


def _reorder(
    drawing: Drawing, order: list[list[str]], nodes: dict[str, list[Node]], layout: Layout
) -> tuple[list[list[str]], dict[str, list[Node]]]:
    """One barycenter sweep: sort groups and nodes by the mean y of their neighbours outside the group."""
    group_of = {n.id: n.group for n in drawing.nodes}
    outside: dict[str, list[float]] = defaultdict(list)
    for link in drawing.links:
        if group_of[link.source] != group_of[link.target]:
            outside[link.source].append(layout.nodes[link.target].cy)
            outside[link.target].append(layout.nodes[link.source].cy)

    def node_key(node: Node) -> tuple[float, str]:
        ys = outside[node.id]
        return (sum(ys) / len(ys) if ys else layout.nodes[node.id].cy, node.label)

    def group_key(group: str) -> tuple[bool, float, str]:
        ys = [y for n in nodes[group] for y in outside[n.id]]
        return (group in PSEUDO_NAMESPACES, sum(ys) / len(ys) if ys else layout.groups[group].cy, group)

    new_nodes = {g: sorted(members, key=node_key) for g, members in nodes.items()}
    return [sorted(column, key=group_key) for column in order], new_nodes


def _node_width(node: Node) -> float:
    tag = _KIND_TAGS.get(node.kind, node.kind)
    return len(node.label) * CHAR_W + (len(tag) * KIND_CHAR_W + 8 if tag else 0) + 16


def _place(drawing: Drawing, columns: dict[str, int], order: list[list[str]], nodes: dict[str, list[Node]]) -> Layout:
    widths = [max(_group_width(g, drawing) for g in column) for column in order]
    heights = [sum(_group_height(g, drawing) for g in col) + GROUP_GAP * (len(col) - 1) for col in order]
    total_h = max(heights)
    group_boxes: dict[str, Box] = {}
    node_boxes: dict[str, Box] = {}
    x = float(MARGIN)
    for col, members in enumerate(order):
        y = MARGIN + (total_h - heights[col]) / 2
        for group in members:
            box = Box(x, y, widths[col], _group_height(group, drawing))
            group_boxes[group] = box
            for i, node in enumerate(nodes[group]):
                ny = y + GROUP_TITLE + i * (NODE_H + NODE_GAP)
                node_boxes[node.id] = Box(x + GROUP_PAD, ny, widths[col] - 2 * GROUP_PAD, NODE_H)
            y += box.h + GROUP_GAP
        x += widths[col] + COLUMN_GAP
    width = x - COLUMN_GAP + MARGIN + 60  # room for same-column arcs on the right
    return Layout(group_boxes, node_boxes, columns, round(width), round(total_h + 2 * MARGIN + LEGEND_H))


def _group_width(group: str, drawing: Drawing) -> float:
    inner = max([_node_width(n) for n in drawing.nodes_in(group)] + [len(group) * (CHAR_W + 0.4)])
    return inner + 2 * GROUP_PAD


def _group_height(group: str, drawing: Drawing) -> float:
    n = len(drawing.nodes_in(group))
    return GROUP_TITLE + n * NODE_H + (n - 1) * NODE_GAP + GROUP_PAD


# --- drawing -----------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _svg_document(width: float, height: float, parts: list[str]) -> str:
    w, h = _fmt(width), _fmt(height)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="nd-graph" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'style="max-width:100%;height:auto" role="img" '
        'aria-label="dependency graph: namespaces as boxes, broken edges red">'
    )
    markers = "".join(
        f'<marker id="nd-arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        f'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/>'
        "</marker>"
        for name, color in (
            ("ok", "#2da44e"),
            ("broken", "#cf222e"),
            ("external", "#8c959f"),
            ("unverified", "#0969da"),
        )
    )
    return "\n".join(
        [
            head,
            f"<defs><style>{STYLE.strip()}</style>{markers}</defs>",
            f'<rect class="nd-bg" width="{w}" height="{h}" rx="6"/>',
        ]
        + parts
        + ["</svg>"]
    )


def _group_svg(group: str, box: Box, drawing: Drawing) -> str:
    pseudo = " nd-pseudo" if group in PSEUDO_NAMESPACES else ""
    broken = sum(lk.broken for lk in drawing.links if _group(drawing, lk.source) == group)
    title = f"namespace {group}" + (f": {broken} component link(s) with broken edges" if broken else "")
    return (
        f'<g class="nd-ns{pseudo}" data-ns={quoteattr(group)}><title>{escape(title)}</title>'
        f'<rect x="{_fmt(box.x)}" y="{_fmt(box.y)}" width="{_fmt(box.w)}" height="{_fmt(box.h)}" rx="6"/></g>'
    )


def _group_title_svg(group: str, box: Box) -> str:
    """Drawn after the links, with a halo, so a line crossing a box never hides its name."""
    cls = "nd-ns-title nd-halo-bg" if group in PSEUDO_NAMESPACES else "nd-ns-title"
    return f'<text class="{cls}" x="{_fmt(box.x + GROUP_PAD)}" y="{_fmt(box.y + 17)}">{escape(group)}</text>'


def _group(drawing: Drawing, node_id: str) -> str:
    return next(n.group for n in drawing.nodes if n.id == node_id)


def _node_svg(node: Node, box: Box, drawing: Drawing) -> str:
    broken = any(lk.broken and lk.source == node.id for lk in drawing.links)
    cls = "nd-node nd-broken" if broken else "nd-node"
    tag = _KIND_TAGS.get(node.kind, node.kind)
    kind = (
        f'<text class="nd-kind" x="{_fmt(box.right - 8)}" y="{_fmt(box.cy + 4)}" text-anchor="end">{escape(tag)}</text>'
    )
    return (
        f'<g class="{cls}" data-filter={quoteattr(node.label)}>'
        f"<title>{escape(f'{node.kind} {node.group}/{node.label}')}</title>"
        f'<rect x="{_fmt(box.x)}" y="{_fmt(box.y)}" width="{_fmt(box.w)}" height="{_fmt(box.h)}" rx="4"/>'
        f'<text x="{_fmt(box.x + 8)}" y="{_fmt(box.cy + 4)}">{escape(node.label)}</text>'
        + (kind if tag else "")
        + "</g>"
    )


def _links_svg(drawing: Drawing, layout: Layout) -> list[str]:
    group_of = {n.id: n.group for n in drawing.nodes}
    ports = _ports(drawing, layout, group_of)
    ordered = sorted(enumerate(drawing.links), key=lambda il: (il[1].broken, il[1].source, il[1].target))
    return [_link_svg(i, link, layout, ports, group_of) for i, link in ordered]


def _sides(link: Link, layout: Layout, group_of: dict[str, str]) -> tuple[str, str]:
    """Which side of the source and the target the link attaches to."""
    sc, tc = layout.columns[group_of[link.source]], layout.columns[group_of[link.target]]
    if tc > sc:
        return "right", "left"
    if tc < sc:
        return "left", "right"
    return "right", "right"


def _ports(drawing: Drawing, layout: Layout, group_of: dict[str, str]) -> dict[tuple[int, str], float]:
    """The y of each link end, spread along the side of its node in the order of the other ends."""
    ends: dict[tuple[str, str], list[tuple[float, int, str]]] = defaultdict(list)
    for i, link in enumerate(drawing.links):
        s_side, t_side = _sides(link, layout, group_of)
        ends[(link.source, s_side)].append((layout.nodes[link.target].cy, i, "s"))
        ends[(link.target, t_side)].append((layout.nodes[link.source].cy, i, "t"))
    ports: dict[tuple[int, str], float] = {}
    for (node, _side), items in ends.items():
        box = layout.nodes[node]
        items.sort()
        span = min(NODE_H * 0.6, 4.0 * (len(items) - 1))
        for k, (_, i, end) in enumerate(items):
            offset = 0.0 if len(items) == 1 else -span / 2 + span * k / (len(items) - 1)
            ports[(i, end)] = box.cy + offset
    return ports


def _link_svg(
    index: int, link: Link, layout: Layout, ports: dict[tuple[int, str], float], group_of: dict[str, str]
) -> str:
    s, t = layout.nodes[link.source], layout.nodes[link.target]
    s_side, t_side = _sides(link, layout, group_of)
    x1 = s.right if s_side == "right" else s.x
    x2 = t.right if t_side == "right" else t.x
    y1, y2 = ports[(index, "s")], ports[(index, "t")]
    d = _path(x1, y1, x2, y2, s_side, t_side, self_loop=link.source == link.target)
    status = "broken" if link.broken else (link.status if link.status in ("external", "unverified") else "ok")
    tip = "\n".join(_edge_tip(e) for e in link.edges)
    return (
        f'<path class="nd-link nd-{status}" d="{d}" marker-end="url(#nd-arrow-{status})">'
        f"<title>{escape(tip)}</title></path>"
    )


def _edge_tip(edge: Edge) -> str:
    tip = f"{edge.source.name} {edge.reference.slot} → {host_port(edge)}: {edge.status}"
    return tip + (f" (fix: {edge.fix})" if edge.fix else "")


def _path(x1: float, y1: float, x2: float, y2: float, s_side: str, t_side: str, *, self_loop: bool) -> str:
    if self_loop:
        loop = x1 + 34
        top, bottom = _fmt(y1 - 22), _fmt(y1 + 22)
        return f"M{_fmt(x1)},{_fmt(y1 - 4)} C{_fmt(loop)},{top} {_fmt(loop)},{bottom} {_fmt(x1)},{_fmt(y1 + 5)}"
    if s_side == t_side:  # same column: bulge out to the right
        bulge = min(90.0, 28 + 0.25 * abs(y2 - y1))
        c1x, c2x = x1 + bulge, x2 + bulge
    else:
        dx = max(40.0, abs(x2 - x1) / 2)
        c1x = x1 + dx if s_side == "right" else x1 - dx
        c2x = x2 - dx if t_side == "left" else x2 + dx
    return f"M{_fmt(x1)},{_fmt(y1)} C{_fmt(c1x)},{_fmt(y1)} {_fmt(c2x)},{_fmt(y2)} {_fmt(x2)},{_fmt(y2)}"


def _legend_svg(y: float, *, unverified: bool = False) -> str:
    items = [("ok", "ok"), ("broken", "broken"), ("external", "external host")]
    if unverified:  # only drawings of an incomplete audit need it
        items.append(("unverified", "unverified"))
    parts = ['<g class="nd-legend">']
    x = float(MARGIN)
    for status, label in items:
        parts.append(
            f'<path class="nd-link nd-{status}" d="M{_fmt(x)},{_fmt(y)} L{_fmt(x + 28)},{_fmt(y)}" '
            f'marker-end="url(#nd-arrow-{status})"/>'
            f'<text x="{_fmt(x + 36)}" y="{_fmt(y + 4)}">{escape(label)}</text>'
        )
        x += 36 + len(label) * 6.6 + 24
    parts.append(f'<text x="{_fmt(x)}" y="{_fmt(y + 4)}">boxes are namespaces; hover an arrow for its env vars</text>')
    parts.append("</g>")
    return "".join(parts)
