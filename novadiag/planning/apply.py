"""Executing a plan against a cluster through the API, step by step, checking as it goes.

The runner walks the plan's steps in order and executes each operation
through :class:`~novadiag.kube.KubeClient` (the same requests ``kubectl``
makes: create, merge or strategic patch, delete), waits for workloads to
become ready by reading their status, and verifies with a live audit and
probes where the plan says so. It stops at the first failed step or check and
prints the rollback of that step and of every step done before it, newest
first; it never rolls back on its own, because a half-applied migration is
better judged by a person than undone by a script.

Without ``yes`` nothing is sent: the steps are printed. A plan whose
verification is not OK is refused. Secrets are copied and rewritten here, at
run time: read from the API, hosts replaced, written back; the values stay
in this process's memory and are never printed or stored. So are the values
the snapshot masked elsewhere (``edit`` and ``copy``: an env value or a
ConfigMap key holding a password): the live value is read, only its hosts are
replaced, and the result is written; the credential in it is neither printed
nor lost. Deletes need
``allow_delete``; manual steps (data migration, external traffic) stop the
run unless ``ack_manual``; the grace period stops it unless ``skip_grace``
(or ``cleanup``, which runs only the cleanup phase once the grace period is over).
Steps the plan marks done (:attr:`Plan.done`: a consolidation planned again on
the half-migrated cluster, see ``resume.py``) are skipped; checks and manual
steps after them run again.
"""

from __future__ import annotations

import base64
import copy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from novadiag.errors import NovadiagError, PlanError
from novadiag.kube import KubeClient, KubeSettings
from novadiag.listing import load_cluster_snapshot
from novadiag.model import ObjectRef
from novadiag.pipeline import audit_snapshot, probe_report
from novadiag.planning.kubectl import rollback_text, step_commands
from novadiag.planning.operations import Operation
from novadiag.planning.paths import FieldPath, get_at, patch_for, path_text, set_at
from novadiag.planning.rename import contains_host, replace_hosts
from novadiag.planning.values import Plan, Step
from novadiag.redaction import SANITIZED_KEY

Printer = Callable[[str], None]
POLL_SECONDS = 0.5
IN_PLACE = "already in place, skipped"
# A plan made again after the switch cannot be the first one (see resume.py): the cleanup runs from this plan.
CLEANUP_LATER = (
    "run the cleanup phase of this same plan: its script (-o plan.sh next to --apply) with "
    "--execute --cleanup --allow-delete, or novadiag.apply_plan(plan, cleanup=True, allow_delete=True)"
)


@dataclass
class ApplyResult:
    """What a run did: steps done, where it stopped and why, and the rollback to print."""

    executed: bool
    done: list[str] = field(default_factory=list)
    stopped_at: str | None = None
    reason: str | None = None
    failed: bool = False
    rollback: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No step failed (a run that stopped at a gate is ok, but not :attr:`complete`)."""
        return not self.failed

    @property
    def complete(self) -> bool:
        """Every step ran and succeeded: the run neither failed nor stopped before a gate."""
        return self.executed and not self.failed and self.stopped_at is None


class StepFailed(Exception):
    """One step's operation or check did not succeed (internal; reported in the result)."""


def apply_plan(
    plan: Plan,
    client: KubeClient | None = None,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    yes: bool = False,
    allow_delete: bool = False,
    cleanup: bool = False,
    skip_grace: bool = False,
    ack_manual: bool = False,
    probe: bool = True,
    timeout: float | None = None,
    out: Printer | None = None,
) -> ApplyResult:
    """Run the plan (see the module docstring); ``client`` wins over ``kubeconfig``/``context``."""
    say = out or _stderr
    _refuse_unverified(plan)
    steps = [s for s in plan.steps if s.phase == "cleanup"] if cleanup else list(plan.steps)
    if not yes:
        for step in steps:
            commands, _ = step_commands(step.id, step.operation, step.rollback)
            if step.id in plan.done:
                say(f"{step.id} [{step.phase}] {step.title}: {IN_PLACE}")
                continue
            say(f"{step.id} [{step.phase}] {step.title}")
            for command in commands:
                say(f"    {command}")
        say("nothing was changed: pass --yes (apply(yes=True)) to execute")
        return ApplyResult(executed=False)
    if cleanup and not allow_delete:
        raise PlanError("the cleanup phase deletes objects: it needs --allow-delete")
    own = client is None
    client = client or KubeClient(KubeSettings(kubeconfig=kubeconfig, context=context))
    try:
        runner = _Runner(plan, client, say, probe=probe, timeout=timeout or plan.options.wait_timeout)
        return runner.run(steps, allow_delete=allow_delete, skip_grace=skip_grace or cleanup, ack_manual=ack_manual)
    finally:
        if own:
            client.close()


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


def _refuse_unverified(plan: Plan) -> None:
    v = plan.verification
    if v is None:
        raise PlanError("refusing to apply a plan that was not verified: make it with novadiag.plan(..., verify=True)")
    if v.value_problems:
        raise PlanError(f"refusing to apply: {v.value_problems[0]}")
    if v.refused:
        raise PlanError(
            f"refusing to apply: the plan breaks {len(v.regressions)} working edge(s); first: {v.regressions[0]}"
        )
    if not v.ok:
        raise PlanError(f"refusing to apply an incomplete plan: {v.summary()}")


class _Runner:
    def __init__(self, plan: Plan, client: KubeClient, say: Printer, *, probe: bool, timeout: float) -> None:
        self.plan = plan
        self.client = client
        self.say = say
        self.probe = probe
        self.timeout = timeout

    def run(self, steps: list[Step], *, allow_delete: bool, skip_grace: bool, ack_manual: bool) -> ApplyResult:
        result = ApplyResult(executed=True)
        for step in steps:
            if step.id in self.plan.done:
                self.say(f"==> {step.id} [{step.phase}] {step.title}: {IN_PLACE}")
                result.done.append(step.id)  # its rollback is printed too if a later step fails
                continue
            stop = self._gate(step, allow_delete=allow_delete, skip_grace=skip_grace, ack_manual=ack_manual)
            if stop is not None:
                result.stopped_at, result.reason = step.id, stop
                self.say(f"stopped before {step.id}: {stop}")
                return result
            self.say(f"==> {step.id} [{step.phase}] {step.title}")
            try:
                self.execute(step)
            except (StepFailed, NovadiagError) as exc:
                result.failed, result.stopped_at, result.reason = True, step.id, str(exc)
                result.rollback = self._rollback(step, [s for s in steps if s.id in result.done])
                self._report_stop(f"FAILED at {step.id}: {exc}", result.rollback)
                return result
            except KeyboardInterrupt:
                # Ctrl-C or SIGTERM mid-step: say where it stopped and how to undo, then keep unwinding.
                rollback = self._rollback(step, [s for s in steps if s.id in result.done])
                self._report_stop(f"interrupted during {step.id}; it may be half done", rollback)
                raise
            result.done.append(step.id)
        self.say("done.")
        return result

    def _report_stop(self, headline: str, rollback: list[str]) -> None:
        self.say(headline)
        self.say("rollback, newest first:")
        for line in rollback:
            self.say(f"    {line}")

    def _gate(self, step: Step, *, allow_delete: bool, skip_grace: bool, ack_manual: bool) -> str | None:
        if step.requires_allow_delete and not allow_delete:
            return f"the cleanup phase deletes objects; {CLEANUP_LATER}"
        if step.action == "grace" and not skip_grace:
            return (
                f"grace period ({self.plan.options.grace}) started: the old objects are kept, scaled down; "
                f"after it, {CLEANUP_LATER}"
            )
        if step.action == "manual" and not ack_manual:
            return f"{step.operation.note} — do it by hand, then run again from here with --ack-manual"
        return None

    @staticmethod
    def _rollback(failed: Step, done: list[Step]) -> list[str]:
        lines = []
        for step in [failed, *reversed(done)]:
            for op in step.rollback:
                lines += [f"{step.id}: {line}" for line in rollback_text(op)]
        return lines

    # -- operations --------------------------------------------------------------------------
    def execute(self, step: Step) -> None:
        op = step.operation
        action = op.action
        if action in ("create", "create-namespace"):
            assert op.manifest is not None
            self.client.create(op.ref.kind, op.ref.namespace, op.manifest)
        elif action == "copy":
            self._copy(op)
        elif action == "edit":
            self._edit(op)
        elif action == "patch":
            assert op.patch is not None
            self._check_lists_unchanged(step)
            self.client.patch(op.ref.kind, op.ref.namespace, op.ref.name, op.patch, strategic=op.strategic)
        elif action == "copy-secret":
            self._copy_secret(op)
        elif action == "rewrite-secret":
            self._rewrite_secret(op)
        elif action == "restart":
            self._restart(op.ref)
        elif action == "scale":
            self.client.patch(op.ref.kind, op.ref.namespace, op.ref.name, {"spec": {"replicas": int(op.replicas or 0)}})
        elif action == "delete":
            self.client.delete(op.ref.kind, op.ref.namespace, op.ref.name, grace_seconds=None)
            self._wait_gone(op.ref)
        elif action == "wait-ready":
            self._wait_ready(op.ref)
        elif action == "verify":
            self._verify(op.namespaces)
        elif action in ("manual", "grace"):
            self.say(f"    acknowledged: {op.note}")

    def _read_secret(self, ref: ObjectRef) -> tuple[dict[str, Any], dict[str, str]]:
        obj = self.client.get("Secret", ref.namespace, ref.name)
        if obj is None:
            raise StepFailed(f"Secret {ref.namespace}/{ref.name} not found")
        if obj.get(SANITIZED_KEY):
            raise StepFailed("refusing to write a sanitized Secret")
        data = {}
        for key, value in (obj.get("data") or {}).items():
            data[str(key)] = base64.b64decode(value).decode("utf-8", "surrogateescape")
        return obj, data

    @staticmethod
    def _rewrite(data: dict[str, str], op: Operation) -> dict[str, str]:
        by_key: dict[str, dict[str, str]] = {}
        for r in op.replacements:
            by_key.setdefault(r.key, {})[r.old] = r.new
        return {k: replace_hosts(v, by_key[k]) if k in by_key else v for k, v in data.items()}

    @staticmethod
    def _encode(data: dict[str, str]) -> dict[str, str]:
        return {k: base64.b64encode(v.encode("utf-8", "surrogateescape")).decode("ascii") for k, v in data.items()}

    def _copy_secret(self, op: Operation) -> None:
        assert op.source is not None
        source, data = self._read_secret(op.source)
        meta = dict((op.manifest or {}).get("metadata") or {})
        meta.update({"name": op.ref.name, "namespace": op.ref.namespace})
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": source.get("type") or "Opaque",
            "data": self._encode(self._rewrite(data, op)),
        }
        self.client.create("Secret", op.ref.namespace, body)

    def _rewrite_secret(self, op: Operation) -> None:
        _, data = self._read_secret(op.ref)
        changed = self._rewrite(data, op)
        patch = {"data": {k: v for k, v in self._encode(changed).items() if changed[k] != data[k]}}
        self.client.patch("Secret", op.ref.namespace, op.ref.name, patch)

    def _check_lists_unchanged(self, step: Step) -> None:
        """A patch that sets a ``command``/``args``/exec list whole is sent only onto the list the plan saw.

        The patch carries every item, so an item changed since the audit would
        be silently overwritten; the list must be as the plan's rollback has it
        (or as the patch sets it: a run resumed after the step).
        """
        op = step.operation
        lists = {edit.path[:-1] for edit in op.host_edits if edit.path and edit.path[-1].startswith("#")}
        if not lists:
            return
        live = self.client.get(op.ref.kind, op.ref.namespace, op.ref.name) or {}
        before = [r.patch for r in step.rollback if r.action == "patch" and r.patch is not None]
        for path in sorted(lists):
            now = get_at(live, path)
            if now != get_at(op.patch, path) and all(now != get_at(patch, path) for patch in before):
                raise StepFailed(f"{op.ref} {path_text(path)} changed since the plan was made: make the plan again")

    def _live_values(self, ref: ObjectRef, op: Operation) -> dict[FieldPath, str]:
        """The values ``op`` edits, read from the live ``ref``, with only their hosts replaced."""
        obj = self.client.get(ref.kind, ref.namespace, ref.name)
        if obj is None:
            raise StepFailed(f"{ref} not found: the cluster changed since the plan was made")
        values: dict[FieldPath, str] = {}
        for edit in op.host_edits:
            value = get_at(obj, edit.path)
            if not isinstance(value, str):
                raise StepFailed(f"{ref} has no value at {path_text(edit.path)}: the cluster changed since the plan")
            gone = [old for old in edit.mapping if not contains_host(value, old)]
            if gone:
                raise StepFailed(
                    f"{ref} {path_text(edit.path)} no longer names {gone[0]}: the cluster changed since the plan"
                )
            values[edit.path] = replace_hosts(value, edit.mapping)
        return values

    def _copy(self, op: Operation) -> None:
        """Create the copy, its masked values taken from the live source (hosts replaced)."""
        assert op.source is not None and op.manifest is not None
        body = copy.deepcopy(dict(op.manifest))
        for path, value in self._live_values(op.source, op).items():
            set_at(body, path, value)
        self.client.create(op.ref.kind, op.ref.namespace, body)

    def _edit(self, op: Operation) -> None:
        """Replace hosts in live values in place: a strategic patch for workloads, a merge patch for data."""
        patch = patch_for(self._live_values(op.ref, op))
        strategic = op.ref.kind not in ("ConfigMap", "Secret")
        self.client.patch(op.ref.kind, op.ref.namespace, op.ref.name, patch, strategic=strategic)

    def _restart(self, ref: ObjectRef) -> None:
        """What ``kubectl rollout restart`` does: a new template annotation rolls the pods."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        annotation = {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}
        self.client.patch(ref.kind, ref.namespace, ref.name, {"spec": {"template": annotation}}, strategic=True)

    def _wait_ready(self, ref: ObjectRef) -> None:
        deadline = time.monotonic() + self.timeout
        last = "not found"
        while time.monotonic() < deadline:
            obj = self.client.get(ref.kind, ref.namespace, ref.name)
            if obj is not None:
                ready, last = readiness(obj)
                if ready:
                    return
            time.sleep(POLL_SECONDS)
        raise StepFailed(f"{ref} not ready after {self.timeout:.0f}s: {last}")

    def _wait_gone(self, ref: ObjectRef) -> None:
        """Like ``kubectl delete --wait``: a Namespace is gone only once its contents are."""
        deadline = time.monotonic() + self.timeout
        while self.client.get(ref.kind, ref.namespace, ref.name) is not None:
            if time.monotonic() > deadline:
                raise StepFailed(f"{ref} still there after {self.timeout:.0f}s")
            time.sleep(POLL_SECONDS)

    def _verify(self, namespaces: tuple[str, ...]) -> None:
        domain = self.plan.options.cluster_domain
        snap = load_cluster_snapshot(self.client, cluster_domain=domain, source_kind="cluster")
        report = audit_snapshot(
            snap, namespaces=list(namespaces), cluster_domain=domain, cluster_dns=self.plan.options.cluster_dns
        )
        if self.probe:
            report = probe_report(self.client, report)
            probes = report.probes or {}
            if probes.get("groups") and not probes.get("ran"):
                failed = probes.get("failed") or probes.get("forbidden") or [{}]
                raise StepFailed(
                    f"no probe pod could run ({failed[0].get('error', 'unknown reason')}); "
                    "fix that, or verify without probes (--no-probe)"
                )
        broken = report.broken
        crashing = [f for f in report.findings if f.code == "crashloop"]
        self.say(
            f"    re-audit of {', '.join(namespaces)}: {len(report.edges)} edges, {len(broken)} broken"
            + (f", {len(crashing)} crash-looping" if crashing else "")
        )
        if broken:
            first = broken[0]
            raise StepFailed(
                f"{len(broken)} broken edge(s) after the step; first: {first.id}: {first.status}: {first.detail}"
            )


def readiness(obj: dict[str, Any]) -> tuple[bool, str]:
    """(ready, why not) from a workload's status, the way ``kubectl rollout status`` reads it."""
    kind = obj.get("kind")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    if generation is not None and status.get("observedGeneration", generation) < generation:
        return False, "the controller has not seen the latest spec"
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        want = spec.get("replicas", 1)
        have = {k: int(status.get(k) or 0) for k in ("updatedReplicas", "readyReplicas")}
        if kind == "ReplicaSet":
            have["updatedReplicas"] = have["readyReplicas"]
        if (
            have["updatedReplicas"] >= want
            and have["readyReplicas"] >= want
            and int(status.get("replicas") or 0) <= want
        ):
            return True, ""
        return False, f"{have['readyReplicas']}/{want} ready, {have['updatedReplicas']} updated"
    if kind == "DaemonSet":
        scheduled, ready = int(status.get("desiredNumberScheduled") or 0), int(status.get("numberReady") or 0)
        return ready >= scheduled, f"{ready}/{scheduled} ready"
    if kind == "Pod":
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
        return ready, "pod not ready"
    return True, ""
