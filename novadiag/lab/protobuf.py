"""Decode the Kubernetes protobuf request bodies that kubectl's typed clients send.

kubectl's built-in generators (``kubectl create namespace|configmap|secret|
serviceaccount|deployment|service``, ``kubectl run``, ``kubectl auth can-i``) post
their objects as ``application/vnd.kubernetes.protobuf`` and do not fall back to
JSON on 415. Answers may be JSON (kubectl accepts both), so only *requests* need
decoding, and only for the messages those generators produce.

The body is ``k8s\\x00`` followed by a ``runtime.Unknown`` message (``typeMeta``,
``raw``); ``raw`` is the object in the field numbering of the Kubernetes
``generated.proto`` files, reproduced below for the messages the generators fill.
A field outside these tables is refused (415) rather than silently dropped.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

MAGIC = b"k8s\x00"

# message -> field number -> (json name, type, repeated). Types: string, bytes, bool,
# int (varint; int! keeps an explicit 0), time (meta/v1 Time), quantity, intorstr,
# map:<value type>, skip, or a message name.
Field = tuple[str, str, bool]
SCHEMAS: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", "bytes", False),
                3: ("contentEncoding", "string", False), 4: ("contentType", "string", False)},
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {
        1: ("name", "string", False), 2: ("generateName", "string", False),
        3: ("namespace", "string", False), 4: ("selfLink", "string", False),
        5: ("uid", "string", False), 6: ("resourceVersion", "string", False),
        7: ("generation", "int", False), 8: ("creationTimestamp", "time", False),
        9: ("deletionTimestamp", "time", False),
        10: ("deletionGracePeriodSeconds", "int", False),
        11: ("labels", "map:string", False), 12: ("annotations", "map:string", False),
        13: ("ownerReferences", "OwnerReference", True), 14: ("finalizers", "string", True),
    },
    "OwnerReference": {1: ("kind", "string", False), 3: ("name", "string", False),
                       4: ("uid", "string", False), 5: ("apiVersion", "string", False),
                       6: ("controller", "bool", False),
                       7: ("blockOwnerDeletion", "bool", False)},
    "LabelSelector": {1: ("matchLabels", "map:string", False)},
    "ConfigMap": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:string", False),
                  3: ("binaryData", "map:bytes", False), 4: ("immutable", "bool", False)},
    "Secret": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:bytes", False),
               3: ("type", "string", False), 4: ("stringData", "map:string", False),
               5: ("immutable", "bool", False)},
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False),
                  3: ("status", "skip", False)},
    "NamespaceSpec": {1: ("finalizers", "string", True)},
    "ServiceAccount": {1: ("metadata", "ObjectMeta", False),
                       3: ("imagePullSecrets", "LocalObjectReference", True),
                       4: ("automountServiceAccountToken", "bool", False)},
    "LocalObjectReference": {1: ("name", "string", False)},
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta", False),
                                2: ("spec", "SelfSubjectAccessReviewSpec", False),
                                3: ("status", "skip", False)},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", False),
                                    2: ("nonResourceAttributes", "NonResourceAttributes",
                                        False)},
    "ResourceAttributes": {1: ("namespace", "string", False), 2: ("verb", "string", False),
                           3: ("group", "string", False), 4: ("version", "string", False),
                           5: ("resource", "string", False), 6: ("subresource", "string", False),
                           7: ("name", "string", False)},
    "NonResourceAttributes": {1: ("path", "string", False), 2: ("verb", "string", False)},
    # apps/v1, batch/v1 and core/v1 workload messages (kubectl create deployment|job|cronjob)
    "Deployment": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "DeploymentSpec", False),
                   3: ("status", "skip", False)},
    "DeploymentSpec": {1: ("replicas", "int!", False), 2: ("selector", "LabelSelector", False),
                       3: ("template", "PodTemplateSpec", False),
                       4: ("strategy", "DeploymentStrategy", False),
                       5: ("minReadySeconds", "int", False),
                       6: ("revisionHistoryLimit", "int!", False), 7: ("paused", "bool", False),
                       9: ("progressDeadlineSeconds", "int!", False)},
    "DeploymentStrategy": {1: ("type", "string", False)},
    "Job": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "JobSpec", False),
            3: ("status", "skip", False)},
    "JobSpec": {1: ("parallelism", "int!", False), 2: ("completions", "int!", False),
                3: ("activeDeadlineSeconds", "int!", False),
                4: ("selector", "LabelSelector", False), 5: ("manualSelector", "bool", False),
                6: ("template", "PodTemplateSpec", False), 7: ("backoffLimit", "int!", False),
                8: ("ttlSecondsAfterFinished", "int!", False),
                9: ("completionMode", "string", False), 10: ("suspend", "bool", False)},
    "CronJob": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "CronJobSpec", False),
                3: ("status", "skip", False)},
    "CronJobSpec": {1: ("schedule", "string", False), 2: ("startingDeadlineSeconds", "int!", False),
                    3: ("concurrencyPolicy", "string", False), 4: ("suspend", "bool", False),
                    5: ("jobTemplate", "JobTemplateSpec", False),
                    6: ("successfulJobsHistoryLimit", "int!", False),
                    7: ("failedJobsHistoryLimit", "int!", False), 8: ("timeZone", "string", False)},
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "JobSpec", False)},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "PodSpec", False)},
    "PodSpec": {
        2: ("containers", "Container", True), 3: ("restartPolicy", "string", False),
        4: ("terminationGracePeriodSeconds", "int", False),
        5: ("activeDeadlineSeconds", "int!", False), 6: ("dnsPolicy", "string", False),
        7: ("nodeSelector", "map:string", False), 8: ("serviceAccountName", "string", False),
        9: ("serviceAccount", "string", False), 10: ("nodeName", "string", False),
        11: ("hostNetwork", "bool", False), 12: ("hostPID", "bool", False),
        13: ("hostIPC", "bool", False), 15: ("imagePullSecrets", "LocalObjectReference", True),
        16: ("hostname", "string", False), 17: ("subdomain", "string", False),
        19: ("schedulerName", "string", False), 20: ("initContainers", "Container", True),
        24: ("priorityClassName", "string", False),
    },
    "Container": {
        1: ("name", "string", False), 2: ("image", "string", False),
        3: ("command", "string", True), 4: ("args", "string", True),
        5: ("workingDir", "string", False), 6: ("ports", "ContainerPort", True),
        7: ("env", "EnvVar", True), 8: ("resources", "ResourceRequirements", False),
        13: ("terminationMessagePath", "string", False),
        14: ("imagePullPolicy", "string", False), 16: ("stdin", "bool", False),
        17: ("stdinOnce", "bool", False), 18: ("tty", "bool", False),
        20: ("terminationMessagePolicy", "string", False),
    },
    "ContainerPort": {1: ("name", "string", False), 2: ("hostPort", "int", False),
                      3: ("containerPort", "int", False), 4: ("protocol", "string", False),
                      5: ("hostIP", "string", False)},
    "EnvVar": {1: ("name", "string", False), 2: ("value", "string", False)},
    "ResourceRequirements": {1: ("limits", "map:quantity", False),
                             2: ("requests", "map:quantity", False)},
    "Service": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "ServiceSpec", False),
                3: ("status", "skip", False)},
    "ServiceSpec": {
        1: ("ports", "ServicePort", True), 2: ("selector", "map:string", False),
        3: ("clusterIP", "string", False), 4: ("type", "string", False),
        5: ("externalIPs", "string", True), 7: ("sessionAffinity", "string", False),
        8: ("loadBalancerIP", "string", False), 9: ("loadBalancerSourceRanges", "string", True),
        10: ("externalName", "string", False), 11: ("externalTrafficPolicy", "string", False),
        12: ("healthCheckNodePort", "int", False), 13: ("publishNotReadyAddresses", "bool", False),
        14: ("sessionAffinityConfig", "skip", False),
        20: ("allocateLoadBalancerNodePorts", "bool", False),
        21: ("loadBalancerClass", "string", False),
        17: ("ipFamilyPolicy", "string", False), 18: ("clusterIPs", "string", True),
        19: ("ipFamilies", "string", True), 22: ("internalTrafficPolicy", "string", False),
    },
    "ServicePort": {1: ("name", "string", False), 2: ("protocol", "string", False),
                    3: ("port", "int", False), 4: ("targetPort", "intorstr", False),
                    5: ("nodePort", "int", False), 6: ("appProtocol", "string", False)},
    # rbac.authorization.k8s.io/v1 (kubectl create role|rolebinding|clusterrole|...)
    "Role": {1: ("metadata", "ObjectMeta", False), 2: ("rules", "PolicyRule", True)},
    "ClusterRole": {1: ("metadata", "ObjectMeta", False), 2: ("rules", "PolicyRule", True)},
    "PolicyRule": {1: ("verbs", "string", True), 2: ("apiGroups", "string", True),
                   3: ("resources", "string", True), 4: ("resourceNames", "string", True),
                   5: ("nonResourceURLs", "string", True)},
    "RoleBinding": {1: ("metadata", "ObjectMeta", False), 2: ("subjects", "Subject", True),
                    3: ("roleRef", "RoleRef", False)},
    "ClusterRoleBinding": {1: ("metadata", "ObjectMeta", False),
                           2: ("subjects", "Subject", True), 3: ("roleRef", "RoleRef", False)},
    "Subject": {1: ("kind", "string", False), 2: ("apiGroup", "string", False),
                3: ("name", "string", False), 4: ("namespace", "string", False)},
    "RoleRef": {1: ("apiGroup", "string", False), 2: ("kind", "string", False),
                3: ("name", "string", False)},
}
KIND_MESSAGES = {"ConfigMap", "Secret", "Namespace", "ServiceAccount", "SelfSubjectAccessReview",
                 "Deployment", "Job", "CronJob", "Service", "Role", "ClusterRole",
                 "RoleBinding", "ClusterRoleBinding"}


class ProtobufError(ValueError):
    """A body this decoder cannot turn into JSON faithfully."""


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON object of a ``application/vnd.kubernetes.protobuf`` request body."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the protobuf body lacks the k8s envelope")
    envelope = _decode_message(body[len(MAGIC):], "Unknown")
    type_meta = envelope.get("typeMeta") or {}
    kind = str(type_meta.get("kind") or "")
    if kind not in KIND_MESSAGES:
        raise ProtobufError(f"protobuf bodies of kind {kind or '?'} are not supported by the "
                            "lab; send JSON (e.g. kubectl apply -f)")
    raw = base64.b64decode(envelope.get("raw") or "")
    obj = _decode_message(raw, kind)
    obj["kind"] = kind
    if type_meta.get("apiVersion"):
        obj["apiVersion"] = type_meta["apiVersion"]
    return obj


def _decode_message(data: bytes, message: str) -> dict[str, Any]:
    schema = SCHEMAS[message]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(data):
        if number not in schema:
            raise ProtobufError(f"unsupported field {number} in protobuf {message}")
        name, kind, repeated = schema[number]
        if kind == "skip":  # status: the server ignores it on create anyway
            continue
        decoded = _decode_value(kind, wire, value)
        if decoded is None:
            continue
        if not repeated and kind in ("string", "int", "bool") and decoded in ("", 0, False):
            continue  # Go marshals unset non-pointer scalars; JSON omits them
        if kind.startswith("map:"):
            key, item = decoded
            out.setdefault(name, {})[key] = item
        elif repeated:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    return out


def _decode_value(kind: str, wire: int, value: int | bytes) -> Any:
    if kind in ("int", "int!"):  # "int!": a pointer in Go, where an explicit 0 matters
        return _signed(_as_int(value))
    if kind == "bool":
        return bool(_as_int(value))
    raw = _as_bytes(value)
    if kind == "string":
        return raw.decode()
    if kind == "bytes":
        return base64.b64encode(raw).decode()
    if kind == "quantity":  # resource.Quantity {string = 1}
        return next((_as_bytes(v).decode() for n, _, v in _fields(raw) if n == 1), "")
    if kind == "intorstr":  # intstr.IntOrString {type = 1, intVal = 2, strVal = 3}
        parts = {n: v for n, _, v in _fields(raw)}
        if parts.get(1, 0):
            return _as_bytes(parts.get(3, b"")).decode()
        return _signed(_as_int(parts.get(2, 0)))
    if kind == "time":
        seconds = _decode_time(raw)
        if not seconds:
            return None  # the zero Time: JSON has null, clients treat both as unset
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind.startswith("map:"):
        entry = {n: v for n, _, v in _fields(raw)}
        value_kind = kind[4:]
        key = _as_bytes(entry.get(1, b"")).decode()
        return key, _decode_value(value_kind, 2, entry.get(2, b""))
    return _decode_message(raw, kind)


def _decode_time(raw: bytes) -> int:
    for number, _, value in _fields(raw):
        if number == 1:
            return _signed(_as_int(value))
    return 0


def _as_int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise ProtobufError("expected a varint")
    return value


def _as_bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a length-delimited field")
    return value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field of one message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated protobuf field")
            yield number, wire, data[pos:pos + length]
            pos += length
        elif wire == 1:
            yield number, wire, struct.unpack_from("<q", data, pos)[0]
            pos += 8
        elif wire == 5:
            yield number, wire, struct.unpack_from("<i", data, pos)[0]
            pos += 4
        else:
            raise ProtobufError(f"unsupported protobuf wire type {wire}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated protobuf varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
