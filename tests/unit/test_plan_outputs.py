"""The plan's outputs: JSON contract, Markdown runbook, bash script, manifests directory."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from plan_support import NOVA

import novadiag
from novadiag.errors import PlanError
from novadiag.model import ObjectRef
from novadiag.planning import PlanOptions, render_plan, write_manifests
from novadiag.planning.kubectl import wait_argv
from novadiag.planning.operations import Operation
from novadiag.planning.rename import replace_hosts
from novadiag.planning.script import render_script
from novadiag.planning.values import Plan, Step

NOVA_OPTIONS = {"into": "nova-prod", "keep": ["kafka", "nova-staging"], "prefer": ["nova-backend/postgres"]}


@pytest.fixture(scope="module")
def plan() -> Plan:
    return novadiag.plan(novadiag.audit(manifests=[NOVA]), "consolidate", **NOVA_OPTIONS)


@pytest.fixture(scope="module")
def script(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("script") / "plan.sh"
    path.write_text(render_plan(plan, "script"), encoding="utf-8")
    return path


def test_json_follows_the_plan_schema(plan: Plan) -> None:
    doc = json.loads(plan.to_json())
    assert doc["schema"] == "novadiag.plan/v1"
    assert set(doc) >= {"order", "steps", "verification", "conflicts", "fixes"}
    step = doc["steps"][0]
    assert set(step) >= {
        "id",
        "phase",
        "action",
        "object",
        "target_namespace",
        "depends_on",
        "commands",
        "rollback",
        "fixes",
    }
    assert doc["verification"]["broken_before"] == 5 and doc["verification"]["broken_after"] == 0
    assert doc["order"][0]["objects"][0]["to_namespace"] == "nova-prod"


def test_json_steps_name_the_edges_they_fix(plan: Plan) -> None:
    doc = json.loads(plan.to_json())
    fixed = {e for s in doc["steps"] for e in s["fixes"]}
    assert "nova-backend/deployment/user-service/user-service/CONTENT_SERVICE_URL/content-service:9081" in fixed


def test_runbook_has_phases_times_checks_and_rollbacks(plan: Plan) -> None:
    text = render_plan(plan, "markdown")
    assert "**Verification: OK" in text
    for phase in ("Prepare", "Deploy next to the old", "Verify", "Switch", "Grace", "Clean up"):
        assert f"## Phase: {phase}" in text
    assert "~60 min" in text and "Check before going on" in text and "Rollback:" in text


def test_script_is_valid_bash(script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_script_passes_shellcheck(script: Path) -> None:
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_script_is_a_dry_run_by_default(script: Path, tmp_path: Path) -> None:
    trap = tmp_path / "kubectl"
    trap.write_text('#!/bin/sh\necho called >> "$0.log"\nexit 1\n')
    trap.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert not (tmp_path / "kubectl.log").exists()
    assert result.returncode == 0, result.stderr
    assert "[dry-run] kubectl create -f - # Namespace -/nova-prod" in result.stdout
    assert "copy Secret nova-content/content-db to nova-prod" in result.stdout


def test_script_starts_with_strict_mode(script: Path) -> None:
    assert "\nset -euo pipefail\n" in script.read_text()


def test_script_refuses_names_that_are_not_dns_1123() -> None:
    bad = Step("s001", "fix", "bad", Operation("restart", ObjectRef("Deployment", "ns", "x;rm -rf /")))
    plan = Plan(
        options=PlanOptions("rewrite"), source=novadiag.audit(manifests=[NOVA]).source, steps=(bad,)
    )
    with pytest.raises(PlanError, match="DNS-1123"):
        render_script(plan)


@pytest.mark.parametrize(
    ("text", "mapping"),
    [
        ("postgresql://u:p@postgres:5432,postgres.nova:5432/db", {"postgres.nova": "postgres"}),
        ("postgres://postgres:5432", {"postgres": "postgres.b"}),
        ("a,a;a a", {"a": "b.c"}),
        ("redis.nova-media:6379 redis.nova-media.svc x", {"redis.nova-media": "redis"}),
        ("http://api.a:80/x http://api:80", {"api.a": "api", "api": "api.b"}),
    ],
)
def test_bash_and_python_rewrite_hosts_alike(script: Path, tmp_path: Path, text: str, mapping: dict[str, str]) -> None:
    body = script.read_text()
    start = body.index("rewrite_host() {")
    function = body[start : body.index("\n}\n", start) + 3]
    value = tmp_path / "value"
    value.write_text(text)
    args = [a for pair in mapping.items() for a in pair]
    subprocess.run(["bash", "-c", function + 'rewrite_host "$@"', "-", str(value), *args], check=True)
    assert value.read_text() == replace_hosts(text, mapping)


def test_manifests_directory_is_in_apply_order_without_secrets(plan: Plan, tmp_path: Path) -> None:
    files = write_manifests(plan, tmp_path / "out")
    names = sorted(Path(f).name for f in files if Path(f).name.startswith("s"))
    assert names[0] == "s001-namespace-nova-prod.yaml"
    assert not any("-secret-" in n for n in names)
    assert (tmp_path / "out" / "README.md").exists()
    docs = [yaml.safe_load(Path(f).read_text()) for f in files if f.endswith(".yaml")]
    assert all("uid" not in d["metadata"] for d in docs)
    assert not any("NOVA-SECRET" in Path(f).read_text() for f in files)


def test_runbook_commands_name_the_manifest_files(plan: Plan, tmp_path: Path) -> None:
    files = {Path(f).name for f in write_manifests(plan, tmp_path / "m")}
    create = next(s for s in plan.steps if s.action == "create")
    command = create.to_dict()["commands"][0]
    assert command.split()[-1] in files


def test_a_failing_step_stops_the_script_and_prints_the_rollback(script: Path, tmp_path: Path) -> None:
    stub = tmp_path / "kubectl"
    stub.write_text(
        '#!/bin/sh\ncase "$*" in\n  *"rollout status"*) exit 1 ;;\n  *"{{.type}}"*) printf Opaque ;;\n'
        '  *"range"*) printf "DATABASE_URL\\nurl\\n" ;;\n  *"index .data"*) printf "x" ;;\n'
        '  *"create -f -"*) cat > /dev/null ;;\nesac\nexit 0\n'
    )
    stub.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    result = subprocess.run(
        ["bash", str(script), "--execute", "--ack-manual"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 1
    assert "FAILED at step" in result.stderr and "wait until Deployment nova-prod/redis is ready" in result.stderr
    assert "kubectl delete deployment/redis -n nova-prod" in result.stderr
    assert "s001: kubectl delete namespace/nova-prod" in result.stderr


def test_the_script_does_not_wait_for_a_cron_job_to_become_ready() -> None:
    """A CronJob has no Ready condition: ``kubectl wait`` on one hangs until its timeout, then fails."""
    assert wait_argv(ObjectRef("CronJob", "shop", "nightly")) == ["kubectl", "get", "cronjob/nightly", "-n", "shop"]
