"""The lab's workload controllers: what kube-controller-manager does for workloads.

Clients and novadiag read the same chain a cluster has, so the lab builds it:

- **Deployment → ReplicaSet → Pods.** The ReplicaSet is named
  ``<deployment>-<pod-template-hash>`` with the hash computed as Kubernetes does
  (FNV-32a of the template, rendered in the API's "safe" alphabet) and carried as the
  ``pod-template-hash`` label; pods are ``<replicaset>-<5 random chars>``. A template
  change creates a new ReplicaSet; the old one is scaled to zero once the new one is
  fully ready (``RollingUpdate``) or at once (``Recreate``), so a rollout whose new
  pods crash keeps the old pods serving, as in a cluster.
- **StatefulSet → ``name-0 .. name-(n-1)``** with ``hostname``/``subdomain`` from
  ``serviceName`` (so DNS has ``kafka-0.kafka-headless.kafka.svc.<zone>``), created in
  order, each after the previous is Ready (``OrderedReady``) unless ``Parallel``;
  before each pod, its PersistentVolumeClaims ``<template>-<name>-<ordinal>`` from
  ``volumeClaimTemplates`` (Pending: the lab has no provisioner; the kubelet backs
  each claim with a directory).
- **DaemonSet → one pod on ``lab-node``.**
- **Job → pods until ``completions`` succeed**, at most ``parallelism`` at a time,
  giving up after ``backoffLimit`` failures; conditions ``Complete``/``Failed``.
- **Garbage collection:** an object whose controlling owner is gone is deleted
  (cascading delete of a Deployment reaches its pods through its ReplicaSets).

Status fields are the ones ``kubectl get`` and rollout checks read (replicas,
readyReplicas, availableReplicas, updatedReplicas, observedGeneration, conditions).
Every pass is level-triggered and writes only what changed.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from novadiag.lab.endpoints import SUFFIX_ALPHABET, pod_ready, random_suffix, selector_matches
from novadiag.lab.store import NotFound, Obj, Store, StoreError, now_rfc3339

log = logging.getLogger("novadiag.lab.controllers")

Admit = Callable[[dict[str, Any]], dict[str, Any]]
NODE_NAME = "lab-node"
OWNED_KINDS = ("Pod", "ReplicaSet")
CONTROLLER_KINDS = {"ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Deployment"}


# -- pure helpers -------------------------------------------------------------------


def template_hash(template: Any) -> str:
    """``pod-template-hash``: FNV-32a of the template in the API's safe alphabet."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(SUFFIX_ALPHABET[ord(ch) % len(SUFFIX_ALPHABET)] for ch in str(value))


def owner_reference(owner: Obj) -> dict[str, Any]:
    meta = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion", "apps/v1"), "kind": owner["kind"],
            "name": meta["name"], "uid": meta.get("uid"), "controller": True,
            "blockOwnerDeletion": True}


def controller_of(obj: Obj) -> dict[str, Any] | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def is_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def label_selector_matches(selector: Obj | None, labels: Obj | None) -> bool:
    """matchLabels plus the common matchExpressions operators."""
    selector = selector or {}
    labels = labels or {}
    if not selector_matches(selector.get("matchLabels") or {"": ""}, {**labels, "": ""}):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        ok = {"In": present and labels.get(key) in values,
              "NotIn": not present or labels.get(key) not in values,
              "Exists": present, "DoesNotExist": not present}.get(str(op), False)
        if not ok:
            return False
    return True


def default_pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The defaults an API server fills into a pod spec (used when admission is absent)."""
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        image = str(container.get("image") or "")
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
    return spec


def default_pod(pod: dict[str, Any]) -> dict[str, Any]:
    default_pod_spec(pod.setdefault("spec", {}))
    pod.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
    return pod


def pod_from_template(owner: Obj, name: str, *, labels: Obj | None = None,
                      spec_extra: Obj | None = None) -> dict[str, Any]:
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "name": name, "namespace": owner["metadata"]["namespace"],
        "labels": {**(tmeta.get("labels") or {}), **(labels or {})},
        "ownerReferences": [owner_reference(owner)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if owner["kind"] not in ("StatefulSet",):
        meta["generateName"] = name[: -5]
    spec = {**(template.get("spec") or {}), **(spec_extra or {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": "Pending", "qosClass": "BestEffort"}}


def stateful_claims(sts: Obj, index: int) -> list[dict[str, Any]]:
    """The PersistentVolumeClaims of one StatefulSet ordinal, as the StatefulSet controller makes them.

    One per ``volumeClaimTemplates`` entry, named ``<template>-<statefulset>-<ordinal>``,
    labelled with the template's labels plus the StatefulSet's ``matchLabels``; no
    owner (the default retention policy keeps claims when pods or the set go).
    """
    meta, spec = sts["metadata"], sts.get("spec") or {}
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    claims = []
    for template in spec.get("volumeClaimTemplates") or []:
        tmeta = template.get("metadata") or {}
        claim_meta: dict[str, Any] = {
            "name": f"{tmeta.get('name')}-{meta['name']}-{index}", "namespace": meta["namespace"],
            "labels": {**(tmeta.get("labels") or {}), **match_labels}}
        if tmeta.get("annotations"):
            claim_meta["annotations"] = dict(tmeta["annotations"])
        claim_spec = copy.deepcopy(template.get("spec") or {})
        claim_spec.setdefault("volumeMode", "Filesystem")
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": claim_meta,
                       "spec": claim_spec, "status": {"phase": "Pending"}})
    return claims


def stateful_volumes(sts: Obj, index: int) -> list[dict[str, Any]]:
    """The pod's volumes: one per claim template (claims first), then the template's own."""
    spec = sts.get("spec") or {}
    templates = [str((t.get("metadata") or {}).get("name")) for t in spec.get("volumeClaimTemplates") or []]
    claimed = [{"name": name, "persistentVolumeClaim": {"claimName": f"{name}-{sts['metadata']['name']}-{index}"}}
               for name in templates]
    own = (((spec.get("template") or {}).get("spec") or {}).get("volumes")) or []
    return claimed + [copy.deepcopy(v) for v in own if v.get("name") not in templates]


# -- the controllers ------------------------------------------------------------------


class WorkloadControllers:
    """One level-triggered pass over every workload kind, called by the kubelet loop."""

    def __init__(self, store: Store, *, admit: Admit | None = None) -> None:
        self.store = store
        self.admit = admit or default_pod
        self._pods_by_owner: dict[str, list[Obj]] = defaultdict(list)
        self._rs_by_owner: dict[str, list[Obj]] = defaultdict(list)
        self._hashes: dict[str, tuple[Any, str]] = {}
        self.failures = 0
        """Writes the last pass could not make; the kubelet retries soon when there were any."""

    def _template_hash(self, obj: Obj) -> str:
        """``template_hash`` of the object's template, kept while the stored template is the same dict.

        Every pass hashes every workload's template; the store hands out the
        same dict until the object is written, so a settled cluster hashes nothing.
        """
        template = (obj.get("spec") or {}).get("template")
        uid = str(obj["metadata"].get("uid"))
        known = self._hashes.get(uid)
        if known is not None and known[0] is template:
            return known[1]
        value = template_hash(template)
        self._hashes[uid] = (template, value)
        return value

    def sync(self) -> None:
        self.failures = 0
        self._pods_by_owner = self._by_controller("Pod")
        self._rs_by_owner = self._by_controller("ReplicaSet")
        for kind, handler in (("Deployment", self._deployment), ("ReplicaSet", self._replicaset),
                              ("StatefulSet", self._statefulset), ("DaemonSet", self._daemonset),
                              ("Job", self._job)):
            objects, _ = self.store.list(kind)
            for obj in objects:
                try:
                    handler(obj)
                except (StoreError, KeyError, TypeError, ValueError) as exc:
                    self.failures += 1
                    log.warning("%s %s/%s: %s", kind, obj["metadata"].get("namespace"),
                                obj["metadata"].get("name"), exc)
            if kind in ("Deployment", "ReplicaSet"):
                self._pods_by_owner = self._by_controller("Pod")
        self._collect_garbage()

    # -- indexes and writes -----------------------------------------------------------
    def _by_controller(self, kind: str) -> dict[str, list[Obj]]:
        """Objects of ``kind`` by their controlling owner's uid, from one list (not a scan per owner)."""
        owned: dict[str, list[Obj]] = defaultdict(list)
        for obj in self.store.list(kind)[0]:
            ref = controller_of(obj)
            if ref:
                owned[str(ref.get("uid"))].append(obj)
        return owned

    def _owned_pods(self, owner: Obj) -> list[Obj]:
        return self._pods_by_owner.get(str(owner["metadata"].get("uid")), [])

    def _create_pod(self, pod: dict[str, Any]) -> None:
        try:
            self.store.create(self.admit(pod))
        except StoreError as exc:
            self.failures += 1
            log.warning("cannot create pod %s: %s", pod["metadata"]["name"], exc)

    def _delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            self.store.delete(kind, namespace, name)
        except NotFound:
            pass

    def _set_status(self, obj: Obj, status: dict[str, Any]) -> None:
        current = obj.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()):
            return

        def change(draft: dict[str, Any]) -> None:
            merged = {**(draft.get("status") or {}), **status}
            draft["status"] = {k: v for k, v in merged.items() if v is not None}

        meta = obj["metadata"]
        try:
            self.store.mutate(obj["kind"], meta["namespace"], meta["name"], change)
        except NotFound:
            pass

    # -- Deployment -------------------------------------------------------------------
    def _deployment(self, deploy: Obj) -> None:
        spec, meta = deploy.get("spec") or {}, deploy["metadata"]
        desired = int(spec.get("replicas", 1))
        phash = self._template_hash(deploy)
        owned = [rs for rs in self._rs_by_owner.get(str(meta.get("uid")), ())
                 if rs["metadata"]["namespace"] == meta["namespace"]]
        current = next((rs for rs in owned if rs["metadata"]["labels"].get("pod-template-hash")
                        == phash), None)
        if current is None:
            current = self._create_replicaset(deploy, phash, desired, len(owned) + 1)
        elif int(current["spec"].get("replicas", 0)) != desired:
            self._scale(current, desired)
        old = [rs for rs in owned if rs is not current and rs["metadata"]["name"]
               != current["metadata"]["name"]]
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        new_ready = int((current.get("status") or {}).get("readyReplicas", 0)) >= desired
        for rs in old:
            if (recreate or new_ready) and int(rs["spec"].get("replicas", 0)) != 0:
                self._scale(rs, 0)
        self._deployment_status(deploy, current, owned)

    def _create_replicaset(self, deploy: Obj, phash: str, replicas: int, revision: int) -> Obj:
        meta, spec = deploy["metadata"], deploy.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = phash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = phash
        rs = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{meta['name']}-{phash}", "namespace": meta["namespace"],
                         "labels": dict(template["metadata"]["labels"]),
                         "annotations": {"deployment.kubernetes.io/revision": str(revision),
                                         "deployment.kubernetes.io/desired-replicas":
                                             str(replicas)},
                         "ownerReferences": [owner_reference(deploy)]},
            "spec": {"replicas": replicas, "selector": selector, "template": template},
            "status": {"replicas": 0, "observedGeneration": 1},
        }
        return self.store.create(rs)

    def _scale(self, rs: Obj, replicas: int) -> None:
        def change(draft: dict[str, Any]) -> None:
            draft["spec"]["replicas"] = replicas

        self.store.mutate("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"],
                          change)

    def _deployment_status(self, deploy: Obj, current: Obj, owned: list[Obj]) -> None:
        desired = int((deploy.get("spec") or {}).get("replicas", 1))
        all_rs = {rs["metadata"]["name"]: rs for rs in [*owned, current]}
        totals = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0}
        for rs in all_rs.values():
            status = rs.get("status") or {}
            for key in totals:
                totals[key] += int(status.get(key, 0))
        updated = int((current.get("status") or {}).get("replicas", 0))
        available = totals["availableReplicas"]
        now = now_rfc3339()
        old_conditions = {c["type"]: c for c in (deploy.get("status") or {}).get("conditions", [])}
        conditions = [
            _condition(old_conditions, "Available", available >= desired,
                       "MinimumReplicasAvailable" if available >= desired
                       else "MinimumReplicasUnavailable",
                       "Deployment has minimum availability." if available >= desired
                       else "Deployment does not have minimum availability.", now),
            _condition(old_conditions, "Progressing", True, "NewReplicaSetAvailable"
                       if updated == desired and available >= desired else "ReplicaSetUpdated",
                       f'ReplicaSet "{current["metadata"]["name"]}" is progressing.', now),
        ]
        self._set_status(deploy, {
            "observedGeneration": deploy["metadata"].get("generation", 1),
            "replicas": totals["replicas"] or None, "updatedReplicas": updated or None,
            "readyReplicas": totals["readyReplicas"] or None,
            "availableReplicas": available or None,
            "unavailableReplicas": max(desired - available, 0) or None,
            "conditions": conditions,
        })

    # -- ReplicaSet -------------------------------------------------------------------
    def _replicaset(self, rs: Obj) -> None:
        spec, meta = rs.get("spec") or {}, rs["metadata"]
        desired = int(spec.get("replicas", 1))
        pods = [p for p in self._owned_pods(rs) if is_active(p)]
        for _ in range(desired - len(pods)):
            self._create_pod(pod_from_template(rs, f"{meta['name']}-{random_suffix()}"))
        if len(pods) > desired:
            newest_first = sorted(pods, key=lambda p: str(p["metadata"].get(
                "creationTimestamp", "")), reverse=True)
            doomed = sorted(newest_first, key=pod_ready)[: len(pods) - desired]  # unready first
            for pod in doomed:
                self._delete("Pod", meta["namespace"], pod["metadata"]["name"])
        ready = sum(1 for p in pods if pod_ready(p))
        self._set_status(rs, {
            "replicas": len(pods), "fullyLabeledReplicas": len(pods) or None,
            "readyReplicas": ready or None, "availableReplicas": ready or None,
            "observedGeneration": meta.get("generation", 1),
        })

    # -- StatefulSet ------------------------------------------------------------------
    def _statefulset(self, sts: Obj) -> None:
        spec, meta = sts.get("spec") or {}, sts["metadata"]
        desired = int(spec.get("replicas", 1))
        revision = f"{meta['name']}-{self._template_hash(sts)}"
        by_name = {p["metadata"]["name"]: p for p in self._owned_pods(sts) if is_active(p)}
        parallel = spec.get("podManagementPolicy") == "Parallel"
        for index in range(desired):
            name = f"{meta['name']}-{index}"
            pod = by_name.get(name)
            if pod is None:
                if self._pod_name_taken(meta["namespace"], name):
                    break  # the old pod of that ordinal is still going away
                self._ensure_claims(sts, index)
                self._create_pod(self._stateful_pod(sts, index, revision))
                if not parallel:
                    break
            elif not parallel and not pod_ready(pod):
                break
        for name, pod in by_name.items():
            index = int(name.rsplit("-", 1)[1]) if name.rsplit("-", 1)[1].isdigit() else -1
            outdated = pod["metadata"]["labels"].get("controller-revision-hash") != revision
            if index >= desired or outdated:
                self._delete("Pod", meta["namespace"], name)
        pods = [p for p in by_name.values()]
        ready = sum(1 for p in pods if pod_ready(p))
        self._set_status(sts, {
            "observedGeneration": meta.get("generation", 1), "replicas": len(pods),
            "readyReplicas": ready or None, "currentReplicas": len(pods) or None,
            "updatedReplicas": len(pods) or None, "availableReplicas": ready,
            "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
        })

    def _pod_name_taken(self, namespace: str, name: str) -> bool:
        try:
            self.store.get("Pod", namespace, name)
        except NotFound:
            return False
        return True

    def _ensure_claims(self, sts: Obj, index: int) -> None:
        """Create the ordinal's PersistentVolumeClaims that do not exist yet (they outlive the pod)."""
        for claim in stateful_claims(sts, index):
            meta = claim["metadata"]
            if self._lookup("PersistentVolumeClaim", meta["namespace"], meta["name"]) is None:
                try:
                    self.store.create(claim)
                except StoreError as exc:
                    self.failures += 1
                    log.warning("cannot create claim %s: %s", meta["name"], exc)

    def _lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return self.store.get(kind, namespace, name)
        except NotFound:
            return None

    def _stateful_pod(self, sts: Obj, index: int, revision: str) -> dict[str, Any]:
        name = f"{sts['metadata']['name']}-{index}"
        labels = {"statefulset.kubernetes.io/pod-name": name,
                  "controller-revision-hash": revision, "apps.kubernetes.io/pod-index": str(index)}
        extra: dict[str, Any] = {"hostname": name, "volumes": stateful_volumes(sts, index)}
        service_name = (sts.get("spec") or {}).get("serviceName")
        if service_name:
            extra["subdomain"] = service_name
        return pod_from_template(sts, name, labels=labels, spec_extra=extra)

    # -- DaemonSet --------------------------------------------------------------------
    def _daemonset(self, ds: Obj) -> None:
        meta = ds["metadata"]
        phash = self._template_hash(ds)
        pods = [p for p in self._owned_pods(ds) if is_active(p)]
        current = [p for p in pods if p["metadata"]["labels"].get("controller-revision-hash")
                   == phash][:1]
        for pod in pods:
            if not current or pod is not current[0]:
                self._delete("Pod", meta["namespace"], pod["metadata"]["name"])
        if not current:
            labels = {"controller-revision-hash": phash, "pod-template-generation":
                      str(meta.get("generation", 1))}
            self._create_pod(pod_from_template(ds, f"{meta['name']}-{random_suffix()}",
                                               labels=labels, spec_extra={"nodeName": NODE_NAME}))
        ready = sum(1 for p in current if pod_ready(p))
        self._set_status(ds, {
            "desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberMisscheduled": 0,
            "numberReady": ready, "numberAvailable": ready or None,
            "numberUnavailable": (1 - ready) or None, "updatedNumberScheduled": 1,
            "observedGeneration": meta.get("generation", 1),
        })

    # -- Job --------------------------------------------------------------------------
    def _job(self, job: Obj) -> None:
        spec, meta, status = job.get("spec") or {}, job["metadata"], job.get("status") or {}
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in status.get("conditions") or []):
            return
        pods = self._owned_pods(job)
        active = [p for p in pods if is_active(p)]
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        completions = int(spec.get("completions") or 1)
        now = now_rfc3339()
        update: dict[str, Any] = {"startTime": status.get("startTime") or now,
                                  "active": len(active) or None, "succeeded": succeeded or None,
                                  "failed": failed or None,
                                  "ready": sum(1 for p in active if pod_ready(p))}
        if succeeded >= completions:
            update["completionTime"] = now
            update["conditions"] = [_job_condition("Complete", "", "", now)]
        elif failed > int(spec.get("backoffLimit", 6)):
            update["conditions"] = [_job_condition("Failed", "BackoffLimitExceeded",
                                                   "Job has reached the specified backoff limit",
                                                   now)]
            for pod in active:
                self._delete("Pod", meta["namespace"], pod["metadata"]["name"])
        else:
            want = min(int(spec.get("parallelism", 1)), completions - succeeded) - len(active)
            labels = {"controller-uid": meta.get("uid"), "job-name": meta["name"],
                      "batch.kubernetes.io/controller-uid": meta.get("uid"),
                      "batch.kubernetes.io/job-name": meta["name"]}
            for _ in range(max(want, 0)):
                self._create_pod(pod_from_template(job, f"{meta['name']}-{random_suffix()}",
                                                   labels=labels))
        self._set_status(job, update)

    # -- garbage collection -----------------------------------------------------------
    def _collect_garbage(self) -> None:
        alive: set[str] = set()
        for kind in CONTROLLER_KINDS:
            objects, _ = self.store.list(kind)
            alive.update(str(o["metadata"].get("uid")) for o in objects)
        for kind in OWNED_KINDS:
            objects, _ = self.store.list(kind)
            for obj in _orphans(objects, alive):
                self._delete(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])


def _orphans(objects: Iterable[Obj], alive: set[str]) -> list[Obj]:
    orphans = []
    for obj in objects:
        ref = controller_of(obj)
        if ref and ref.get("kind") in CONTROLLER_KINDS and str(ref.get("uid")) not in alive:
            orphans.append(obj)
    return orphans


def _condition(old: dict[str, Any], kind: str, ok: bool, reason: str, message: str,
               now: str) -> dict[str, Any]:
    status = "True" if ok else "False"
    previous = old.get(kind) or {}
    same = previous.get("status") == status and previous.get("reason") == reason
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": previous.get("lastUpdateTime") if same else now,
            "lastTransitionTime": previous.get("lastTransitionTime")
            if previous.get("status") == status else now}


def _job_condition(kind: str, reason: str, message: str, now: str) -> dict[str, Any]:
    condition = {"type": kind, "status": "True", "lastProbeTime": now,
                 "lastTransitionTime": now}
    if reason:
        condition.update(reason=reason, message=message)
    return condition
