"""The ``novadiag policies`` view: policies per namespace, what they select, the edges they decide."""

from __future__ import annotations

import copy
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import novadiag
from novadiag.cli import main
from novadiag.model import ObjectRef, SourceInfo
from novadiag.netpol.view import policy_view, render_policies
from novadiag.snapshot import build_snapshot

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"


def nova_objects():
    return [d for p in sorted(NOVA.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def view_of(objects):
    from novadiag.pipeline import audit_snapshot

    report = audit_snapshot(build_snapshot(objects, SourceInfo("manifests")))
    return report, policy_view(report)


@pytest.fixture(scope="module")
def nova():
    return view_of(nova_objects())


def labels(view, ids):
    return sorted(view.edges[i] for i in ids)


def test_a_policy_lists_what_it_selects_and_the_edges_it_admits(nova):
    _, view = nova
    redis = view.policy("nova-media", "redis")
    assert redis.selects == (ObjectRef("Deployment", "nova-media", "redis"),)
    assert labels(view, redis.allows) == [
        "nova-backend/messaging-service → redis.nova-media:6379",
        "nova-feed/feed-service → redis.nova-media:6379",
        "nova-media/media-service → redis:6379",
    ]
    assert redis.denies == ()


def test_edges_that_do_not_resolve_yet_are_judged_against_the_service_they_mean(nova):
    _, view = nova
    assert "nova-backend/user-service → content-service:9081" in labels(
        view, view.policy("nova-content", "content-service").allows
    )


def test_dns_policies_count_the_workloads_whose_lookups_they_admit(nova):
    _, view = nova
    assert len(view.policy("nova-backend", "allow-dns").dns_for) == 6
    assert view.policy("nova-backend", "allow-dns").allows == ()


def test_a_denying_policy_lists_the_edges_it_stops():
    objects = [
        o
        for o in nova_objects()
        if o["metadata"] != {"name": "postgres", "namespace": "nova"} or o["kind"] != "NetworkPolicy"
    ]
    _, view = view_of(objects)
    assert labels(view, view.policy("nova", "default-deny").denies) == [
        "nova-auth/auth-service → postgres.nova:5432",
        "nova-backend/messaging-service → postgres.nova:5432",
    ]


def test_a_namespace_without_dns_egress_has_every_edge_denied_by_its_default_deny():
    objects = [o for o in nova_objects() if o["metadata"] != {"name": "allow-dns", "namespace": "nova-feed"}]
    _, view = view_of(objects)
    assert labels(view, view.policy("nova-feed", "default-deny").denies) == [
        "nova-feed/feed-service → content-service.nova-content:9081",
        "nova-feed/feed-service → redis.nova-media:6379",
    ]


def test_workloads_no_policy_selects_are_info_findings_of_the_view_only():
    objects = copy.deepcopy(nova_objects())
    objects = [
        o
        for o in objects
        if not (o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] in ("nova-auth", "nova-media"))
    ]
    objects.append(
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "redis-only", "namespace": "nova-media"},
            "spec": {"podSelector": {"matchLabels": {"app": "redis"}}},
        }
    )
    report, view = view_of(objects)
    messages = [f.message for f in view.findings if f.code == "no-network-policy"]
    assert all(f.severity == "info" for f in view.findings)
    assert any(m.startswith("namespace nova-auth has no NetworkPolicy") for m in messages)
    assert any(m.startswith("Deployment nova-media/media-service: no NetworkPolicy selects its pods") for m in messages)
    assert view.namespace("nova-media").unprotected == (ObjectRef("Deployment", "nova-media", "media-service"),)
    assert not [f for f in report.findings if f.code == "no-network-policy"]


def test_table_and_json_renderings(nova):
    _, view = nova
    table = render_policies(view, "table")
    assert "namespace nova-media — 4 NetworkPolicies" in table
    assert "nova-feed/feed-service → redis.nova-media:6379" in table
    doc = json.loads(render_policies(view, "json"))
    assert doc["schema"] == "novadiag.policies/v1"
    assert {ns["namespace"] for ns in doc["namespaces"]} >= {"nova-backend", "kafka"}


def test_cli_policies_prints_the_view_for_one_namespace(capsys):
    assert main(["policies", "--manifests", str(NOVA), "-n", "nova", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [ns["namespace"] for ns in doc["namespaces"]] == ["nova"]
    postgres = next(p for p in doc["namespaces"][0]["policies"] if p["name"] == "postgres")
    assert len(postgres["allows"]) == 2  # callers from nova-auth and nova-backend, though -n names only nova


BOX_DRAWING = {chr(c) for c in range(0x2500, 0x2580)}

PLAIN_NOVA = """\
namespace nova — 3 NetworkPolicies
policy        types           selects   allows                                               denies
allow-dns     Egress          postgres  DNS lookups of 1 workload(s)                         —
default-deny  Ingress,Egress  postgres  —                                                    —
postgres      Ingress         postgres  nova-auth/auth-service → postgres.nova:5432          —
                                        nova-backend/messaging-service → postgres.nova:5432

3 NetworkPolicies in 1 namespace(s); 0 workload(s) unselected
"""

PIPED_POLICIES = """
import sys
from novadiag.cli import main
code = main(sys.argv[1:])
print(sorted(m for m in sys.modules if m.split(".")[0] == "rich"), file=sys.stderr)
sys.exit(code)
"""


def piped_policies(*argv: str) -> subprocess.CompletedProcess[str]:
    """``novadiag ARGV`` with standard output a pipe; standard error ends with the rich modules it imported."""
    return subprocess.run(
        [sys.executable, "-c", PIPED_POLICIES, *argv], capture_output=True, text=True, timeout=120, check=False
    )


def test_policies_into_a_pipe_print_plain_aligned_text_without_importing_rich():
    run = piped_policies("policies", "--manifests", str(NOVA), "-n", "nova")
    assert run.returncode == 0, run.stderr
    assert run.stdout == PLAIN_NOVA
    assert not BOX_DRAWING & set(run.stdout)
    assert run.stderr.splitlines()[-1] == "[]"


def test_policies_generate_imports_no_rich():
    run = piped_policies("policies", "generate", "--manifests", str(NOVA), "-n", "nova")
    assert run.returncode == 0, run.stderr
    assert "kind: NetworkPolicy" in run.stdout
    assert run.stderr.splitlines()[-1] == "[]"


def test_policies_to_a_file_write_the_same_plain_table(tmp_path):
    out = tmp_path / "policies.txt"
    assert main(["policies", "--manifests", str(NOVA), "-n", "nova", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == PLAIN_NOVA


def test_policies_on_a_terminal_still_draw_rich_tables_with_the_same_rows():
    """A pseudo-terminal as standard output: rich's boxes, and each row of the plain table inside them."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm"}
    with subprocess.Popen(
        [sys.executable, "-m", "novadiag", "policies", "--manifests", str(NOVA), "-n", "nova"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        os.close(follower)
        shown = _read_all(leader)
        assert proc.wait(timeout=120) == 0
    assert "┏" in shown
    assert "\x1b[32mnova-auth/auth-service" in shown  # allowed edges in green
    shown = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    rows = [line.rstrip()[1:-1] for line in shown.splitlines() if line.startswith("│")]
    cells = [[cell.strip() for cell in row.split("│")] for row in rows]
    assert cells == [
        ["allow-dns", "Egress", "postgres", "DNS lookups of 1 workload(s)", "—"],
        ["default-deny", "Ingress,Egress", "postgres", "—", "—"],
        ["postgres", "Ingress", "postgres", "nova-auth/auth-service → postgres.nova:5432", "—"],
        ["", "", "", "nova-backend/messaging-service → postgres.nova:5432", ""],
    ]


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
