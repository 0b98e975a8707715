"""Operations as ``kubectl`` command lines, for the runbook and the JSON document.

Every value is quoted with :func:`shlex.quote`, and every object name is
checked against DNS-1123 before it is printed (:func:`check_name`): a name is
data taken from a cluster or a manifest, and a command line is code. A
``create`` reads its manifest from the plan's manifests directory
(``--format manifests``); the bash script (``script.py``) embeds the manifests
instead and has its own helpers for Secrets, whose values are read from the
cluster at run time and never written into a plan file. An ``edit`` or a
``copy`` (values the snapshot masked) has no kubectl line: it is described,
and ``novadiag plan --apply`` runs it, reading the values from the cluster.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from novadiag.errors import PlanError
from novadiag.model import ObjectRef
from novadiag.planning.operations import HostEdit, Operation
from novadiag.planning.paths import FieldPath, patch_for, path_text, set_at

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")

RESOURCE = {
    "Namespace": "namespace",
    "Service": "service",
    "Endpoints": "endpoints",
    "Deployment": "deployment",
    "StatefulSet": "statefulset",
    "DaemonSet": "daemonset",
    "ReplicaSet": "replicaset",
    "Job": "job",
    "CronJob": "cronjob",
    "Pod": "pod",
    "ConfigMap": "configmap",
    "Secret": "secret",
    "NetworkPolicy": "networkpolicy",
    "ServiceAccount": "serviceaccount",
    "PersistentVolumeClaim": "persistentvolumeclaim",
    "Role": "role",
    "RoleBinding": "rolebinding",
    "Ingress": "ingress.networking.k8s.io",
    "Gateway": "gateway.gateway.networking.k8s.io",
    "HTTPRoute": "httproute.gateway.networking.k8s.io",
    "GRPCRoute": "grpcroute.gateway.networking.k8s.io",
    "TLSRoute": "tlsroute.gateway.networking.k8s.io",
    "TCPRoute": "tcproute.gateway.networking.k8s.io",
    "ReferenceGrant": "referencegrant.gateway.networking.k8s.io",
    "VirtualService": "virtualservice.networking.istio.io",
    "DestinationRule": "destinationrule.networking.istio.io",
    "ServiceEntry": "serviceentry.networking.istio.io",
}
ROLLOUT_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})

HEREDOC = "NOVADIAG_MANIFEST"


def check_name(name: str | None, *, what: str = "name", label: bool = False) -> str:
    """``name`` when it is a valid DNS-1123 subdomain (label: one label, as namespaces); PlanError otherwise."""
    pattern = _DNS1123_LABEL if label else _DNS1123_SUBDOMAIN
    if not isinstance(name, str) or not pattern.fullmatch(name) or len(name) > 253:
        raise PlanError(f"refusing {what} {name!r}: not a valid DNS-1123 name")
    return name


def check_ref(ref: ObjectRef) -> ObjectRef:
    if ref.kind not in RESOURCE:
        raise PlanError(f"refusing kind {ref.kind!r}: not a kind novadiag plans for")
    check_name(ref.name, what=f"{ref.kind} name")
    if ref.namespace is not None:
        check_name(ref.namespace, what="namespace", label=True)
    return ref


def check_key(key: str) -> str:
    if not _DATA_KEY.fullmatch(key):
        raise PlanError(f"refusing data key {key!r}: not a valid ConfigMap/Secret key")
    return key


def manifest_filename(step_id: str, ref: ObjectRef, *, prefix: str = "") -> str:
    """``s012-deployment-nova-prod-user-service.yaml``: sortable in apply order, one object per file."""
    check_ref(ref)
    ns = f"{ref.namespace}-" if ref.namespace else ""
    return f"{prefix}{step_id}-{RESOURCE[ref.kind]}-{ns}{ref.name}.yaml"


def target(ref: ObjectRef) -> list[str]:
    """``<resource>/<name> [-n ns]`` argv fragment."""
    check_ref(ref)
    args = [f"{RESOURCE[ref.kind]}/{ref.name}"]
    if ref.namespace is not None:
        args += ["-n", ref.namespace]
    return args


def argv_for(op: Operation, *, manifest_file: str | None = None, timeout: int = 300) -> list[list[str]]:
    """The kubectl argv lists of one operation (empty for manual and grace steps)."""
    ref = op.ref
    if op.action in ("create", "create-namespace"):
        check_ref(ref)
        return [["kubectl", "create", "-f", manifest_file or "-"]]
    if op.action == "patch":
        kind = "strategic" if op.strategic else "merge"
        return [["kubectl", "patch", *target(ref), "--type", kind, "-p", compact(op.patch or {})]]
    if op.action == "restart":
        return [["kubectl", "rollout", "restart", *target(ref)]]
    if op.action == "scale":
        return [["kubectl", "scale", *target(ref), f"--replicas={int(op.replicas or 0)}"]]
    if op.action == "wait-ready":
        return [wait_argv(ref, timeout)]
    if op.action == "delete":
        return [["kubectl", "delete", *target(ref), "--ignore-not-found", "--wait=true", f"--timeout={timeout}s"]]
    if op.action == "verify":
        args = ["novadiag", "audit", "--probe", "--fail-on", "broken"]
        for ns in op.namespaces:
            args += ["--namespace", check_name(ns, what="namespace", label=True)]
        return [args]
    return []


def wait_argv(ref: ObjectRef, timeout: int = 300) -> list[str]:
    """How ``kubectl`` waits for ``ref``; a CronJob has no readiness (it runs on its schedule): it must exist."""
    if ref.kind == "CronJob":
        return ["kubectl", "get", *target(ref)]
    if ref.kind in ROLLOUT_KINDS:
        return ["kubectl", "rollout", "status", *target(ref), f"--timeout={timeout}s"]
    if ref.kind == "Job":
        return ["kubectl", "wait", "--for=condition=complete", *target(ref), f"--timeout={timeout}s"]
    return ["kubectl", "wait", "--for=condition=Ready", *target(ref), f"--timeout={timeout}s"]


def kubectl_commands(op: Operation, *, manifest_file: str | None = None) -> list[str]:
    """Shell-quoted command lines of one operation, for reading (runbook, JSON)."""
    if op.action in ("copy-secret", "rewrite-secret"):
        return [
            line + "   # script helper: values read and written at run time, never stored"
            for line in operation_lines(op, "")
        ]
    if op.action in ("manual", "grace"):
        return list(op.commands) or [f"# {op.note}"]
    if op.live_values:
        if op.action == "copy" and manifest_file is not None:
            alternative = f"# or from --format manifests of your own manifest files: kubectl create -f {manifest_file}"
            return [live_values_line(op), alternative]
        return [live_values_line(op)]
    if op.action in ("create", "create-namespace") and manifest_file is None:
        return [shlex.join(argv_for(op, manifest_file="-")[0]) + "   # manifest: --format manifests"]
    return [shlex.join(argv) for argv in argv_for(op, manifest_file=manifest_file)]


def live_values_line(op: Operation, *, rollback: bool = False) -> str:
    """What an ``edit`` or ``copy`` does, as a comment: its values exist only in the cluster.

    Forward, ``novadiag plan --apply`` (or the script) runs it; as a rollback,
    nothing runs it on its own, so the line says what to do by hand.
    """
    check_ref(op.ref)
    places = "; ".join(_edit_text(e) for e in op.host_edits)
    if op.action == "copy":
        assert op.source is not None
        check_ref(op.source)
        what = f"create {op.ref} with values read from the live {op.source}: {places}"
    else:
        what = f"in the live {op.ref}, replace hosts: {places}"
    lead = "by hand" if rollback else "novadiag plan --apply"
    return f"# {lead}: {what} (the values hold credentials: never printed or stored)"


def _edit_text(edit: HostEdit) -> str:
    hosts = ", ".join(f"{check_host(old)} -> {check_host(new)}" for old, new in edit.replacements)
    return path_text(edit.path) + (f" ({hosts})" if hosts else " (as it is)")


def step_commands(step_id: str, operation: Operation, rollback: Sequence[Operation]) -> tuple[list[str], list[str]]:
    """(commands, rollback commands) of a step; manifests by their file in ``--format manifests``."""
    forward = kubectl_commands(operation, manifest_file=_manifest_path(step_id, operation))
    backward = [
        c
        for i, op in enumerate(rollback)
        for c in (
            [live_values_line(op, rollback=True)]
            if op.live_values
            else kubectl_commands(op, manifest_file=_manifest_path(step_id, op, prefix=f"rollback{i or ''}-"))
        )
    ]
    return forward, backward


def _manifest_path(step_id: str, op: Operation, *, prefix: str = "") -> str | None:
    if op.action not in ("create", "create-namespace", "copy"):
        return None
    return manifest_filename(step_id, op.ref, prefix=prefix)


_HOST_PORT = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9.])?(:\d{1,5})?|\d{1,5}")


def check_host(text: str) -> str:
    """A host, ``host:port`` or port as replaced in values: refused when it could be anything else."""
    if not _HOST_PORT.fullmatch(text):
        raise PlanError(f"refusing replacement {text!r}: not a host name or port")
    return text


def compact(value: Mapping[str, Any] | list[Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def operation_lines(op: Operation, step_id: str) -> list[str]:
    """Bash lines for one operation (used for steps and, commented out, for rollbacks)."""
    if op.action in ("create", "create-namespace"):
        assert op.manifest is not None
        check_ref(op.ref)
        label = shlex.quote(f"{op.ref.kind} {op.ref.namespace or '-'}/{op.ref.name}")
        return [f"create_manifest {label} <<'{HEREDOC}'", compact(op.manifest), HEREDOC]
    if op.action == "copy-secret":
        assert op.source is not None
        metadata = {"name": check_name(op.ref.name), "namespace": check_name(op.ref.namespace, label=True)}
        given = (op.manifest or {}).get("metadata") or {}
        metadata |= {k: v for k, v in given.items() if k in ("labels", "annotations")}
        args = [op.source.namespace or "default", op.source.name, op.ref.namespace or "default", compact(metadata)]
        return ["copy_secret " + " ".join(shlex.quote(a) for a in [*args, *_replacement_args(op)])]
    if op.action == "rewrite-secret":
        args = [op.ref.namespace or "default", op.ref.name, *_replacement_args(op)]
        return ["rewrite_secret " + " ".join(shlex.quote(a) for a in args)]
    if op.live_values:
        return _live_lines(op)
    if op.action == "verify":
        return ["verify " + " ".join(shlex.quote(a) for a in argv_for(op)[0][5:])]
    if op.action in ("manual", "grace"):
        lines = [f"say {shlex.quote(c)}" for c in op.commands]
        if op.action == "grace":
            return [*lines, f"grace {shlex.quote(step_id)} {shlex.quote(op.note)}"]
        return [*lines, f"manual {shlex.quote(step_id)} {shlex.quote(op.note)}"]
    lines = []
    for argv in argv_for(op):
        assert argv[0] == "kubectl"
        lines.append("kc " + " ".join(shlex.quote(a) for a in argv[1:]))
    return lines


def _live_lines(op: Operation) -> list[str]:
    """An ``edit`` or ``copy``: read each value live, then write the manifest or patch with them filled in."""
    read_from = op.source if op.action == "copy" else op.ref
    assert read_from is not None
    check_ref(read_from)
    lines = ["live_begin"]
    for n, edit in enumerate(op.host_edits):
        hosts = [check_host(h) for pair in edit.replacements for h in pair]
        args = [RESOURCE[read_from.kind], read_from.name, read_from.namespace or "default", go_template(edit.path)]
        lines.append("live_value " + " ".join(shlex.quote(a) for a in [*args, str(n), *hosts]))
    if op.action == "copy":
        assert op.manifest is not None
        label = shlex.quote(f"{op.ref.kind} {op.ref.namespace or '-'}/{op.ref.name}")
        template = copy.deepcopy(dict(op.manifest))
        for n, edit in enumerate(op.host_edits):
            set_at(template, edit.path, f"@@NOVADIAG_VALUE_{n}@@")
        return [*lines, f"live_create {label} <<'{HEREDOC}'", compact(template), HEREDOC]
    patch = patch_for({edit.path: f"@@NOVADIAG_VALUE_{n}@@" for n, edit in enumerate(op.host_edits)})
    kind = "merge" if op.ref.kind in ("ConfigMap", "Secret") else "strategic"
    args = [RESOURCE[op.ref.kind], op.ref.name, op.ref.namespace or "default", kind]
    return [*lines, "live_patch " + " ".join(shlex.quote(a) for a in args) + f" <<'{HEREDOC}'", compact(patch), HEREDOC]


def go_template(path: FieldPath) -> str:
    """A ``kubectl -o go-template`` printing ``@@NOVADIAG_FOUND@@`` and the value at ``path``, nothing when absent.

    Every step is a ``with`` or a ``range``, never an ``index`` of what may be
    missing: a failing template makes kubectl print the whole object, values
    included. Keys and names are Go string literals (JSON-quoted), so no key
    can end the template early.
    """
    if not path:
        return "@@NOVADIAG_FOUND@@{{.}}"
    segment, rest = path[0], path[1:]
    if "=" in segment:
        field, _, value = segment.partition("=")
        test = f'eq (printf "%v" (index . {json.dumps(field)})) {json.dumps(value)}'
        return f"{{{{range .}}}}{{{{if {test}}}}}{go_template(rest)}{{{{end}}}}{{{{end}}}}"
    if segment.startswith("#"):
        return f"{{{{range $i, $e := .}}}}{{{{if eq $i {int(segment[1:])}}}}}{go_template(rest)}{{{{end}}}}{{{{end}}}}"
    return f"{{{{with index . {json.dumps(segment)}}}}}{go_template(rest)}{{{{end}}}}"


def _replacement_args(op: Operation) -> list[str]:
    out = []
    for r in op.replacements:
        out += [check_key(r.key), check_host(r.old), check_host(r.new)]
    return out


def rollback_text(op: Operation) -> list[str]:
    """Human-runnable lines for a rollback operation (manifests by reference, not inline)."""
    if op.action in ("create", "create-namespace"):
        return [f"kubectl create -f - # recreate {op.ref} from the plan's manifests directory (rollback-*.json)"]
    if op.action in ("copy-secret", "rewrite-secret"):
        return operation_lines(op, "")
    if op.action in ("manual", "grace"):
        return [f"# {op.note}"]
    if op.live_values:
        return [live_values_line(op, rollback=True)]
    return [shlex.join(argv) for argv in argv_for(op)]
