"""References in config files a container mounts from ConfigMaps and Secrets.

:mod:`novadiag.mounts` says which keys a container reads as files,
:mod:`novadiag.configformats` reads each file's values, and
:func:`~novadiag.hostgrammar.parse_value` reads each value, with the value's
key as the hint an env var's name is. Config files are full of words that
only look like hosts, so precision wins over recall here: a host counts only
when :meth:`~novadiag.clusternames.ClusterNames.names_cluster_host` says it
names something in the cluster (and not the workload itself). ``localhost``,
IPs, ``${env:MY_POD_IP}`` placeholders and paths never do.

A Secret's data is read only as :func:`~novadiag.redaction.sanitize_secret`
left it: a one-value file (a DSN) as its scheme, hosts and ports; a config
file (``config.yaml``) as its host-naming values only, in the sanitized form
:mod:`novadiag.configformats` reads back; anything else as ``<redacted>``.

Each reference has ``env`` None, ``origin`` ``file:configMap/NAME/KEY`` (or
``file:secret/...``) and ``location`` the key path inside the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from novadiag.clusternames import ClusterNames
from novadiag.configformats import ParsedFile, read_config
from novadiag.hostgrammar import HostPort, parse_port, parse_value
from novadiag.model import Finding, Gap, Reference
from novadiag.mounts import MountedFile, MountedSource, container_mounts, mounted_files, pod_sources
from novadiag.redaction import redact

if TYPE_CHECKING:
    from novadiag.workloads import Workload


class ConfigSources(Protocol):
    """ConfigMap/Secret data of one run (Secrets sanitized), and where findings about them go."""

    findings: list[Finding]
    parsed_files: dict[tuple[str, str, str, str, str], ParsedFile]
    """Each file parsed once a run, however many workloads mount it: (kind, namespace, name, key, file name)."""

    def data(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def binary_keys(self, kind: str, namespace: str, name: str) -> frozenset[str]: ...

    def gap(self, kind: str, namespace: str) -> Gap | None: ...


def file_origin(kind: str, name: str, key: str) -> str:
    """``file:configMap/NAME/KEY`` or ``file:secret/NAME/KEY``: the contract's ``origin`` of a file reference."""
    return f"file:{'secret' if kind == 'Secret' else 'configMap'}/{name}/{key}"


def file_references(
    workload: Workload, container: Mapping[str, Any], init: bool, sources: ConfigSources, names: ClusterNames
) -> list[Reference]:
    """Every cluster host named in a file one container mounts from a ConfigMap or Secret."""
    reader = _FileReader(workload, str(container.get("name") or ""), init, sources, names)
    found: dict[tuple[str, str, str, int | None], Reference] = {}
    for file in reader.files(container):
        for reference in reader.references(file):
            found.setdefault((reference.origin, reference.location or "", reference.host, reference.port), reference)
    return list(found.values())


class _FileReader:
    """One container's mounted files and the hosts they name."""

    def __init__(
        self, workload: Workload, container: str, init: bool, sources: ConfigSources, names: ClusterNames
    ) -> None:
        self.workload = workload
        self.container = container
        self.init = init
        self.sources = sources
        self.names = names
        self.own_names = (workload.ref.name,)

    def files(self, container: Mapping[str, Any]) -> Iterator[MountedFile]:
        """Each mounted key once, however many mounts show it."""
        volumes = pod_sources(self.workload.pod_spec)
        seen: set[tuple[str, str, str]] = set()
        for volume, mount_path, sub_path in container_mounts(container):
            for source in volumes.get(volume, ()):
                keys = self._keys(source)
                if keys is None:
                    continue
                for file in mounted_files(source, keys, mount_path, sub_path):
                    if (source.kind, source.name, file.key) not in seen:
                        seen.add((source.kind, source.name, file.key))
                        yield file

    def _keys(self, source: MountedSource) -> list[str] | None:
        """The keys of the source's object (None when it cannot be read), with findings as for env sources."""
        ns = self.workload.namespace
        data = self.sources.data(source.kind, ns, source.name)
        where = f"{self.workload.ref} container {self.container} {source.describe()}"
        what = f"{source.kind} {ns}/{source.name}"
        if data is None:
            gap = self.sources.gap(source.kind, ns)
            if gap is not None:
                code = "secret-unreadable" if source.kind == "Secret" else "config-unreadable"
                why = f"could not be read ({gap.reason}), so the hosts its files name are unknown"
                self._warn(code, f"{where}: {what} {why}")
            elif not source.optional:
                self._warn("missing-config-source", f"{where}: {what} does not exist")
            return None
        keys = [str(key) for key in data]
        present = set(keys) | self.sources.binary_keys(source.kind, ns, source.name)
        for key, _path in source.items or ():
            if key not in present and not source.optional:
                self._warn("missing-config-source", f"{where}: {what} has no key {key!r}")
        return keys

    def references(self, file: MountedFile) -> Iterator[Reference]:
        source = file.source
        text = (self.sources.data(source.kind, self.workload.namespace, source.name) or {}).get(file.key)
        if not isinstance(text, str):
            return
        origin = file_origin(source.kind, source.name, file.key)
        cache_key = (source.kind, self.workload.namespace, source.name, file.key, file.file_name)
        parsed = self.sources.parsed_files.get(cache_key)
        if parsed is None:
            parsed = self.sources.parsed_files[cache_key] = read_config(file.file_name, text)
        if parsed.problem is not None:
            self._warn(
                "malformed-config-file",
                f"{self.workload.ref} container {self.container} file {file.path} ({origin}): "
                f"{parsed.problem}; read as plain text",
            )
        for value in parsed.values:
            for host in self._cluster_hosts(value.hint, value.value):
                port = host.port if host.port is not None else parse_port(value.port or "")
                yield Reference(
                    workload=self.workload.ref,
                    container=self.container,
                    env=None,
                    origin=origin,
                    reference=redact(value.value),
                    host=host.host,
                    port=port,
                    scheme=host.scheme,
                    init_container=self.init,
                    location=value.location,
                )

    def _cluster_hosts(self, hint: str, value: str) -> list[HostPort]:
        hosts = parse_value(hint, value)
        return [h for h in hosts if self.names.names_cluster_host(h.host, own_names=self.own_names)]

    def _warn(self, code: str, message: str) -> None:
        self.sources.findings.append(Finding("warning", code, message, self.workload.ref))
