"""Synthetic clusters as plain Kubernetes manifests, for scale tests and demos.

Why a generator: the bundled Nova scenario is small and written by hand. The audit
must also stay fast and right on clusters with thousands of namespaces, and a test
at that size needs ground truth nobody typed. ``generate_manifests`` builds such a
cluster from a seed; ``write_manifests`` puts it on disk for the manifest loader,
the lab or ``kubectl apply``.

Choices that make the output trustworthy as ground truth:

* Every Service name carries its namespace's number (``orders-17`` lives only in
  ``gen-0017``), so a short name written outside its namespace can never resolve
  by accident: it is exactly the classic cross-namespace break, and the Service
  meant is unique.
* The broken share is exact, not a coin per reference: an error-diffusion counter
  with a random phase marks ``floor`` or ``ceil`` of ``broken_share`` times the
  cross-namespace hosts as short names.
* Value shapes (``host:port``, URLs, JDBC, gRPC targets, broker lists, multi-host
  DSNs, split host/port, ``$(VAR)`` expansion) and origins (``value``,
  ``configMapKeyRef``, ``secretKeyRef``, ``envFrom`` with and without ``prefix``)
  are drawn from shuffled bags, so every form shows up in every dozen references.
* Each workload lists its intended broken references in the annotation
  ``lab.novadiag.dev/expected-broken`` (``ENV=host`` pairs, comma separated), so a
  test can compare an audit with the truth without re-deriving it.
* Credentials live in Secrets (``stringData``) and contain ``NOVA-SECRET-``, so a
  test can grep any output for leaks.

Each namespace also gets a NetworkPolicy that admits ingress from its own pods and
from the other generated namespaces (selected by label): a real policy for the
planner to rewrite, which still lets every working cross-namespace name be ``ok``.

Pure and stdlib + PyYAML only; deterministic for a seed; the C YAML dumper is used
when PyYAML has it (several times faster for 100,000+ objects).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from novadiag.errors import ScenarioError

__all__ = ["generate_manifests", "main", "write_manifests"]

_DUMPER: Final = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

GENERATED_LABEL: Final = "lab.novadiag.dev/generated"
EXPECTED_BROKEN_ANNOTATION: Final = "lab.novadiag.dev/expected-broken"
CLUSTER_DOMAIN: Final = "cluster.local"

_CROSS_SHARE: Final = 0.4
"""Share of hosts that point into another namespace (when there is one)."""

_ROLES: Final = (
    "orders", "catalog", "billing", "search", "profile", "inventory", "payments",
    "shipping", "reviews", "checkout", "ledger", "pricing", "accounts", "sessions",
    "mailer", "reports", "analytics", "media", "recommend", "fraud", "audit", "tags",
    "quotes", "loyalty", "wishlist", "coupons", "carts", "ratings", "alerts", "export",
)  # fmt: skip

# protocol -> (container port name, port, URL scheme)
_PROTOCOLS: Final = {
    "http": ("http", 8080, "http"),
    "grpc": ("grpc", 9090, "grpc"),
    "postgres": ("tcp-postgres", 5432, "postgresql"),
    "redis": ("tcp-redis", 6379, "redis"),
}
_PROTOCOL_NAMES: Final = ("http", "http", "http", "http", "grpc", "grpc", "postgres", "redis")

_SHAPES: Final = (
    "hostport", "url", "dsn", "jdbc", "grpc", "brokers", "multihost", "split", "expand",
)  # fmt: skip
_ORIGINS: Final = (
    "value",
    "configMapKeyRef",
    "secretKeyRef",
    "envFrom",
    "envFromPrefix",
    "envFromSecret",
)
_ENV_PREFIX: Final = "UPSTREAM_"
_WORKING_FORMS: Final = ("{svc}.{ns}", "{svc}.{ns}.svc", "{svc}.{ns}.svc." + CLUSTER_DOMAIN)

_PLAIN_VALUES: Final = (
    ("LOG_LEVEL", ("debug", "info", "warn", "error")),
    ("JAVA_OPTS", ("-Xmx512m", "-Xmx1g -XX:+UseG1GC", "-Xms256m -Xmx256m")),
    ("FEATURE_FLAGS", ("true", "false")),
    ("APP_VERSION", ("1.0.0", "2.3.1", "0.9.14", "v3.2.0-rc.1")),
    ("DATA_DIR", ("/var/lib/app", "/data", "/tmp/cache")),
    ("WORKERS", ("1", "4", "16")),
    ("TIMEOUT", ("30s", "500ms", "2m")),
)


@dataclass(frozen=True, slots=True)
class _Service:
    ns_index: int
    index: int
    namespace: str
    name: str
    protocol: str
    port: int


_Host = tuple[str, bool, _Service]
"""A host as written, whether the name breaks, and the Service meant."""


class _Bag:
    """Draws items in shuffled rounds, so every item appears once per round."""

    def __init__(self, rng: random.Random, items: Sequence[str]) -> None:
        self._rng = rng
        self._items = tuple(items)
        self._round: list[str] = []

    def draw(self) -> str:
        if not self._round:
            self._round = list(self._items)
            self._rng.shuffle(self._round)
        return self._round.pop()


@dataclass
class _Env:
    """The env of one container as it is being built, with its backing objects."""

    env: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    secret: dict[str, str] = field(default_factory=dict)
    env_config: dict[str, str] = field(default_factory=dict)
    env_config_prefixed: dict[str, str] = field(default_factory=dict)
    env_secret: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    broken: list[str] = field(default_factory=list)


class _Generator:
    """Holds the random state; one instance builds one cluster."""

    def __init__(self, *, namespaces: int, workloads: int, broken_share: float, seed: int):
        self.rng = random.Random(seed)
        self.n_ns = namespaces
        self.n_wl = workloads
        self.broken_share = broken_share
        self.phase = self.rng.random()
        self.shapes = _Bag(self.rng, _SHAPES)
        self.origins = _Bag(self.rng, _ORIGINS)
        width = max(4, len(str(namespaces - 1)))
        self.ns_names = [f"gen-{i:0{width}d}" for i in range(namespaces)]
        self.services = [[self._service(i, j) for j in range(workloads)] for i in range(namespaces)]

    def _service(self, ns_index: int, j: int) -> _Service:
        role = _ROLES[j % len(_ROLES)] + (str(j // len(_ROLES)) if j >= len(_ROLES) else "")
        protocol = self.rng.choice(_PROTOCOL_NAMES)
        suffix = {"postgres": "-db", "redis": "-cache"}.get(protocol, "")
        port = _PROTOCOLS[protocol][1]
        name = f"{role}{suffix}-{ns_index}"
        return _Service(ns_index, j, self.ns_names[ns_index], name, protocol, port)

    # -- hosts ---------------------------------------------------------------------

    def _below(self, n: int) -> int:
        """A random int in ``[0, n)``; ``random()`` is several times faster than ``randrange``."""
        return int(self.rng.random() * n)

    def _target(self, src: _Service) -> _Service:
        """Another Service: in another namespace with ``_CROSS_SHARE``, else a neighbour."""
        if self.n_ns > 1 and (self.n_wl == 1 or self.rng.random() < _CROSS_SHARE):
            other = self._below(self.n_ns - 1)
            other += other >= src.ns_index
            return self.services[other][self._below(self.n_wl)]
        local = self.services[src.ns_index]
        if self.n_wl == 1:
            return local[0]
        j = self._below(self.n_wl - 1)
        return local[j + (j >= src.index)]

    def _host(self, src: _Service, target: _Service) -> tuple[str, bool]:
        """The name written for ``target`` from ``src``'s namespace, and whether it breaks."""
        if target.ns_index == src.ns_index:
            return target.name, False
        self.phase += self.broken_share
        if self.phase >= 1.0:
            self.phase -= 1.0
            return target.name, True
        form = _WORKING_FORMS[self._below(len(_WORKING_FORMS))]
        return form.format(svc=target.name, ns=target.namespace), False

    def _hosts(self, src: _Service, count: int) -> list[_Host]:
        """``count`` hosts naming distinct Services (fewer if there are not enough)."""
        if count == 1:
            target = self._target(src)
            return [(*self._host(src, target), target)]
        targets: list[_Service] = []
        for _ in range(3 * count):
            target = self._target(src)
            if all(target is not t for t in targets):
                targets.append(target)
                if len(targets) == count:
                    break
        return [(*self._host(src, t), t) for t in targets]

    # -- env -----------------------------------------------------------------------

    def _secret_value(self) -> str:
        return f"NOVA-SECRET-gen-{self.rng.getrandbits(32):08x}"

    def _unique(self, acc: _Env, base: str) -> str:
        name, n = base, 1
        while name in acc.names:
            n += 1
            name = f"{base}_{n}"
        acc.names.add(name)
        return name

    def _reference(self, src: _Service, acc: _Env) -> None:
        shape, origin = self.shapes.draw(), self.origins.draw()
        multi = shape in ("brokers", "multihost")
        hosts = self._hosts(src, 2 + self._below(2) if multi else 1)
        host, _, target = hosts[0]
        port = target.port
        base = host.split(".", 1)[0].upper().replace("-", "_")
        if shape in ("dsn", "multihost"):
            origin = "envFromSecret" if origin.startswith("envFrom") else "secretKeyRef"
        if shape == "split":
            if origin in ("configMapKeyRef", "secretKeyRef"):
                origin = "value"
            name = self._unique(acc, base)
            self._put(acc, origin, f"{name}_HOST", host, f"{name}_PORT", str(port))
            self._mark(acc, origin, f"{name}_HOST", hosts)
            return
        if shape == "expand":
            name = self._unique(acc, base)
            acc.env.append({"name": f"{name}_PORT", "value": str(port)})
            url = f"http://{host}:$({name}_PORT)/"
            acc.env.append({"name": f"{name}_URL", "value": url})
            self._mark(acc, "value", f"{name}_URL", hosts)
            return
        value, suffix = self._value(shape, src, hosts)
        name = self._unique(acc, base + suffix if not multi else suffix.lstrip("_"))
        self._put(acc, origin, name, value)
        self._mark(acc, origin, name, hosts)

    def _value(self, shape: str, src: _Service, hosts: list[_Host]) -> tuple[str, str]:
        """The env value for one shape, and the suffix of its variable's name."""
        host, _, target = hosts[0]
        port = target.port
        joined = ",".join(f"{h}:{t.port}" for h, _, t in hosts)
        if shape == "hostport":
            return f"{host}:{port}", "_ADDR"
        if shape == "url":
            return f"{_PROTOCOLS[target.protocol][2]}://{host}:{port}/", "_URL"
        if shape == "dsn":
            return f"postgresql://{src.name}:{self._secret_value()}@{host}:{port}/app", "_DSN"
        if shape == "jdbc":
            return f"jdbc:postgresql://{host}:{port}/app?sslmode=disable", "_JDBC_URL"
        if shape == "grpc":
            return f"dns:///{host}:{port}", "_GRPC_TARGET"
        if shape == "brokers":
            return joined, "_KAFKA_BROKERS"
        secret = self._secret_value()
        return f"mongodb://{src.name}:{secret}@{joined}/app?replicaSet=rs0", "_MONGO_URI"

    def _put(self, acc: _Env, origin: str, name: str, value: str, *extra: str) -> None:
        pairs = [(name, value), *zip(extra[::2], extra[1::2], strict=True)]
        for key, val in pairs:
            if origin == "value":
                acc.env.append({"name": key, "value": val})
            elif origin in ("configMapKeyRef", "secretKeyRef"):
                data = acc.config if origin == "configMapKeyRef" else acc.secret
                ref_key = key.lower().replace("_", ".")
                data[ref_key] = val
                ref = {"name": "", "key": ref_key}  # name filled in by _workload
                acc.env.append({"name": key, "valueFrom": {origin: ref}})
            elif origin == "envFrom":
                acc.env_config[key] = val
            elif origin == "envFromPrefix":
                acc.env_config_prefixed[key] = val
            else:
                acc.env_secret[key] = val

    def _mark(self, acc: _Env, origin: str, name: str, hosts: list[_Host]) -> None:
        env = _ENV_PREFIX + name if origin == "envFromPrefix" else name
        acc.broken.extend(f"{env}={h}" for h, broken, _ in hosts if broken)

    def _plain(self, acc: _Env) -> None:
        for name, choices in self.rng.sample(_PLAIN_VALUES, self.rng.randint(1, 3)):
            acc.env.insert(0, {"name": name, "value": self.rng.choice(choices)})

    # -- objects -------------------------------------------------------------------

    def namespace_objects(self, i: int) -> list[dict[str, Any]]:
        objects = [self._network_policy(self.ns_names[i])]
        for svc in self.services[i]:
            objects.extend(self._workload(svc))
        return objects

    def namespace(self, i: int) -> dict[str, Any]:
        name = self.ns_names[i]
        env = "staging" if i % 10 == 9 else "prod"
        labels = {"kubernetes.io/metadata.name": name, "environment": env, GENERATED_LABEL: "true"}
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        }

    def _network_policy(self, ns: str) -> dict[str, Any]:
        generated = {"namespaceSelector": {"matchLabels": {GENERATED_LABEL: "true"}}}
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-same-namespace", "namespace": ns},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {}}]}, {"from": [generated]}],
            },
        }

    def _workload(self, svc: _Service) -> list[dict[str, Any]]:
        acc = _Env()
        for _ in range(1 + self._below(10)):
            self._reference(svc, acc)
        self._plain(acc)
        ns, name = svc.namespace, svc.name
        objects: list[dict[str, Any]] = []
        cm, secret = f"{name}-config", f"{name}-secret"
        for item in acc.env:
            ref = item.get("valueFrom", {})
            for kind, obj_name in (("configMapKeyRef", cm), ("secretKeyRef", secret)):
                if kind in ref:
                    ref[kind]["name"] = obj_name
        env_from: list[dict[str, Any]] = []
        if acc.config:
            objects.append(_config_map(ns, cm, acc.config))
        if acc.secret:
            objects.append(_secret(ns, secret, acc.secret))
        if acc.env_config:
            objects.append(_config_map(ns, f"{name}-env", acc.env_config))
            env_from.append({"configMapRef": {"name": f"{name}-env"}})
        if acc.env_config_prefixed:
            objects.append(_config_map(ns, f"{name}-upstreams", acc.env_config_prefixed))
            env_from.append({"prefix": _ENV_PREFIX, "configMapRef": {"name": f"{name}-upstreams"}})
        if acc.env_secret:
            objects.append(_secret(ns, f"{name}-env-secret", acc.env_secret))
            env_from.append({"secretRef": {"name": f"{name}-env-secret"}})
        objects.append(self._controller(svc, acc, env_from))
        objects.append(_service_object(svc))
        return objects

    def _controller(
        self, svc: _Service, acc: _Env, env_from: list[dict[str, Any]]
    ) -> dict[str, Any]:
        port_name = _PROTOCOLS[svc.protocol][0]
        container: dict[str, Any] = {
            "name": svc.name,
            "image": f"example.com/generated/{svc.protocol}-app:1.{svc.ns_index % 50}.0",
            "ports": [{"name": port_name, "containerPort": svc.port}],
            "env": acc.env,
        }
        if env_from:
            container["envFrom"] = env_from
        labels = {"app": svc.name}
        spec: dict[str, Any] = {
            "replicas": self.rng.randint(1, 3),
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}},
        }
        stateful = svc.protocol in ("postgres", "redis")
        if stateful:
            spec["serviceName"] = svc.name
        metadata: dict[str, Any] = {
            "name": svc.name,
            "namespace": svc.namespace,
            "labels": dict(labels),
        }
        if acc.broken:
            metadata["annotations"] = {EXPECTED_BROKEN_ANNOTATION: ",".join(acc.broken)}
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet" if stateful else "Deployment",
            "metadata": metadata,
            "spec": spec,
        }


def _config_map(ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


def _secret(ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "Opaque",
        "stringData": data,
    }


def _service_object(svc: _Service) -> dict[str, Any]:
    port_name = _PROTOCOLS[svc.protocol][0]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": svc.name, "namespace": svc.namespace, "labels": {"app": svc.name}},
        "spec": {
            "selector": {"app": svc.name},
            "ports": [
                {"name": port_name, "port": svc.port, "targetPort": port_name, "protocol": "TCP"}
            ],
        },
    }


def generate_manifests(
    *,
    namespaces: int,
    workloads_per_namespace: int = 5,
    broken_share: float = 0.1,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Build a synthetic cluster as Kubernetes objects, Namespaces first.

    Args:
        namespaces: how many namespaces (``gen-0000`` ...).
        workloads_per_namespace: Deployments/StatefulSets per namespace, each with a Service.
        broken_share: share of cross-namespace hosts written as short names (broken).
        seed: the same seed gives the same objects.

    >>> objs = generate_manifests(namespaces=2, workloads_per_namespace=1)
    >>> [o["kind"] for o in objs][:2]
    ['Namespace', 'Namespace']
    """
    if namespaces < 1 or workloads_per_namespace < 1:
        raise ScenarioError("namespaces and workloads_per_namespace must be at least 1")
    if not 0.0 <= broken_share <= 1.0:
        raise ScenarioError(f"broken_share must be between 0 and 1, not {broken_share}")
    # The objects are acyclic, so reference counting frees them; the cyclic collector
    # would only rescan the growing heap over and over (more than half the run time).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(namespaces, workloads_per_namespace, broken_share, seed)
    finally:
        if gc_was_enabled:
            gc.enable()


def _generate(
    namespaces: int, workloads: int, broken_share: float, seed: int
) -> list[dict[str, Any]]:
    gen = _Generator(
        namespaces=namespaces,
        workloads=workloads,
        broken_share=broken_share,
        seed=seed,
    )
    objects = [gen.namespace(i) for i in range(namespaces)]
    for i in range(namespaces):
        objects.extend(gen.namespace_objects(i))
    return objects


def write_manifests(
    objects: Iterable[Mapping[str, Any]],
    directory: str | os.PathLike[str],
    *,
    per_file: int = 500,
) -> list[Path]:
    """Write ``objects`` as multi-document YAML, ``per_file`` objects per file, in order.

    Files are ``manifests-0000.yaml``, ``manifests-0001.yaml`` ...; stale files of
    that pattern in ``directory`` are removed first, so a smaller run never mixes
    with a bigger earlier one. Returns the paths written.
    """
    if per_file < 1:
        raise ScenarioError(f"per_file must be at least 1, not {per_file}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("manifests-*.yaml"):
        stale.unlink()
    items = [dict(o) for o in objects]
    width = max(4, len(str(max(0, len(items) - 1) // per_file)))
    paths: list[Path] = []
    for number, start in enumerate(range(0, len(items), per_file)):
        path = out / f"manifests-{number:0{width}d}.yaml"
        with path.open("w", encoding="utf-8") as fh:
            yaml.dump_all(
                items[start : start + per_file],
                fh,
                Dumper=_DUMPER,
                sort_keys=False,
                default_flow_style=False,
                explicit_start=True,
            )
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m novadiag.lab.generate --namespaces 200 --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m novadiag.lab.generate",
        description="Write a synthetic cluster (manifests with broken cross-namespace names).",
    )
    parser.add_argument("--namespaces", type=int, required=True)
    parser.add_argument("--workloads", type=int, default=5, help="workloads per namespace")
    parser.add_argument(
        "--broken-share",
        type=float,
        default=0.1,
        help="share of cross-namespace references written as short names",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-file", type=int, default=500, help="objects per YAML file")
    parser.add_argument("--out", required=True, help="directory to write into")
    args = parser.parse_args(argv)
    try:
        objects = generate_manifests(
            namespaces=args.namespaces,
            workloads_per_namespace=args.workloads,
            broken_share=args.broken_share,
            seed=args.seed,
        )
        paths = write_manifests(objects, args.out, per_file=args.per_file)
    except ScenarioError as exc:
        parser.error(str(exc))
    print(f"{len(objects)} objects in {len(paths)} files under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
