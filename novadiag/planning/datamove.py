"""Data-migration steps for stateful workloads: explicit, manual, never a silent copy of a claim.

A PersistentVolumeClaim is bound to one volume in one namespace; a claim
"copied" into another namespace is a new, empty disk. So a moved StatefulSet
or any workload with a claim gets its new, empty storage, and a manual step
that says how to bring the data over, with commands that fit the software
when its image says what it is (PostgreSQL, MySQL/MariaDB, MongoDB, Redis), and
a warning: writes to the old copy after the copy are lost unless writes are
frozen or replicated until the switch. The plan never runs these commands
itself; the API runner and the script stop at them until the operator says
the data is there (``--ack-manual``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from novadiag.model import ObjectRef
from novadiag.planning.kubectl import RESOURCE, check_ref
from novadiag.planning.rename import pod_spec_of

WARNING = (
    "stateful: the new copy starts with EMPTY storage (claims are never copied or shared); "
    "writes to the old copy after the data copy are lost unless writes are frozen or replicated until the switch"
)


def is_stateful(obj: Mapping[str, Any]) -> bool:
    """StatefulSets, and anything that mounts a PersistentVolumeClaim."""
    if obj.get("kind") == "StatefulSet":
        return True
    spec = pod_spec_of(obj) or {}
    return any(isinstance(v, Mapping) and "persistentVolumeClaim" in v for v in spec.get("volumes") or ())


def claims_of(obj: Mapping[str, Any]) -> list[str]:
    """Names of the claims a workload keeps data on (templates and mounted claims)."""
    names = [
        str((t.get("metadata") or {}).get("name"))
        for t in (obj.get("spec") or {}).get("volumeClaimTemplates") or ()
        if isinstance(t, Mapping)
    ]
    spec = pod_spec_of(obj) or {}
    for volume in spec.get("volumes") or ():
        claim = volume.get("persistentVolumeClaim") if isinstance(volume, Mapping) else None
        if isinstance(claim, Mapping) and claim.get("claimName"):
            names.append(str(claim["claimName"]))
    return names


def migration_commands(old: ObjectRef, new: ObjectRef, obj: Mapping[str, Any]) -> tuple[str, ...]:
    """Suggested commands to bring the data of ``old`` into ``new`` (printed, never run by novadiag)."""
    check_ref(old)
    check_ref(new)
    image = _image(obj)
    src = f"{RESOURCE[old.kind]}/{old.name}"
    dst = f"{RESOURCE[new.kind]}/{new.name}"
    old_ns, new_ns = shlex.quote(old.namespace or "default"), shlex.quote(new.namespace or "default")
    user = shlex.quote(_env_literal(obj, "POSTGRES_USER") or "postgres")
    if "postgres" in image:
        return (
            f"kubectl exec -n {old_ns} {src} -- pg_dumpall -U {user} --clean --if-exists "
            f"| kubectl exec -i -n {new_ns} {dst} -- psql -U {user} -d postgres",
            "# zero-downtime alternative: logical replication (CREATE PUBLICATION on the old, "
            "CREATE SUBSCRIPTION on the new) until the switch",
        )
    if "mysql" in image or "mariadb" in image:
        return (
            f"kubectl exec -n {old_ns} {src} -- sh -c 'mysqldump --all-databases -uroot -p\"$MYSQL_ROOT_PASSWORD\"' "
            f"| kubectl exec -i -n {new_ns} {dst} -- sh -c 'mysql -uroot -p\"$MYSQL_ROOT_PASSWORD\"'",
        )
    if "mongo" in image:
        return (
            f"kubectl exec -n {old_ns} {src} -- mongodump --archive "
            f"| kubectl exec -i -n {new_ns} {dst} -- mongorestore --archive --drop",
        )
    if "redis" in image:
        host = f"{old.name}.{old.namespace}"
        return (
            f"kubectl exec -n {new_ns} {dst} -- sh -c "
            + shlex.quote(f'redis-cli -a "$REDIS_PASSWORD" REPLICAOF {host} 6379')
            + "   # add 'masterauth' if the old one needs a password",
            f"kubectl exec -n {new_ns} {dst} -- sh -c "
            + shlex.quote('redis-cli -a "$REDIS_PASSWORD" INFO replication')
            + "   # wait for master_link_status:up, then at the switch:",
            f"kubectl exec -n {new_ns} {dst} -- sh -c "
            + shlex.quote('redis-cli -a "$REDIS_PASSWORD" REPLICAOF NO ONE'),
        )
    return (
        f"# copy the data of {old} into {new}: a backup/restore tool (velero, restic), "
        "or a pod that mounts both volumes and runs rsync",
    )


def _image(obj: Mapping[str, Any]) -> str:
    spec = pod_spec_of(obj) or {}
    images = [str(c.get("image") or "") for c in spec.get("containers") or () if isinstance(c, Mapping)]
    return (images[0] if images else "").lower().rpartition("/")[2]


def _env_literal(obj: Mapping[str, Any], name: str) -> str | None:
    spec = pod_spec_of(obj) or {}
    for container in spec.get("containers") or ():
        for entry in container.get("env") or ():
            if isinstance(entry, Mapping) and entry.get("name") == name and isinstance(entry.get("value"), str):
                return str(entry["value"])
    return None
