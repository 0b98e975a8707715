"""Synthetic clusters of the benchmark sizes, as a snapshot file and as a lab scenario.

A thin layer over :mod:`novadiag.lab.generate`, which already writes realistic
clusters with ground truth: every reference form the parser knows (values,
ConfigMap/Secret keys, ``envFrom`` with and without prefix, URLs, DSNs, JDBC,
gRPC targets, broker lists, split host/port, ``$(VAR)`` expansion), 1–10
references per workload, a NetworkPolicy per namespace and an exact share of
broken cross-namespace short names. What it adds:

* **Fewer Services than workloads.** Size L has 2,000 namespaces, 20,000
  Services and 50,000 workloads, as real clusters do (workers, jobs and
  consumers have no Service). The generator gives every workload a Service, so
  the workloads past the ``services`` first of a namespace lose theirs, and
  references only ever name the workloads that keep one (so the broken share
  stays exactly the generator's).
* **Replicas 0 for the lab.** A lab of 50,000 workloads cannot run 100,000 pod
  processes on one machine; with ``replicas: 0`` the objects are in the API
  server (what listing measures) and no pod starts.
* **Writers:** a snapshot file (``Snapshot.save``, what ``novadiag audit
  --snapshot`` reads) and a lab scenario directory (JSON manifests, which the
  scenario loader reads much faster than YAML at this size).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novadiag.lab import generate as base
from novadiag.model import SourceInfo
from novadiag.snapshot import build_snapshot


@dataclass(frozen=True)
class Size:
    """One benchmark size: namespaces, Services and workloads in the whole cluster."""

    name: str
    namespaces: int
    services: int
    workloads: int

    @property
    def workloads_per_namespace(self) -> int:
        return self.workloads // self.namespaces

    @property
    def services_per_namespace(self) -> int:
        return self.services // self.namespaces


SIZES: Mapping[str, Size] = {
    "S": Size("S", namespaces=50, services=400, workloads=1_000),
    "M": Size("M", namespaces=500, services=4_000, workloads=10_000),
    "L": Size("L", namespaces=2_000, services=20_000, workloads=50_000),
}
"""S and M with 0.4 Service per workload, and L five times M."""


class _ServiceShareGenerator(base._Generator):
    """The lab generator with only the first ``services`` workloads of a namespace behind a Service."""

    def __init__(self, *, size: Size, broken_share: float, seed: int) -> None:
        super().__init__(
            namespaces=size.namespaces,
            workloads=size.workloads_per_namespace,
            broken_share=broken_share,
            seed=seed,
        )
        self.n_svc = max(1, min(size.services_per_namespace, size.workloads_per_namespace))

    def _target(self, src: base._Service) -> base._Service:
        """Like the base: another namespace with its cross share, else a neighbour; never one without a Service."""
        if self.n_ns > 1 and (self.n_svc == 1 or self.rng.random() < base._CROSS_SHARE):
            other = self._below(self.n_ns - 1)
            other += other >= src.ns_index
            return self.services[other][self._below(self.n_svc)]
        local = self.services[src.ns_index]
        if src.index >= self.n_svc:
            return local[self._below(self.n_svc)]
        if self.n_svc == 1:
            return local[0]
        j = self._below(self.n_svc - 1)
        return local[j + (j >= src.index)]

    def _workload(self, svc: base._Service) -> list[dict[str, Any]]:
        objects = super()._workload(svc)
        if svc.index < self.n_svc:
            return objects
        return [o for o in objects if o["kind"] != "Service"]


def generate_objects(
    size: Size, *, seed: int = 0, broken_share: float = 0.1, replicas: int | None = None
) -> list[dict[str, Any]]:
    """The cluster of ``size`` as raw objects, Namespaces first; ``replicas`` overrides every workload's."""
    gen = _ServiceShareGenerator(size=size, broken_share=broken_share, seed=seed)
    enabled = gc.isenabled()
    gc.disable()  # acyclic objects: the cyclic collector would only rescan a growing heap
    try:
        objects = [gen.namespace(i) for i in range(size.namespaces)]
        for i in range(size.namespaces):
            objects.extend(gen.namespace_objects(i))
    finally:
        if enabled:
            gc.enable()
    if replicas is not None:
        for obj in objects:
            if obj["kind"] in ("Deployment", "StatefulSet"):
                obj["spec"]["replicas"] = replicas
    return objects


def count_kinds(objects: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in objects:
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    return counts


def write_snapshot(objects: Iterable[Mapping[str, Any]], path: Path) -> Path:
    """A snapshot file as ``novadiag snapshot save`` writes it (Secrets sanitized on the way in)."""
    source = SourceInfo("manifests", context="benchmark", locations=(str(path),))
    build_snapshot(objects, source).save(path)  # type: ignore[arg-type]
    return path


def write_scenario(
    objects: list[dict[str, Any]], directory: Path, *, name: str, replicas: int | None = None, per_file: int = 5_000
) -> Path:
    """A lab scenario directory: ``scenario.yaml`` and JSON manifest files of ``per_file`` objects."""
    directory.mkdir(parents=True, exist_ok=True)
    manifests = directory / "manifests"
    manifests.mkdir(exist_ok=True)
    for stale in manifests.glob("objects-*.json"):
        stale.unlink()
    for number, chunk in enumerate(_chunks(objects, per_file)):
        listing = {"apiVersion": "v1", "kind": "List", "items": chunk}
        (manifests / f"objects-{number:04d}.json").write_text(json.dumps(listing, separators=(",", ":")))
    shown = "as generated" if replicas is None else str(replicas)
    description = f"benchmark cluster {name}: {len(objects)} objects, workload replicas {shown}"
    # Every generated namespace isolates its pods for ingress; enforcing that costs the lab
    # (pods x isolated pods) decisions per update, which the benchmark does not measure.
    meta = {"name": name, "description": description, "manifests": ["manifests"], "network_policies": "store"}
    (directory / "scenario.yaml").write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
