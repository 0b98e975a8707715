"""A plan never writes a value it has masked: not in patches, copies, rollbacks, the script, manifests or JSON.

The snapshot masks credentials (``***`` in a DSN, ``<redacted>`` for a value
whose name says secret), so every value a plan writes either comes from the
user's own text (the live object at apply time, or the manifest files) with
only its hosts replaced, or is refused. The lab test
``tests/lab/test_plan_credentials_lab.py`` applies the same cluster for real.
"""

from __future__ import annotations

import copy
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from plan_support import audit_objects, config_map, service, workload

import novadiag
from novadiag.errors import PlanError
from novadiag.model import ObjectRef
from novadiag.planning import apply_plan, render_plan, verify_plan, write_manifests
from novadiag.planning.operations import Operation
from novadiag.planning.paths import masked_paths
from novadiag.planning.simulate import apply_operation
from novadiag.planning.values import Plan
from novadiag.redaction import MASK, REDACTED

PASSWORD = "S3cr3t-Pw-9f2"
ORDERS_URL = f"postgres://app:{PASSWORD}@main-db:5432/app"
BILLING_DSN = f"Host=main-db;Port=5432;Database=app;Username=app;Password={PASSWORD}"
REPORTS_URL = f"postgresql://report:{PASSWORD}@main-db:5432/reports"
AUDIT_URL = f"postgres://audit:{PASSWORD}@main-db.data:5432/audit"


def _cron_job(ns: str, name: str, env: dict[str, str]) -> dict[str, Any]:
    deployment = workload(ns, name, env)
    template = deployment["spec"]["template"]
    template["spec"]["restartPolicy"] = "OnFailure"
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
    }


def _objects() -> list[dict[str, Any]]:
    return [
        service("data", "main-db", 5432),
        workload("data", "main-db"),
        workload("shop", "orders", {"DATABASE_URL": ORDERS_URL, "SESSION_TOKEN": "Opaque-Token-5e1c"}),
        workload("shop", "billing", {"ConnectionStrings__Main": BILLING_DSN}),
        config_map("shop", "reports-env", {"DB_URL": REPORTS_URL}),
        workload("shop", "reports", env_from=[{"configMapRef": {"name": "reports-env"}}]),
        _cron_job("shop", "nightly", {"DB_URL": ORDERS_URL}),
        workload("ops", "audit-log", {"AUDIT_DB": AUDIT_URL}),
    ]


@pytest.fixture(scope="module")
def report() -> novadiag.Report:
    return audit_objects(*_objects())


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("manifests") / "cluster.yaml"
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("data", "shop", "ops")]
    path.write_text(yaml.safe_dump_all([*namespaces, *_objects()]))
    return path


def _plans(report: novadiag.Report) -> list[Plan]:
    return [novadiag.plan(report, "rewrite"), novadiag.plan(report, "consolidate", into="prod", keep=["ops"])]


def _outputs(plan: Plan) -> str:
    return "\n".join([plan.to_json(), render_plan(plan, "markdown"), render_plan(plan, "script")])


def test_the_snapshot_really_masks_these_values(report: novadiag.Report) -> None:
    assert report.snapshot is not None
    orders = report.snapshot.get("Deployment", "shop", "orders")
    assert orders is not None
    env = {e["name"]: e["value"] for e in orders["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"DATABASE_URL": f"postgres://app:{MASK}@main-db:5432/app", "SESSION_TOKEN": REDACTED}


@pytest.mark.parametrize("source", ["cluster", "manifest files"])
def test_no_plan_output_holds_a_mask_or_a_password(
    report: novadiag.Report, manifests: Path, tmp_path: Path, source: str
) -> None:
    for plan in _plans(report if source == "cluster" else novadiag.audit(manifests=[manifests])):
        assert plan.verification is not None and plan.verification.ok, plan.verification.summary()
        text = _outputs(plan)
        assert MASK not in text and REDACTED not in text and PASSWORD not in text
        if source == "manifest files":  # the user's own values, byte for byte: the password is theirs to keep
            written = "".join(Path(f).read_text() for f in write_manifests(plan, tmp_path / plan.strategy))
            assert MASK not in written and REDACTED not in written


def test_a_masked_value_is_edited_live_with_only_its_host_and_an_exact_reverse(report: novadiag.Report) -> None:
    plan = novadiag.plan(report, "rewrite")
    edit = next(s for s in plan.steps if s.object == ObjectRef("Deployment", "shop", "orders"))
    assert edit.action == "edit" and edit.operation.patch is None
    assert [e.replacements for e in edit.operation.host_edits] == [(("main-db", "main-db.data"),)]
    rollback = edit.rollback[0]
    assert rollback.action == "edit"
    (printed,) = edit.to_dict()["rollback"]
    assert printed.startswith("# by hand: in the live Deployment shop/orders, replace hosts: ")
    assert "(main-db.data -> main-db)" in printed
    store = {("Deployment", "shop", "orders"): copy.deepcopy(dict(_objects()[2]))}
    apply_operation(store, edit.operation)
    env = store[("Deployment", "shop", "orders")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["value"] == ORDERS_URL.replace("@main-db:", "@main-db.data:")
    apply_operation(store, rollback)
    assert store[("Deployment", "shop", "orders")] == _objects()[2]


def test_consolidated_copies_take_their_masked_values_from_the_live_source(report: novadiag.Report) -> None:
    plan = novadiag.plan(report, "consolidate", into="prod", keep=["ops"])
    copies = {s.object: s.operation for s in plan.steps if s.action == "copy"}
    assert set(copies) == {
        ObjectRef("ConfigMap", "prod", "reports-env"),
        ObjectRef("CronJob", "prod", "nightly"),
        ObjectRef("Deployment", "prod", "billing"),
        ObjectRef("Deployment", "prod", "orders"),
    }
    orders = copies[ObjectRef("Deployment", "prod", "orders")]
    assert orders.source == ObjectRef("Deployment", "shop", "orders")
    shown = orders.to_dict()["manifest"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert shown == [{"name": "DATABASE_URL", "value": None}, {"name": "SESSION_TOKEN", "value": None}]
    kept = next(s for s in plan.steps if s.object == ObjectRef("Deployment", "ops", "audit-log"))
    assert kept.action == "edit" and kept.operation.host_edits[0].replacements == (("main-db.data", "main-db.prod"),)


def test_manifests_from_files_hold_the_users_values_byte_for_byte_but_the_host(manifests: Path, tmp_path: Path) -> None:
    plan = novadiag.plan(novadiag.audit(manifests=[manifests]), "consolidate", into="prod", keep=["ops"])
    files = {Path(f).name: Path(f) for f in write_manifests(plan, tmp_path / "out")}
    orders = yaml.safe_load(next(p for n, p in files.items() if n.endswith("deployment-prod-orders.yaml")).read_text())
    env = {e["name"]: e["value"] for e in orders["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"DATABASE_URL": ORDERS_URL, "SESSION_TOKEN": "Opaque-Token-5e1c"}
    reports = next(p for n, p in files.items() if n.endswith("configmap-prod-reports-env.yaml"))
    assert yaml.safe_load(reports.read_text())["data"] == {"DB_URL": REPORTS_URL}
    modes = {name: p.stat().st_mode & 0o777 for name, p in files.items()}
    assert {m for n, m in modes.items() if "prod-orders" in n or "reports-env" in n} == {0o600}


def test_manifests_of_a_plan_without_the_users_files_are_refused(report: novadiag.Report, tmp_path: Path) -> None:
    plan = novadiag.plan(report, "consolidate", into="prod", keep=["ops"])
    with pytest.raises(PlanError, match=r"refusing to write manifests: step s\d+ .*novadiag plan --apply"):
        write_manifests(plan, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _with_step_operation(plan: Plan, step_id: str, operation: Operation) -> Plan:
    steps = tuple(replace(s, operation=operation) if s.id == step_id else s for s in plan.steps)
    return replace(plan, steps=steps, verification=None)


def test_verification_fails_a_plan_that_changes_a_value_beyond_its_host() -> None:
    plain = audit_objects(
        service("data", "main-db", 5432), workload("data", "main-db"), workload("shop", "web", {"DB": "main-db:5432"})
    )
    plan = novadiag.plan(plain, "rewrite")
    step = next(s for s in plan.steps if s.action == "patch")
    assert plan.ok and step.operation.host_edits
    patch = copy.deepcopy(dict(step.operation.patch or {}))
    patch["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "main-db.data:6543"
    unverified = _with_step_operation(plan, step.id, replace(step.operation, patch=patch))
    doctored = replace(unverified, verification=verify_plan(unverified))
    assert doctored.verification is not None and not doctored.ok and doctored.verification.refused
    assert doctored.verification.value_problems == (
        f"step {step.id}: Deployment shop/web spec.template.spec.containers[name=web].env[name=DB].value: "
        "the new value differs from the original outside the host names",
    )
    with pytest.raises(PlanError, match="refusing to apply: step .* outside the host names"):
        apply_plan(doctored, yes=True)


def test_verification_fails_a_plan_that_would_write_a_mask(report: novadiag.Report) -> None:
    plan = novadiag.plan(report, "consolidate", into="prod", keep=["ops"])
    step = next(s for s in plan.steps if s.action == "copy" and s.object.name == "orders")
    as_create = replace(step.operation, action="create", host_edits=())
    unverified = _with_step_operation(plan, step.id, as_create)
    doctored = replace(unverified, verification=verify_plan(unverified))
    assert doctored.verification is not None and not doctored.ok
    assert doctored.verification.value_problems == (
        f"step {step.id}: Deployment prod/orders spec.template.spec.containers[name=orders].env[name=DATABASE_URL]"
        ".value: would write a masked value",
        f"step {step.id}: Deployment prod/orders spec.template.spec.containers[name=orders].env[name=SESSION_TOKEN]"
        ".value: would write a masked value",
    )
    with pytest.raises(PlanError, match="refusing to write a script: step .* would write a masked value"):
        render_plan(doctored, "script")


def test_the_runbook_of_a_copy_names_its_file_from_the_users_manifests(manifests: Path, tmp_path: Path) -> None:
    plan = novadiag.plan(novadiag.audit(manifests=[manifests]), "consolidate", into="prod", keep=["ops"])
    files = {Path(f).name for f in write_manifests(plan, tmp_path / "out")}
    step = next(s for s in plan.steps if s.action == "copy" and s.object.name == "orders")
    live, alternative = step.to_dict()["commands"]
    assert live.startswith("# novadiag plan --apply: create Deployment prod/orders with values read from the live")
    assert alternative.split()[-1] in files


def test_a_rollback_that_could_not_tell_the_hosts_apart_is_left_to_the_operator() -> None:
    """``main-db`` -> ``main-db.data`` in a value naming ``main-db.data`` already: the reverse would change both."""
    both = f"postgresql://app:{PASSWORD}@main-db:5432,main-db.data:5432/app"
    report = audit_objects(
        service("data", "main-db", 5432), workload("data", "main-db"), workload("shop", "x", {"DB": both})
    )
    step = next(s for s in novadiag.plan(report, "rewrite").steps if s.action == "edit")
    (rollback,) = step.rollback
    assert rollback.action == "manual"
    assert rollback.note == (
        "restore env DB of Deployment shop/x from your own copy: a new host was already in it, "
        "so the old value cannot be derived"
    )


def test_a_copy_from_manifest_files_changes_only_the_host(tmp_path: Path) -> None:
    """``main-db.data`` stops resolving once ``data`` is gone: the copy's DSN names the new host, nothing else moves."""
    url = f"postgres://inv:{PASSWORD}@main-db.data:5432/inv?sslmode=require"
    path = tmp_path / "cluster.yaml"
    objects = [service("data", "main-db", 5432), workload("data", "main-db"), workload("shop", "inv", {"DB": url})]
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("data", "shop")]
    path.write_text(yaml.safe_dump_all([*namespaces, *objects]))
    plan = novadiag.plan(novadiag.audit(manifests=[path]), "consolidate", into="prod")
    assert plan.ok, plan.verification
    (rewrite,) = [r for r in plan.rewrites if r.changed]
    assert rewrite.old_host == "main-db.data" and rewrite.new_host != rewrite.old_host
    files = write_manifests(plan, tmp_path / "out")
    copy_file = next(Path(f) for f in files if f.endswith("deployment-prod-inv.yaml"))
    env = yaml.safe_load(copy_file.read_text())["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "DB", "value": url.replace("@main-db.data:", f"@{rewrite.new_host}:")}]


CREDENTIALS_DSN = f"Data Source=main-db,5432;Initial Catalog=app;User ID=app;Password={PASSWORD}"


def _rewritten_without_a_mark() -> novadiag.Report:
    """Values the snapshot keeps only as their hosts, with no mask in them: a credential-named env var
    (``db:1433`` for a whole ADO.NET string) and a credential-named ConfigMap key."""
    return audit_objects(
        service("data", "main-db", 5432),
        workload("data", "main-db"),
        workload("shop", "billing", {"DB_CREDENTIALS": CREDENTIALS_DSN}),
        config_map("shop", "ledger-env", {"LEDGER_DB_PASSWORD_URL": ORDERS_URL}),
        workload("shop", "ledger", env_from=[{"configMapRef": {"name": "ledger-env"}}]),
    )


def test_a_value_kept_only_as_its_hosts_is_edited_live_never_written_as_kept() -> None:
    report = _rewritten_without_a_mark()
    assert report.snapshot is not None
    billing = report.snapshot.get("Deployment", "shop", "billing")
    assert billing is not None
    kept = billing["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
    assert MASK not in kept and REDACTED not in kept and PASSWORD not in kept  # no mark says it is cut
    for plan in (novadiag.plan(report, "rewrite"), novadiag.plan(report, "consolidate", into="prod")):
        assert plan.verification is not None and plan.verification.ok, plan.verification.summary()
        for ref in (ObjectRef("Deployment", "shop", "billing"), ObjectRef("ConfigMap", "shop", "ledger-env")):
            steps = [s for s in plan.steps if s.operation.source == ref or s.object == ref]
            writing = [s for s in steps if s.action in ("patch", "create")]
            assert writing == [], [(s.id, s.title) for s in writing]
            assert any(s.action in ("edit", "copy") for s in steps), (plan.strategy, ref)


def test_the_script_leaves_no_live_value_behind_when_a_step_fails(report: novadiag.Report, tmp_path: Path) -> None:
    # live values (passwords included) sit in private temporary directories while a step runs: a step
    # that fails half-way, or an interrupt, must not leave them on disk
    plan = novadiag.plan(report, "rewrite")
    assert any(s.action == "edit" for s in plan.steps)
    script = tmp_path / "plan.sh"
    script.write_text(render_plan(plan, "script"))
    stub = tmp_path / "bin" / "kubectl"
    stub.parent.mkdir()
    stub.write_text(
        '#!/bin/sh\ncase "$*" in\n'
        # a control character: the script refuses to write the value, after it was read
        f'  *go-template*) printf "@@NOVADIAG_FOUND@@{ORDERS_URL}\\001" ;;\n'
        "  *patch*|*create*|*apply*|*replace*) exit 1 ;;\n"
        "esac\nexit 0\n"
    )
    stub.chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"PATH": f"{stub.parent}:/usr/bin:/bin", "TMPDIR": str(scratch)}
    result = subprocess.run(["bash", str(script), "--execute"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode != 0 and "refusing a value with control characters" in result.stderr, result.stderr[-2000:]
    assert list(scratch.iterdir()) == []
    assert PASSWORD not in result.stdout + result.stderr


def test_every_place_the_snapshot_keeps_as_hosts_only_is_read_live() -> None:
    # the snapshot keeps a credential-named env value, data key or annotation as its hosts ('db:1433'),
    # with no mask: a copy must take each from the live source
    manifest = {
        "metadata": {"annotations": {"example.com/api-token": "db:1433", "note": "db:1433"}},
        "data": {"DB_PASSWORD_DSN": "db:1433", "DB_URL": "db:1433"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [
            {"name": "DB_CREDENTIALS", "value": "db:1433"}, {"name": "DB_HOST", "value": "db"}]}]}}},
    }
    assert sorted(masked_paths(manifest)) == sorted([
        ("metadata", "annotations", "example.com/api-token"),
        ("data", "DB_PASSWORD_DSN"),
        ("spec", "template", "spec", "containers", "name=app", "env", "name=DB_CREDENTIALS", "value"),
    ])
