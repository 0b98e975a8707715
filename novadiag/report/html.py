"""The report as one self-contained HTML page, and the compact HTML notebooks show.

The page is for the person who opens it from a CI artifact or an e-mail:
summary cards and the verdict at the top, then the broken edges with the value
to write, the dependency graph (the SVG of :mod:`novadiag.report.svg`, inline),
the namespace matrix coloured by status, and every edge in a table that sorts
and filters in the page. It follows the reader's light or dark preference.

Everything that came from the cluster goes through :func:`esc` exactly once,
where it is put into markup; nothing else builds markup from data. The
Content-Security-Policy allows no fetch at all and only the page's own script
(by hash), as a second line of defence.

The notebook views (:func:`report_repr_html`, :func:`edge_repr_html`,
:func:`compact_table_html` for other objects such as a plan) are small, use
only inherited text colours, translucent fills and white-on-colour badges,
so they read the same in a light and a dark Jupyter theme.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Sequence
from typing import Any

from novadiag.model import BROKEN_STATUSES, DISPLAY_ORDER, Edge
from novadiag.report.core import AUDIT_SCHEMA, Report
from novadiag.report.drawing import Drawing, broken_part, build_drawing, namespace_drawing
from novadiag.report.html_template import CSS, PAGE, SCRIPT
from novadiag.report.svg import draw_svg
from novadiag.report.tablerows import summary_line
from novadiag.report.views import (
    PSEUDO_NAMESPACES,
    host_port,
    matrix_namespaces,
    namespace_counts,
    sorted_edges,
    target_label,
    target_namespace,
)
from novadiag.snapshot import paused_gc

REPR_BROKEN_LIMIT = 10
MAX_DRAWN_NODES = 300
"""Components (or namespaces) the page's graph draws; past that it collapses (see :func:`drawable`)."""
MAX_MATRIX_NAMESPACES = 60
MAX_TABLE_ROWS = 5_000
"""Rows of the edge table (and items of the fix list): the page of a large cluster must still open."""


def esc(value: object) -> str:
    """Text (or a number) as HTML text or a quoted attribute value."""
    return html.escape(str(value), quote=True)


def content_security_policy(script: str = SCRIPT) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def badge(status: str) -> str:
    return f'<span class="badge s-{esc(status)}">{esc(status)}</span>'


def render_html(report: Report, **_: Any) -> str:
    """The page, built with the cyclic garbage collector paused.

    The page is built from hundreds of thousands of small acyclic objects on
    top of the audit's heap; with the collector running, its rescans of that
    heap took more than half the page's time at size L (docs/performance.md).
    """
    with paused_gc():
        return _render_html(report)


def _render_html(report: Report) -> str:
    s = report.summary()
    verdict = f"{s['broken']} broken edge{'s' if s['broken'] != 1 else ''}" if s["broken"] else _clean(report)
    body = "\n".join(
        [
            _header(report, verdict),
            _cards(s),
            _status_bar(s["by_status"], s["edges"]),
            _fixes(report),
            _graph(report),
            _matrix(report),
            _edge_table(report),
            _notes(report),
        ]
    )
    return PAGE.substitute(
        csp=content_security_policy(),
        schema=AUDIT_SCHEMA,
        title=esc(f"novadiag audit: {verdict}"),
        css=CSS,
        body=body,
        script=SCRIPT,
    )


def _clean(report: Report) -> str:
    """The verdict of an audit with no broken edge: OK only when it could read what its verdicts need."""
    return "OK" if report.complete else "INCOMPLETE"


def _header(report: Report, verdict: str) -> str:
    source = report.source
    parts = [f"source: {source.kind}"]
    if source.context:
        parts.append(f"context: {source.context}")
    parts.append(f"cluster domain: {source.cluster_domain}")
    cls = "bad" if report.broken else ("good" if report.complete else "warn")
    return (
        '<header class="top"><div><h1>novadiag audit</h1>'
        f'<div class="sub">{esc(" · ".join(parts))}</div></div>'
        f'<span class="verdict {cls}" id="nd-verdict">{esc(verdict)}</span></header>'
        f'<p class="sub">{esc(summary_line(report))}</p>'
    )


def _cards(s: dict[str, Any]) -> str:
    cards = [
        ("edges", s["edges"], ""),
        ("broken", s["broken"], "bad" if s["broken"] else "good"),
        ("cross-namespace", s["cross_namespace"], ""),
        ("namespaces", s["namespaces"], ""),
        ("workloads", s["workloads"], ""),
        ("services", s["services"], ""),
    ]
    if s["unverified"]:  # only an incomplete audit has this card: it is what keeps the verdict from OK
        cards.insert(2, ("unverified", s["unverified"], "warn"))
    items = "".join(
        f'<div class="card {cls}"><div class="n">{esc(n)}</div><div class="l">{esc(label)}</div></div>'
        for label, n, cls in cards
    )
    return f'<section class="cards" id="summary">{items}</section>'


def _status_bar(by_status: dict[str, int], total: int) -> str:
    if not total:
        return ""
    rank: dict[str, int] = {str(k): v for k, v in DISPLAY_ORDER.items()}
    ordered = sorted(by_status.items(), key=lambda kv: rank.get(kv[0], len(rank)))
    spans = "".join(f'<span class="s-{esc(s)}" style="flex:{n}" title="{esc(f"{n} {s}")}"></span>' for s, n in ordered)
    legend = "".join(f'<span><i class="s-{esc(s)}"></i>{esc(n)} {esc(s)}</span>' for s, n in ordered)
    return f'<div class="bar" role="img" aria-label="edges by status">{spans}</div><div class="legend">{legend}</div>'


def _source_text(edge: Edge) -> str:
    ref = edge.reference
    text = ref.workload.name if ref.workload.kind == "Deployment" else f"{ref.workload.name} ({ref.workload.kind})"
    return text if ref.container in ("", ref.workload.name) else f"{text} [{ref.container}]"


def _fixes(report: Report) -> str:
    broken = sorted_edges(report.broken)
    if not broken and report.unverified:
        unverified = len(report.unverified)
        return (
            f'<h2 id="fix">Fix first</h2><p>Nothing it could judge is broken; {unverified} could not be verified.</p>'
        )
    if not broken:
        return '<h2 id="fix">Fix first</h2><p>Nothing is broken: every in-cluster reference resolves.</p>'
    items = []
    for e in broken[:MAX_TABLE_ROWS]:
        fix = f" → write <code>{esc(e.fix)}</code>" if e.fix else ""
        items.append(
            f'<li>{badge(e.status)} <span class="what">{esc(e.reference.namespace)}/{esc(_source_text(e))}</span> '
            f"<code>{esc(e.reference.slot)}</code> = <code>{esc(e.reference.reference)}</code>{fix}"
            f'<div class="why">{esc(e.detail)}</div></li>'
        )
    more = len(broken) - len(items)
    rest = muted(f"{more} more broken edges are in --format csv, json or jsonl.") if more else ""
    return f'<h2 id="fix">Fix first ({len(broken)})</h2><ol class="fixes">{"".join(items)}</ol>{rest}'


def _graph(report: Report) -> str:
    drawing, cut = drawable(build_drawing(report))
    svg = draw_svg(drawing)
    hint = "Callers on the left, what they call on the right. Click a component to list its edges below."
    return (
        f'<h2 id="graph">Dependency graph</h2>{muted(cut) if cut else ""}'
        f'<div class="graph-wrap" id="nd-graph">{svg}</div><p class="hint">{esc(hint)}</p>'
    )


def drawable(drawing: Drawing) -> tuple[Drawing, str]:
    """The drawing cut to what a browser lays out and shows, and a sentence saying what was cut ("" if nothing).

    Past :data:`MAX_DRAWN_NODES` components the graph collapses to namespaces;
    past as many namespaces it keeps the namespaces joined by broken edges.
    Laying out the components of the benchmark's size S (7,345 edges) took
    5.7 s and 1.5 MB of SVG; at size L the page did not finish.
    """
    if len(drawing.nodes) <= MAX_DRAWN_NODES:
        return drawing, ""
    components = len(drawing.nodes)
    drawing = namespace_drawing(drawing)
    if len(drawing.nodes) <= MAX_DRAWN_NODES:
        return drawing, f"{components} components: drawn as their {len(drawing.nodes)} namespaces."
    namespaces = len(drawing.nodes)
    drawing = broken_part(drawing, max_nodes=MAX_DRAWN_NODES)
    return drawing, (
        f"{components} components in {namespaces} namespaces: drawn are the {len(drawing.nodes)} namespaces "
        "joined by the most broken edges; the matrix and the table below hold the rest."
    )


def _matrix(report: Report) -> str:
    counts = namespace_counts(report.edges)
    if not counts:
        return ""
    names = matrix_namespaces(counts)
    if len(names) > MAX_MATRIX_NAMESPACES:
        note = f"{len(names)} namespaces: too many for a matrix; the table below lists the edges by namespace."
        return f'<h2 id="matrix">Namespace matrix</h2><p class="hint">{esc(note)}</p>'
    sources = [n for n in names if n not in PSEUDO_NAMESPACES and any(src == n for src, _ in counts)]
    head = "".join(f'<th scope="col">{esc(n)}</th>' for n in names)
    rows = []
    for src in sources:
        cells = "".join(_matrix_cell(src, dst, counts.get((src, dst))) for dst in names)
        rows.append(f'<tr><th scope="row" class="row" data-ns="{esc(src)}">{esc(src)}</th>{cells}</tr>')
    intro = (
        "Rows: the namespace of the calling workload; columns: the namespace of the Service it means. "
        "Red cells hold broken edges; dashed cells are calls inside one namespace. Click a namespace to list its edges."
    )
    return (
        f'<h2 id="matrix">Namespace matrix</h2><p class="hint">{esc(intro)}</p><div class="scroll">'
        f'<table class="matrix" id="nd-matrix"><thead><tr><th>from ↓ to →</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _matrix_cell(src: str, dst: str, by_status: Any) -> str:
    if not by_status:
        return "<td></td>"
    self_cls = " self" if src == dst else ""
    total = sum(by_status.values())
    broken = sum(n for s, n in by_status.items() if s in BROKEN_STATUSES)
    if broken:
        cls = "m-broken"
    elif set(by_status) == {"external"}:
        cls = "m-external"
    else:
        cls = "m-ok"
    detail = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items(), key=lambda kv: DISPLAY_ORDER[kv[0]]))
    small = f"<small>{broken} broken</small>" if broken else ""
    return f'<td class="{cls}{self_cls}" title="{esc(f"{src} → {dst}: {detail}")}">{total}{small}</td>'


# The fix sits next to the host it replaces; target and cross-ns come last, where a narrow window cuts.
_EDGE_COLUMNS = ("status", "source", "slot", "host · as written", "fix / detail", "target", "cross-ns")


def _edge_table(report: Report) -> str:
    head = "".join(f'<th scope="col"><button type="button">{esc(c)}</button></th>' for c in _EDGE_COLUMNS)
    listed = sorted_edges(report.edges)[:MAX_TABLE_ROWS]
    rows = "".join(_edge_row(e) for e in listed)
    left = len(report.edges) - len(listed)
    cut = muted(f"The first {len(listed)} edges, broken first; {left} more are in --format json, csv or jsonl.")
    return (
        f'<h2 id="edges">{"All edges" if not left else f"Edges ({len(listed)} of {len(report.edges)})"}</h2>'
        + (cut if left else "")
        + _controls(report)
        + f'<div class="scroll"><table class="edges" id="nd-edges"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _controls(report: Report) -> str:
    statuses = sorted({e.status for e in report.edges}, key=DISPLAY_ORDER.__getitem__)
    status_opts = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in statuses)
    namespaces = sorted({e.reference.namespace for e in report.edges})
    ns_opts = "".join(f'<option value="{esc(n)}">{esc(n)}</option>' for n in namespaces)
    return (
        '<div class="controls">'
        '<input type="search" id="nd-q" placeholder="filter: name, env var, host…" aria-label="filter edges">'
        f'<select id="nd-status" aria-label="status"><option value="">every status</option>{status_opts}</select>'
        f'<select id="nd-ns" aria-label="source namespace"><option value="">every namespace</option>{ns_opts}</select>'
        '<label><input type="checkbox" id="nd-broken"> only broken</label>'
        '<label><input type="checkbox" id="nd-cross"> only cross-namespace</label>'
        f'<span id="nd-shown">{len(report.edges)} edges</span></div>'
    )


def _edge_row(e: Edge) -> str:
    ref = e.reference
    note = f'<div class="fix">→ <code>{esc(e.fix)}</code></div>' if e.fix else ""
    shown = _table_note(e)
    note += f'<div class="muted">{esc(shown)}</div>' if shown else ""
    if e.probe is not None:
        p = e.probe
        probe = f"probe: dns {p.dns}, connect {p.connect}, health {p.health}" + (f" ({p.error})" if p.error else "")
        note += f'<div class="muted">{esc(probe)}</div>'
    attrs = (
        f'data-status="{esc(e.status)}" data-ns="{esc(ref.namespace)}" data-dst="{esc(target_namespace(e))}" '
        f'data-broken="{int(e.broken)}" data-cross="{int(e.cross_namespace)}"'
    )
    cls = ' class="broken"' if e.broken else ""
    cells = [
        f'<td data-sort="{DISPLAY_ORDER[e.status]}">{badge(e.status)}</td>',
        f'<td class="src nw"><span class="ns">{esc(ref.namespace)}/</span><wbr>{esc(_source_text(e))}</td>',
        f'<td class="mono">{esc(ref.slot)}</td>',
        f'<td class="ref">{_host_cell(e)}</td>',
        f'<td class="note" title="{esc(e.detail)}">{note}</td>',
        f"<td>{_wrap_after_slash(target_label(e))}</td>",
        f"<td>{'yes' if e.cross_namespace else ''}</td>",
    ]
    return f"<tr{cls} {attrs}>{''.join(cells)}</tr>"


def _host_cell(edge: Edge) -> str:
    """The host this row is about, then the value as written when it says more (URLs, lists, DSNs)."""
    host = host_port(edge)
    written = edge.reference.reference
    tail = f'<div class="written">{esc(written)}</div>' if written not in (host, edge.reference.host) else ""
    return f"<code>{esc(host)}</code>{tail}"


def _table_note(edge: Edge) -> str:
    """Broken: why. Working: only what is surprising (a C-library caveat); the rest is in the tooltip."""
    if edge.broken or edge.status == "unverified":
        return edge.detail
    if edge.status == "external":
        return "outside the cluster: not checked"
    start = edge.detail.find(" (glibc")
    return edge.detail[start + 2 : -1] if start >= 0 else ""


def _wrap_after_slash(text: str) -> str:
    """``namespace/name`` that may break after the slash, never inside a hyphenated name."""
    return "/<wbr>".join(f'<span class="nw">{esc(part)}</span>' for part in text.split("/"))


def _notes(report: Report) -> str:
    items = [f"<li><b>{esc(f.severity)}</b> <code>{esc(f.code)}</code>: {esc(f.message)}</li>" for f in report.findings]
    for g in report.gaps:
        items.append(f"<li><b>gap</b>: {esc(g.summary())}</li>")
    if not items:
        return ""
    return f'<h2 id="findings">Findings and gaps</h2><ul class="notes">{"".join(items)}</ul>'


# --- notebook views ----------------------------------------------------------------------------

_REPR_CSS = (
    "<style>"
    ".nd-r{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;line-height:1.45;"
    "color:inherit;max-width:1100px}"
    ".nd-r .nd-head{margin:2px 0 6px}"
    ".nd-r .nd-badge{display:inline-block;padding:0 7px;border-radius:999px;color:#fff;font-size:11.5px;"
    "font-weight:600;white-space:nowrap}"
    ".nd-r .s-ok{background:#1a7f37}.nd-r .s-external{background:#6e7781}.nd-r .s-no-endpoints{background:#9a6700}"
    ".nd-r .s-blocked{background:#8250df}.nd-r .s-unverified{background:#0969da}"
    ".nd-r .s-broken,.nd-r .s-dns-unresolvable,.nd-r .s-unknown-target,"
    ".nd-r .s-port-mismatch{background:#cf222e}"
    ".nd-r table{border-collapse:collapse;margin:4px 0;color:inherit;background:transparent;font-size:13px}"
    ".nd-r th,.nd-r td{padding:3px 8px;text-align:left;vertical-align:top;"
    "border-bottom:1px solid rgba(127,127,127,.3);background:transparent;color:inherit}"
    ".nd-r th{font-weight:600;opacity:.8}"
    ".nd-r code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;"
    "background:rgba(127,127,127,.16);padding:0 4px;border-radius:3px;color:inherit}"
    ".nd-r .nd-muted{opacity:.72}"
    "</style>"
)


def muted(text: str) -> str:
    return f'<span class="nd-muted">{esc(text)}</span>'


def _repr_badge(status: str) -> str:
    return f'<span class="nd-badge s-{esc(status)}">{esc(status)}</span>'


def compact_table_html(
    title: str,
    headers: Sequence[str] | None,
    rows: Iterable[Sequence[str]],
    *,
    status: str | None = None,
    note: str = "",
) -> str:
    """A small notebook table in the report's style; ``rows`` hold ready markup (escape with :func:`esc`).

    Meant for the other values a notebook shows (a migration plan, a criteria
    result): one look, one ``_repr_html_`` line.
    """
    head = (_repr_badge(status) + " " if status else "") + f"<b>{esc(title)}</b>"
    thead = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    table = f"<table>{thead}<tbody>{body}</tbody></table>" if body else ""
    tail = f'<div class="nd-muted">{esc(note)}</div>' if note else ""
    return f'<div class="nd-r">{_REPR_CSS}<div class="nd-head">{head}</div>{table}{tail}</div>'


def report_repr_html(report: Report) -> str:
    """The notebook view of a Report: the verdict, the counts, the broken edges with their fix."""
    s = report.summary()
    title = f"{s['broken']} of {s['edges']} edges broken" if s["broken"] else f"OK: {s['edges']} edges, none broken"
    counts = " · ".join(f"{n} {status}" for status, n in s["by_status"].items())
    note = (
        f"{counts} · {s['cross_namespace']} cross-namespace · {s['namespaces']} namespaces, "
        f"{s['workloads']} workloads, {s['services']} services"
    )
    broken = sorted_edges(report.broken)
    rows = [
        [
            _repr_badge(e.status),
            esc(f"{e.reference.namespace}/{_source_text(e)}"),
            f"<code>{esc(e.reference.slot)}</code>",
            f"<code>{esc(host_port(e))}</code>",
            f"<code>{esc(e.fix)}</code>" if e.fix else '<span class="nd-muted">-</span>',
        ]
        for e in broken[:REPR_BROKEN_LIMIT]
    ]
    more = f"… and {len(broken) - REPR_BROKEN_LIMIT} more broken. " if len(broken) > REPR_BROKEN_LIMIT else ""
    hint = more + "report.to_frame() for every edge, report.draw() for the graph, report.render('html') for the page."
    return compact_table_html(
        f"novadiag audit: {title}",
        ["status", "source", "slot", "host", "fix"],
        rows,
        status="broken" if s["broken"] else "ok",
        note=f"{note}. {hint}",
    )


def edge_repr_html(edge: Edge) -> str:
    """The notebook view of one Edge: verdict, where it goes, why, and the fix."""
    ref = edge.reference
    rows = [
        ["source", esc(f"{ref.namespace}/{_source_text(edge)}")],
        ["slot", f"<code>{esc(ref.slot)}</code>" + muted(f" ({ref.origin})")],
        ["reference", f"<code>{esc(ref.reference)}</code>"],
        ["target", esc(target_label(edge)) + (muted(" (cross-namespace)") if edge.cross_namespace else "")],
        ["why", esc(edge.detail)],
    ]
    if edge.fix:
        rows.append(["fix", f"<code>{esc(edge.fix)}</code>"])
    if edge.probe is not None:
        p = edge.probe
        seen = f"dns {p.dns}, connect {p.connect}, health {p.health}" + (f": {p.error}" if p.error else "")
        rows.append(["probe", esc(seen)])
    return compact_table_html(f"{ref.slot} → {host_port(edge)}", None, rows, status=edge.status)
