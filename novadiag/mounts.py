"""Mounts: which ConfigMap and Secret keys a container sees as files.

Config files name hosts too (a collector's ``endpoint: postgresql:5432``, an
nginx ``proxy_pass``), but only a key that lands in a container's filesystem
is read by anything. So a key counts for a container only when the container
mounts a volume that projects it, the way the kubelet lays the volume out:

* a ``configMap``/``secret`` volume, or a ``projected`` volume's
  ``configMap``/``secret`` sources, projects every key of its object, or
  only those ``items`` list (each at its ``path``);
* a ``volumeMount`` with ``subPath`` sees only the file (or the directory) at
  that path inside the volume; one with ``subPathExpr`` (expanded per pod) is
  left out, as the file it shows is not known;
* ``optional: true`` lets the object, or a listed key, be missing.

Pure: reads a pod spec, never the objects it names; whether they exist is
decided where their data is read (:mod:`novadiag.references`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

SourceKind = Literal["ConfigMap", "Secret"]
_VOLUME_KINDS: tuple[tuple[str, SourceKind, str], ...] = (
    ("configMap", "ConfigMap", "name"),
    ("secret", "Secret", "secretName"),
)
"""(volume field, kind, field naming the object); a projected source names its object by ``name`` always."""


@dataclass(frozen=True)
class MountedSource:
    """One ConfigMap or Secret a volume projects, and which of its keys (None: all, each at its own name)."""

    kind: SourceKind
    name: str
    volume: str
    optional: bool
    items: tuple[tuple[str, str], ...] | None
    """(key, path inside the volume) pairs when ``items`` lists them."""

    def files(self, keys: list[str]) -> list[tuple[str, str]]:
        """(key, path inside the volume) of every file this source writes, given the keys its object has."""
        if self.items is None:
            return [(key, key) for key in keys]
        return list(self.items)

    def describe(self) -> str:
        return f"volume {self.volume} ({self.kind} {self.name})"


@dataclass(frozen=True)
class MountedFile:
    """One key a container reads as a file: the source, the key, and the file's path in the container."""

    source: MountedSource
    key: str
    path: str

    @property
    def file_name(self) -> str:
        """The file's own name, which says its format (``collector.yaml``) better than the key may."""
        return self.path.rstrip("/").rpartition("/")[2] or self.key


def pod_sources(pod_spec: Mapping[str, Any]) -> dict[str, list[MountedSource]]:
    """Volume name -> the ConfigMaps and Secrets it projects (volumes of other kinds are left out)."""
    sources: dict[str, list[MountedSource]] = {}
    volumes = pod_spec.get("volumes")
    for volume in volumes if isinstance(volumes, list) else ():
        name = volume.get("name") if isinstance(volume, Mapping) else None
        if isinstance(name, str) and name:
            found = list(_volume_sources(name, volume))
            if found:
                sources[name] = found
    return sources


def container_mounts(container: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(volume name, mount path, subPath or "") of each of the container's ``volumeMounts``."""
    mounts = container.get("volumeMounts")
    for mount in mounts if isinstance(mounts, list) else ():
        if not isinstance(mount, Mapping) or mount.get("subPathExpr"):
            continue  # a subPathExpr expands per pod (``$(POD_NAME)``): which file it shows is not known here
        name, path, sub = mount.get("name"), mount.get("mountPath"), mount.get("subPath") or ""
        if isinstance(name, str) and isinstance(path, str) and isinstance(sub, str):
            yield name, path, sub.strip("/")


def mounted_files(source: MountedSource, keys: list[str], mount_path: str, sub_path: str) -> list[MountedFile]:
    """The files ``source`` puts in one mount: all of them, or those at or under ``sub_path``."""
    files: list[MountedFile] = []
    for key, path in source.files(keys):
        path = path.strip("/")
        if not sub_path:
            files.append(MountedFile(source, key, f"{mount_path.rstrip('/')}/{path}"))
        elif path == sub_path:
            files.append(MountedFile(source, key, mount_path))
        elif path.startswith(sub_path + "/"):
            files.append(MountedFile(source, key, f"{mount_path.rstrip('/')}/{path[len(sub_path) + 1 :]}"))
    return files


def _volume_sources(volume: str, spec: Mapping[str, Any]) -> Iterator[MountedSource]:
    for field, kind, name_field in _VOLUME_KINDS:
        source = _source(volume, spec.get(field), kind, name_field)
        if source is not None:
            yield source
    projected = spec.get("projected")
    entries = projected.get("sources") if isinstance(projected, Mapping) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping):
            continue
        for field, kind, _ in _VOLUME_KINDS:
            source = _source(volume, entry.get(field), kind, "name")
            if source is not None:
                yield source


def _source(volume: str, spec: object, kind: SourceKind, name_field: str) -> MountedSource | None:
    if not isinstance(spec, Mapping):
        return None
    name = spec.get(name_field)
    if not isinstance(name, str) or not name:
        return None
    items = spec.get("items")
    listed = None
    if isinstance(items, list) and items:
        listed = tuple(
            (item["key"], item.get("path") or item["key"])
            for item in items
            if isinstance(item, Mapping) and isinstance(item.get("key"), str) and isinstance(item.get("path", ""), str)
        )
    return MountedSource(kind, name, volume, spec.get("optional") is True, listed)
