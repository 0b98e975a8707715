"""The dependency graph as text for other tools: Graphviz DOT and Mermaid.

Both draw the same component graph as the SVG (:func:`~novadiag.report.drawing.build_drawing`):
one cluster/subgraph per namespace, broken links red with the env var as a
label, external hosts dashed. Mermaid is there because GitHub and GitLab render
a ```` ```mermaid ```` block in a pull request or issue; DOT for ``dot -Tsvg``
and every graph tool that reads it.

Everything inside quotes comes from the cluster and is untrusted: DOT strings
escape backslashes, quotes and newlines; Mermaid labels replace the few
characters its parser or its HTML labels would interpret with look-alikes
(see :func:`mermaid_text` for why not its entities).
Node ids are generated (``n0``, ``n1``...), never taken from names.
"""

from __future__ import annotations

from typing import Any

from novadiag.report.core import Report
from novadiag.report.drawing import Drawing, Link, build_drawing
from novadiag.report.views import PSEUDO_NAMESPACES, host_port

RED = "#cf222e"
GREEN = "#2da44e"
GREY = "#8c959f"
BLUE = "#0969da"


def _link_colour(link: Link) -> str:
    if link.broken:
        return RED
    return {"external": GREY, "unverified": BLUE}.get(link.status, GREEN)


def _broken_label(link: Link) -> str:
    return "\n".join(sorted({e.reference.slot for e in link.edges if e.broken}))


def _tooltip(link: Link) -> str:
    return "\n".join(f"{e.reference.slot} → {host_port(e)}: {e.status}" for e in link.edges)


def _node_ids(drawing: Drawing) -> dict[str, str]:
    """Generated ids, numbered in drawing order (namespace by namespace): names never become ids."""
    ordered = [n for g in drawing.groups for n in drawing.nodes_in(g)]
    return {n.id: f"n{i}" for i, n in enumerate(ordered)}


def _broken_sources(drawing: Drawing) -> set[str]:
    return {lk.source for lk in drawing.links if lk.broken}


# --- DOT ---------------------------------------------------------------------------------------


def dot_quote(text: str) -> str:
    """A DOT double-quoted string that shows ``text`` as written."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'


def render_dot(report: Report, **_: Any) -> str:
    drawing = build_drawing(report)
    ids = _node_ids(drawing)
    broken = _broken_sources(drawing)
    lines = [
        "digraph novadiag {",
        '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, newrank=true];',
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#8c959f", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=9, color="#2da44e"];',
    ]
    for i, group in enumerate(drawing.groups):
        style = "dashed,rounded" if group in PSEUDO_NAMESPACES else "rounded,filled"
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f'    label={dot_quote(group)}; style="{style}"; fillcolor="#f6f8fa"; color="#afb8c1";')
        for node in drawing.nodes_in(group):
            extra = f', color="{RED}", fillcolor="#ffebe9", penwidth=1.5' if node.id in broken else ""
            lines.append(f"    {ids[node.id]} [label={dot_quote(node.label)}, tooltip={dot_quote(node.kind)}{extra}];")
        lines.append("  }")
    for link in drawing.links:
        attrs = [f'color="{_link_colour(link)}"', f"tooltip={dot_quote(_tooltip(link))}"]
        if link.broken:
            attrs += ["penwidth=2", f"label={dot_quote(_broken_label(link))}", f'fontcolor="{RED}"']
        elif link.status == "external":
            attrs.append("style=dashed")
        lines.append(f"  {ids[link.source]} -> {ids[link.target]} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- Mermaid -----------------------------------------------------------------------------------

# Mermaid's own ``#code;`` entities are not decoded inside subgraphs (mermaid 11 renders them as
# placeholder text), and every node here sits in a subgraph. So the characters that would end a
# quoted label or become HTML in it are replaced by look-alikes instead: Kubernetes names never
# hold them, only free-form values do, and there a visible stand-in beats a broken diagram.
_MERMAID_LOOKALIKES = str.maketrans({'"': "'", "<": "‹", ">": "›", "`": "ˋ", "#": "＃"})


def mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: one line, nothing Mermaid or HTML would interpret."""
    return " ".join(text.splitlines()).translate(_MERMAID_LOOKALIKES)


def render_mermaid(report: Report, **_: Any) -> str:
    drawing = build_drawing(report)
    ids = _node_ids(drawing)
    broken = _broken_sources(drawing)
    lines = ["flowchart LR"]
    for i, group in enumerate(drawing.groups):
        lines.append(f'  subgraph ns{i} ["{mermaid_text(group)}"]')
        lines += [f'    {ids[n.id]}["{mermaid_text(n.label)}"]' for n in drawing.nodes_in(group)]
        lines.append("  end")
    styles: dict[tuple[str, str], list[str]] = {}
    for k, link in enumerate(drawing.links):
        arrow = "-.->" if link.status == "external" and not link.broken else "-->"
        label = f'|"{mermaid_text(" ".join(_broken_label(link).splitlines()))}"|' if link.broken else ""
        lines.append(f"  {ids[link.source]} {arrow}{label} {ids[link.target]}")
        style = (_link_colour(link), "2.5px" if link.broken else "1.5px")
        styles.setdefault(style, []).append(str(k))
    lines += [f"  linkStyle {','.join(ks)} stroke:{c},stroke-width:{w}" for (c, w), ks in styles.items()]
    if broken:
        lines.append(f"  classDef broken fill:#ffebe9,stroke:{RED},stroke-width:2px")
        lines.append(f"  class {','.join(ids[n] for n in sorted(broken, key=lambda n: int(ids[n][1:])))} broken")
    return "\n".join(lines) + "\n"
