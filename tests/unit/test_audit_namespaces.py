"""``-n``: a namespace that does not exist is an error, not an audit of nothing that passes."""

from __future__ import annotations

from pathlib import Path

import pytest

import novadiag
from novadiag.cli import main
from novadiag.errors import ConfigError
from novadiag.model import Gap, SourceInfo
from novadiag.pipeline import audit, audit_snapshot
from novadiag.snapshot import build_snapshot

NOVA = str(Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests")


def test_a_misspelt_namespace_is_one_line_with_the_near_names(capsys):
    assert main(["audit", "--manifests", NOVA, "-n", "nova-gatway"]) == 2
    err = capsys.readouterr().err
    assert err == "novadiag: error: namespace nova-gatway: not found in the manifests; did you mean nova-gateway?\n"


def test_the_library_raises_for_a_namespace_nothing_resembles():
    with pytest.raises(ConfigError, match=r"^namespace zzz: not found in the manifests; it has 10 namespaces$"):
        audit(manifests=[NOVA], namespaces=["nova-gateway", "zzz"])


def test_an_existing_namespace_audits_only_its_edges():
    report = audit(manifests=[NOVA], namespaces=["nova-backend"])
    assert report.edges and {e.reference.namespace for e in report.edges} == {"nova-backend"}


def test_namespaces_that_could_not_be_listed_are_not_judged_missing():
    """With Namespaces forbidden (a namespace-scoped role), an empty namespace and a missing one look alike."""
    snapshot = build_snapshot([], SourceInfo("cluster"), gaps=[Gap("Namespace", None, "forbidden")])
    assert audit_snapshot(snapshot, namespaces=["team-a"]).edges == ()
