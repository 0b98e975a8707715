"""Cleaning objects before they are created again in another namespace.

The usual ``kubectl get -o yaml | sed 's/namespace: a/namespace: b/' |
kubectl apply`` carries along everything the server owns: ``uid`` and
``resourceVersion`` (the create is rejected or, worse, treated as an update),
``status``, ``managedFields``, the Service's ``clusterIP``/``clusterIPs`` (taken:
the old Service still holds them during a blue-green move) and its
``nodePort``s (same clash), owner references to objects in the old namespace,
the bound PersistentVolume's name (a silent attempt to share one disk between
two claims), and the controller-generated selector labels of Jobs. Here a
moved object keeps only what a person wrote: spec, data, labels, annotations
minus the server's bookkeeping.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from novadiag.redaction import LAST_APPLIED, SANITIZED_KEY

METADATA_DROPPED = frozenset(
    {
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
        "ownerReferences",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "finalizers",
        "generateName",
    }
)

ANNOTATIONS_DROPPED = frozenset(
    {
        LAST_APPLIED,
        "deployment.kubernetes.io/revision",
        "pv.kubernetes.io/bind-completed",
        "pv.kubernetes.io/bound-by-controller",
        "volume.beta.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/selected-node",
        "kubectl.kubernetes.io/restartedAt",
        "endpoints.kubernetes.io/last-change-trigger-time",
    }
)

JOB_LABELS = frozenset(
    {"controller-uid", "job-name", "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name"}
)

SERVICE_SPEC_DROPPED = frozenset({"clusterIP", "clusterIPs", "healthCheckNodePort", "loadBalancerIP"})


def clean_object(obj: Mapping[str, Any], *, namespace: str | None) -> dict[str, Any]:
    """A deep copy of ``obj`` fit to be created in ``namespace`` (None: cluster-scoped)."""
    out: dict[str, Any] = copy.deepcopy({k: v for k, v in obj.items() if k not in ("status", SANITIZED_KEY)})
    out["metadata"] = clean_metadata(out.get("metadata") or {}, namespace=namespace)
    kind = out.get("kind")
    spec = out.get("spec")
    if isinstance(spec, dict):
        if kind == "Service":
            _clean_service(spec)
        elif kind == "PersistentVolumeClaim":
            spec.pop("volumeName", None)
        elif kind == "StatefulSet":
            _clean_claim_templates(spec)
        elif kind == "Job":
            _clean_job(spec)
        elif kind == "CronJob":
            job = (spec.get("jobTemplate") or {}).get("spec")
            if isinstance(job, dict):
                _clean_job(job)
        elif kind == "Pod":
            spec.pop("nodeName", None)
        _clean_template(spec)
    if kind == "ServiceAccount":
        out.pop("secrets", None)
    return out


def clean_metadata(meta: Mapping[str, Any], *, namespace: str | None) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in meta.items() if k not in METADATA_DROPPED}
    annotations = out.get("annotations")
    if isinstance(annotations, dict):
        kept = {k: v for k, v in annotations.items() if k not in ANNOTATIONS_DROPPED}
        if kept:
            out["annotations"] = kept
        else:
            out.pop("annotations")
    if namespace is None:
        out.pop("namespace", None)
    else:
        out["namespace"] = namespace
    return out


def _clean_service(spec: dict[str, Any]) -> None:
    headless = spec.get("clusterIP") in ("None", "none")
    for key in SERVICE_SPEC_DROPPED:
        spec.pop(key, None)
    if headless:
        spec["clusterIP"] = "None"
    for port in spec.get("ports") or ():
        if isinstance(port, dict):
            port.pop("nodePort", None)


def _clean_claim_templates(spec: dict[str, Any]) -> None:
    for claim in spec.get("volumeClaimTemplates") or ():
        if isinstance(claim, dict):
            claim.pop("status", None)
            claim["metadata"] = clean_metadata(claim.get("metadata") or {}, namespace=None)
            (claim.get("spec") or {}).pop("volumeName", None)


def _clean_job(spec: dict[str, Any]) -> None:
    """Generated selectors and labels would tie the copy to the old Job's uid."""
    if spec.get("manualSelector"):
        return
    spec.pop("selector", None)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        for key in JOB_LABELS:
            labels.pop(key, None)


def _clean_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        template["metadata"] = clean_metadata(template.get("metadata") or {}, namespace=None)
        labels = template["metadata"].get("labels")
        if isinstance(labels, dict):
            labels.pop("pod-template-hash", None)


def is_system_object(kind: str, obj: Mapping[str, Any]) -> bool:
    """Objects every namespace gets from the control plane: never copied, never deleted by hand."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if kind == "ConfigMap" and name in ("kube-root-ca.crt", "openshift-service-ca.crt"):
        return True
    if kind == "ServiceAccount" and name == "default":
        return True
    if kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
        return True
    return False
