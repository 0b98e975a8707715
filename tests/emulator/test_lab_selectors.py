"""Label and field selectors of the lab API server, against Kubernetes' own semantics."""

from __future__ import annotations

import pytest

from novadiag.lab.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
    selector_from_match_labels,
)

LABELS = {"app": "web", "tier": "frontend", "version": "3"}


@pytest.mark.parametrize(("selector", "matches"), [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app!=web", False),
    ("app!=db", True),
    ("missing!=x", True),
    ("app in (web,db)", True),
    ("app in (db)", False),
    ("app notin (db, cache)", True),
    ("missing notin (x)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("version>2", True),
    ("version<3", False),
    ("missing>1", False),
    ("app=web,tier=frontend", True),
    ("app=web,tier=backend", False),
    ("app in (web), !canary, version", True),
    ("app=", False),
])
def test_label_selector_semantics(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


def test_empty_value_matches_an_empty_label() -> None:
    assert parse_label_selector("flag=").matches({"flag": ""})


def test_prefixed_keys() -> None:
    selector = parse_label_selector("app.kubernetes.io/name in (nova)")
    assert selector.matches({"app.kubernetes.io/name": "nova"})


@pytest.mark.parametrize("bad", ["app=web,", "in (x)", "app in ()", "app in x", "a b",
                                 "app>x", "app=(x)", "=x"])
def test_malformed_label_selectors_are_rejected(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_match_labels_and_expressions() -> None:
    selector = selector_from_match_labels({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend"]},
                             {"key": "canary", "operator": "DoesNotExist"}]})
    assert selector.matches(LABELS)
    assert not selector.matches({**LABELS, "canary": "1"})
    assert selector_from_match_labels({"app": "web"}).matches(LABELS)


POD = {"metadata": {"name": "p", "namespace": "ns"},
       "spec": {"nodeName": "lab-node", "hostNetwork": True},
       "status": {"phase": "Running"}}


@pytest.mark.parametrize(("selector", "matches"), [
    ("metadata.name=p", True),
    ("metadata.name==p", True),
    ("metadata.name!=p", False),
    ("metadata.namespace=ns,status.phase=Running", True),
    ("status.phase=Pending", False),
    ("spec.nodeName=lab-node", True),
    ("spec.hostNetwork=true", True),
    ("status.podIP=", True),
])
def test_pod_field_selectors(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector, "Pod").matches(POD) is matches


def test_field_selector_escapes() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b", "ConfigMap")
    assert selector.matches({"metadata": {"name": "a,b"}})


def test_unsupported_fields_are_rejected_like_the_api_server() -> None:
    with pytest.raises(SelectorError, match="field label not supported: status.phase"):
        parse_field_selector("status.phase=Running", "ConfigMap")
    with pytest.raises(SelectorError):
        parse_field_selector("metadata.name", "Pod")
    assert parse_field_selector("type=Opaque", "Secret").exact("type") == "Opaque"
