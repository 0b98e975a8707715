"""The static parts of the HTML report: page skeleton, stylesheet and script.

Kept apart from :mod:`novadiag.report.html` so the code that escapes cluster
content is not buried in CSS. Plain :class:`string.Template` placeholders
(``$name``); no template engine, nothing fetched: the page must open from an
e-mail attachment on a machine without network, and its Content-Security-Policy
forbids every fetch. The script only filters, sorts and reorders rows the
server already rendered (it never builds markup from strings), so the report
reads the same with JavaScript off; the policy allows exactly this script by
its hash, so a value that slipped through escaping still could not run.
"""

from __future__ import annotations

from string import Template

CSS = """
:root{color-scheme:light dark;--bg:#ffffff;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--panel:#f6f8fa;
--accent:#0969da;--red:#cf222e;--red-bg:#ffebe9;--green:#1a7f37;--green-bg:#dafbe1;--amber:#9a6700;
--amber-bg:#fff8c5;--purple:#8250df;--purple-bg:#fbefff;--grey-bg:#eaeef2;--code:#eff1f3;
--nd-svg-bg:#ffffff;--nd-ns-fill:#f6f8fa;--nd-ns-stroke:#afb8c1;--nd-fg:#1f2328;--nd-muted:#656d76;
--nd-node-fill:#ffffff;--nd-node-stroke:#8c959f;--nd-node-broken:#ffebe9}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;
--panel:#161b22;--accent:#4493f8;--red:#ff7b72;--red-bg:#3c1618;--green:#3fb950;--green-bg:#12261e;
--amber:#d29922;--amber-bg:#2e2310;--purple:#bc8cff;--purple-bg:#271c3a;--grey-bg:#21262d;--code:#1f242c;
--nd-svg-bg:#0d1117;--nd-ns-fill:#161b22;--nd-ns-stroke:#3d444d;--nd-fg:#e6edf3;--nd-muted:#8d96a0;
--nd-node-fill:#0d1117;--nd-node-stroke:#6e7681;--nd-node-broken:#3c1618}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1320px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:22px;margin:0}
h2{font-size:17px;margin:32px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
code{background:var(--code);padding:1px 5px;border-radius:4px;overflow-wrap:anywhere}
.muted{color:var(--muted)}
header.top{display:flex;align-items:center;justify-content:space-between;gap:16px;flex-wrap:wrap}
.sub{color:var(--muted);font-size:13px;margin-top:2px}
.verdict{font-weight:700;font-size:15px;padding:6px 14px;border-radius:999px;color:#fff;white-space:nowrap}
.verdict.bad{background:#cf222e}.verdict.good{background:#1a7f37}.verdict.warn{background:#9a6700}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin-top:20px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:var(--panel)}
.card .n{font-size:28px;font-weight:700;line-height:1.1}
.card .l{color:var(--muted);font-size:12.5px}
.card.bad{border-color:var(--red);background:var(--red-bg)}.card.bad .n{color:var(--red)}
.card.warn{border-color:#9a6700}.card.warn .n{color:#9a6700}
.card.good .n{color:var(--green)}
.bar{display:flex;height:10px;border-radius:5px;overflow:hidden;margin-top:16px;background:var(--grey-bg)}
.bar span{display:block;height:100%}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin-top:8px;font-size:12.5px;color:var(--muted)}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.s-ok{background:#2da44e}.s-external{background:#8c959f}
.s-dns-unresolvable,.s-unknown-target,.s-port-mismatch{background:#cf222e}
.s-no-endpoints{background:#bf8700}.s-blocked{background:#8250df}.s-unverified{background:#0969da}
.badge{display:inline-block;font-size:11.5px;font-weight:600;padding:1px 8px;border-radius:999px;color:#fff;
white-space:nowrap}
ol.fixes{padding-left:22px;margin:0}
ol.fixes li{margin:0 0 12px;padding:10px 12px;border:1px solid var(--line);border-left:4px solid var(--red);
border-radius:6px}
ol.fixes .what{font-weight:600}
ol.fixes .why{color:var(--muted);font-size:13px;margin-top:2px}
.graph-wrap{border:1px solid var(--line);border-radius:8px;overflow:auto;background:var(--nd-svg-bg)}
.graph-wrap svg{display:block;max-width:100%;height:auto}
.hint{font-size:12.5px;color:var(--muted);margin:6px 0 0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-size:12.5px;color:var(--muted);font-weight:600;background:var(--panel);position:sticky;top:0}
table.matrix{width:auto}
table.matrix td,table.matrix th{text-align:center;vertical-align:middle;min-width:64px;border:1px solid var(--line)}
table.matrix th.row{text-align:right;cursor:pointer;white-space:nowrap}
table.matrix th.row:hover{color:var(--accent)}
table.matrix td.m-ok{background:var(--green-bg);color:var(--green)}
table.matrix td.m-broken{background:var(--red-bg);color:var(--red);font-weight:700}
table.matrix td.m-external{background:var(--grey-bg);color:var(--muted)}
table.matrix td.m-warn{background:var(--amber-bg);color:var(--amber);font-weight:700}
table.matrix td.self{outline:2px dashed var(--line);outline-offset:-4px}
table.matrix td small{display:block;font-weight:400;font-size:11px}
.controls{display:flex;flex-wrap:wrap;gap:10px 16px;align-items:center;margin-bottom:10px}
.controls input[type=search]{min-width:260px;padding:6px 10px;border:1px solid var(--line);border-radius:6px;
background:var(--bg);color:var(--fg);font:inherit}
.controls select{padding:5px 8px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg);
font:inherit}
.controls label{font-size:13px;user-select:none}
#nd-shown{margin-left:auto;color:var(--muted);font-size:13px}
table.edges th{white-space:nowrap}
table.edges th button{all:unset;cursor:pointer}
.nw{white-space:nowrap}
table.edges th button::after{content:" \\2195";opacity:.35}
table.edges th[aria-sort=ascending] button::after{content:" \\2191";opacity:1}
table.edges th[aria-sort=descending] button::after{content:" \\2193";opacity:1}
table.edges tr.broken td{background:var(--red-bg)}
table.edges td.note{min-width:300px;font-size:13px}
table.edges td.ref{min-width:220px;max-width:340px}
table.edges td.src .ns{color:var(--muted)}
@media (max-width:1100px){table.edges td.note{min-width:220px}table.edges td.ref{min-width:160px}
main{padding:16px}}
table.edges td.ref .written{color:var(--muted);font-size:12px;margin-top:3px;overflow-wrap:anywhere;
font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table.edges td.note .fix{font-weight:600}
ul.notes{padding-left:20px}
footer{margin-top:40px;color:var(--muted);font-size:12px}
"""

SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("nd-edges");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var search = document.getElementById("nd-q");
  var status = document.getElementById("nd-status");
  var ns = document.getElementById("nd-ns");
  var broken = document.getElementById("nd-broken");
  var cross = document.getElementById("nd-cross");
  var shown = document.getElementById("nd-shown");
  function apply() {
    var text = search.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var d = row.dataset;
      var visible = (!text || row.textContent.toLowerCase().indexOf(text) >= 0) &&
        (!status.value || d.status === status.value) && (!ns.value || d.ns === ns.value) &&
        (!broken.checked || d.broken === "1") && (!cross.checked || d.cross === "1");
      row.hidden = !visible;
      if (visible) { count += 1; }
    });
    shown.textContent = "showing " + count + " of " + rows.length + " edges";
  }
  function key(row, index) {
    var cell = row.cells[index];
    return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim().toLowerCase();
  }
  function sortBy(th) {
    var index = th.cellIndex;
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.sort(function (a, b) {
      var x = key(a, index), y = key(b, index);
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    var button = th.querySelector("button");
    if (button) { button.addEventListener("click", function () { sortBy(th); }); }
  });
  [search, status, ns, broken, cross].forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  function focusEdges(text, namespace) {
    search.value = text;
    ns.value = namespace;
    apply();
    document.getElementById("edges").scrollIntoView({behavior: "smooth"});
  }
  document.querySelectorAll(".nd-node").forEach(function (node) {
    node.addEventListener("click", function () { focusEdges(node.getAttribute("data-filter"), ""); });
  });
  document.querySelectorAll("table.matrix th.row").forEach(function (th) {
    th.addEventListener("click", function () { focusEdges("", th.getAttribute("data-ns")); });
  });
  apply();
}());
"""

PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta name="generator" content="novadiag ($schema)">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main>
$body
<footer>novadiag report, schema $schema. Self-contained: this page loads nothing from the network.
The same data as JSON: <code>novadiag audit --format json</code>.</footer>
</main>
<script>$script</script>
</body>
</html>
"""
)
