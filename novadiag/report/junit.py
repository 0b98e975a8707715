"""The report as JUnit XML: one test case per edge, so CI systems list broken edges as failed tests.

Jenkins, GitLab, GitHub test-report actions, Azure DevOps and CircleCI all read
the Ant/Surefire dialect: ``<testsuites>`` holding one ``<testsuite>`` per
group with ``tests``/``failures``/``errors``/``skipped`` counts, and
``<testcase classname name>`` elements whose ``<failure message type>`` they
show. Here a suite is a source namespace; ``classname`` is
``namespace.workload`` (the dot is how Jenkins splits package and class); the
test name is ``ENV -> host:port``. A broken edge is a failure whose message
carries the status, the reason and the fix; an external host and an
``unverified`` edge are skipped (nothing was, or could be, checked); gaps,
the parts of the cluster that could not be read, become skipped cases of a
``novadiag`` suite, so an incomplete audit is visible without turning the
build red. Times are 0 and there is no timestamp or host name, so the output
is the same on every run.

Cluster content may hold characters XML 1.0 cannot carry at all (control
characters); they are replaced, never passed through into a file a CI parser
would reject.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from novadiag.model import Edge, Gap, Reference
from novadiag.report.core import AUDIT_SCHEMA, Report
from novadiag.report.views import host_port, sorted_edges, target_label

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Text with the characters XML 1.0 forbids replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _element(tag: str, **attrs: Any) -> ET.Element:
    return ET.Element(tag, {k: xml_text(str(v)) for k, v in attrs.items()})


def render_junit(report: Report, **_: Any) -> str:
    by_ns: dict[str, list[Edge]] = defaultdict(list)
    for edge in sorted_edges(report.edges):
        by_ns[edge.reference.namespace].append(edge)
    root = _element("testsuites", name="novadiag audit", tests=0, failures=0, errors=0, time="0")
    order = sorted(by_ns, key=lambda ns: (-sum(e.broken for e in by_ns[ns]), ns))
    for ns in order:
        root.append(_suite(report, ns, by_ns[ns]))
    if report.gaps or _notes(report):
        root.append(_audit_suite(report))
    for attr in ("tests", "failures", "errors"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in root)))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(report: Report, namespace: str, edges: list[Edge]) -> ET.Element:
    suite = _element(
        "testsuite",
        name=namespace,
        tests=len(edges),
        failures=sum(e.broken for e in edges),
        errors=0,
        skipped=sum(e.status in ("external", "unverified") for e in edges),
        time="0",
    )
    suite.append(_properties(report))
    for edge in edges:
        suite.append(_testcase(edge))
    return suite


def _properties(report: Report) -> ET.Element:
    props = ET.Element("properties")
    values = [
        ("schema", AUDIT_SCHEMA),
        ("source", report.source.kind),
        ("cluster_domain", report.source.cluster_domain),
        ("complete", "true" if report.complete else "false"),
    ]
    if report.source.context:
        values.append(("context", report.source.context))
    for name, value in values:
        props.append(_element("property", name=name, value=value))
    return props


def testcase_name(edge: Edge) -> str:
    ref = edge.reference
    container = "" if ref.container in ("", ref.workload.name) else f"[{ref.container}] "
    return f"{container}{ref.slot} -> {host_port(edge)}"


def _testcase(edge: Edge) -> ET.Element:
    ref = edge.reference
    case = _element("testcase", classname=f"{ref.namespace}.{ref.workload.name}", name=testcase_name(edge), time="0")
    if edge.broken:
        message = f"{edge.status}" + (f" (fix: {edge.fix})" if edge.fix else "") + f": {edge.detail}"
        failure = _element("failure", message=message, type=edge.status)
        failure.text = xml_text(_failure_body(edge))
        case.append(failure)
    elif edge.status == "external":
        case.append(_element("skipped", message=f"external host {ref.host}: outside the cluster, not checked"))
    elif edge.status == "unverified":
        case.append(_element("skipped", message=f"unverified: {edge.detail}"))
    return case


def _where(ref: Reference) -> str:
    """``env:  DB_URL (value)``, or ``where:  init-script line 2`` for a host named outside the env."""
    if ref.env is not None:
        return f"env:       {ref.env} ({ref.origin})"
    return f"where:     {' '.join(filter(None, (ref.origin, ref.location)))}"


def _failure_body(edge: Edge) -> str:
    ref = edge.reference
    lines = [
        f"edge:      {edge.id}",
        f"source:    {ref.workload} (container {ref.container})",
        _where(ref),
        f"reference: {ref.reference}",
        f"target:    {target_label(edge)}",
        f"status:    {edge.status}",
        f"why:       {edge.detail}",
    ]
    if edge.fix:
        lines.append(f"fix:       {edge.fix}")
    if edge.probe is not None:
        p = edge.probe
        lines.append(
            f"probe:     dns {p.dns}, connect {p.connect}, health {p.health}" + (f": {p.error}" if p.error else "")
        )
    return "\n".join(lines)


def _notes(report: Report) -> list[str]:
    return [f"{f.severity}: {f.code}: {f.message}" for f in report.findings if f.severity != "info"]


def _audit_suite(report: Report) -> ET.Element:
    """Gaps as skipped cases, findings as the suite's output: what the audit could not judge."""
    suite = _element(
        "testsuite", name="novadiag", tests=len(report.gaps), failures=0, errors=0, skipped=len(report.gaps), time="0"
    )
    suite.append(_properties(report))
    for gap in report.gaps:
        suite.append(_gap_case(gap))
    notes = _notes(report)
    if notes:
        out = ET.SubElement(suite, "system-out")
        out.text = xml_text("\n".join(notes))
    return suite


def _gap_case(gap: Gap) -> ET.Element:
    where = gap.namespace or "cluster"
    case = _element("testcase", classname=f"novadiag.gaps.{where}", name=f"{gap.verb} {gap.kind}", time="0")
    case.append(_element("skipped", message=gap.summary()))
    return case
