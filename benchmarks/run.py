"""``python -m benchmarks.run``: how novadiag scales, against the floor of each measurement.

The floor is physical: a cluster's objects have to be transferred and parsed
once. Each measurement is therefore printed next to a floor measured in the
same run, on the same data, so the ratio says what novadiag adds:

* **static** — ``novadiag.audit(snapshot=FILE)`` against ``json.loads`` of the
  same file (``floor``; and ``floor-nogc``, the same parse with the cyclic
  garbage collector paused, which is what the parse itself costs). Targets: wall
  time at most 2.5× the floor, peak RSS at most 2× the floor's. A report builds
  its networkx graph on first use, which an audit does not make; the line times
  that build apart (``graph_s``, ``graph_rss_mb``, ``with_graph_vs_floor``).
* **listing** — the lab serves the cluster (workloads at ``replicas: 0``, so
  the objects are there and no pod runs); ``list-novadiag`` is
  ``load_cluster_snapshot`` (what an audit reads), ``list-bare`` a paginated
  raw-JSON listing of the same kinds over the same client, one kind after the
  other, ``list-typed`` the same lists through the official client's typed
  models. Targets: one paginated list per kind (the API server's request count
  is compared with ``ceil(objects / page size)`` per kind), wall at most 1.5×
  bare, typed at least 5× slower than novadiag. novadiag lists four kinds at a
  time, so ``list-bare-par`` is the bare listing done the same way: its ratio
  (``wall_vs_bare_par``) says what novadiag's own work costs, apart from the
  overlap. The bare listing drops each page once decoded, and a listing that
  returns the cluster cannot: ``list-bare-kept`` keeps every page, with the
  garbage collector paused as novadiag pauses it, so ``wall_vs_bare_kept``
  says what novadiag adds to holding the decoded cluster in memory (no target:
  it explains growth). Each line also reports the child's system CPU time and
  minor page faults, the price of fresh memory.
* **report** — the static audit followed by writing its report, as the CLI
  writes ``-o``: ``report-json`` streams the JSON document (compact),
  ``report-json-dict`` builds it whole first (``json.dumps`` of ``to_dict()``
  indented, how it was written before streaming), ``report-table`` the default
  table (broken edges listed, the rest counted) as plain text, as ``-o`` and a
  pipe get it, ``report-html`` the HTML page; ``report-table-rich`` and
  ``report-markdown`` (run only when named in ``--report-modes``) are the
  table through rich, as a terminal gets it, and the Markdown report.
  ``wall_added`` is the write's time over the audit's in the same child,
  ``rss_added`` the peak RSS over the ``static`` line's, minus one: what
  writing the report adds to the audit, as a share of it (targets for the
  JSON report: at most 0.25 each).
* **startup** — the command line as a user starts it, each a fresh process,
  against ``python -c pass`` (``python``) in the same run: ``novadiag
  --version`` (``version``), and an audit of the Nova scenario's manifests
  written as JSON to /dev/null (``audit-json``) and as the default table into
  a pipe (``audit-table``). Best and median of ``--startup-runs`` runs; targets
  on the medians: ``--version`` at most 3× ``python -c pass``, each audit at
  most 6×. Once per run, not per size.
* **probes** — ``novadiag.audit(kubeconfig=..., probe=True)`` against the lab:
  probe pods created must equal the (namespace, DNS settings) groups, and the
  audit's wall time is compared with the slowest probe pod's lifetime (target:
  at most 2×) and with the waves that ``--probe-concurrency`` imposes.

Every measurement runs in a fresh interpreter (``--child``), so its peak RSS
(``VmHWM``) is its own; every child imports novadiag first, floors included,
so library imports weigh the same on both sides (``base_rss_mb``). Each line
is the median of ``--repeat`` runs. Sizes and data: :mod:`benchmarks.generate`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.generate import SIZES, Size, count_kinds, generate_objects, write_scenario, write_snapshot

GENERATOR_VERSION = 1
"""Bump when the generated data changes, so cached files are rebuilt."""

TARGETS: Mapping[str, tuple[str, float]] = {
    "wall_vs_floor": ("<=", 2.5),
    "rss_vs_floor": ("<=", 2.0),
    "wall_vs_bare": ("<=", 1.5),
    "typed_vs_novadiag": (">=", 5.0),
    "wall_vs_slowest_pod": ("<=", 2.0),
    "requests_vs_expected": ("<=", 1.0),
    "json_wall_added": ("<=", 0.25),
    "json_rss_added": ("<=", 0.25),
    "version_vs_python": ("<=", 3.0),
    "audit_json_vs_python": ("<=", 6.0),
    "audit_table_vs_python": ("<=", 6.0),
}
RESULT_PREFIX = "BENCH-RESULT "
PROFILE_LINES = 45
MEASUREMENTS = ("startup", "static", "report", "listing", "probes")
REPORT_MODES = ("report-json", "report-json-dict", "report-table", "report-html")
OPTIONAL_REPORT_MODES = ("report-table-rich", "report-markdown")
NOVA_MANIFESTS = Path(__file__).resolve().parent.parent / "novadiag" / "lab" / "scenarios" / "nova" / "manifests"
PROBE_TIMEOUT = 600.0
"""Each probe pod's deadline in the benchmark: at high concurrency on 2 cores a pod takes minutes."""


# -- children: one measurement each, in a fresh interpreter ------------------------------


def _rss_mb() -> float:
    """Peak RSS of this process (``VmHWM``): ``ru_maxrss`` would inherit a big parent's peak across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, target: str, concurrency: int, page_size: int, timeout: float) -> dict[str, Any]:
    import gc

    import novadiag.pipeline  # noqa: F401  (every child carries the same imports)

    base = _rss_mb()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    start, cpu = time.perf_counter(), time.process_time()
    out: dict[str, Any] = {}
    results: list[Any] = []  # alive until the clock stops, like `data` and `report` below
    if mode in ("floor", "floor-nogc"):
        if mode == "floor-nogc":
            gc.disable()
        data = json.loads(Path(target).read_bytes())
        out["objects"] = sum(len(v) for v in data["objects"].values())
    elif mode == "static":
        report = novadiag.pipeline.audit(snapshot=target)
        out.update(edges=len(report.edges), broken=sum(1 for e in report.edges if e.broken))
    elif mode in REPORT_MODES + OPTIONAL_REPORT_MODES:
        report = novadiag.pipeline.audit(snapshot=target)
        out.update(edges=len(report.edges), **_write_report(report, mode, Path(f"{target}.{mode}.out")))
    elif mode == "profile":
        out["profile"] = _profile(target)
    elif mode.startswith("list-"):
        out.update(_child_listing(mode, target, page_size, results))
    elif mode == "probes":
        out.update(_child_probes(target, concurrency, page_size, timeout))
    else:
        raise SystemExit(f"unknown child mode {mode}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.update(wall_s=time.perf_counter() - start, cpu_s=time.process_time() - cpu, peak_rss_mb=_rss_mb())
    out.update(sys_s=usage.ru_stime - usage_before.ru_stime, minor_faults=usage.ru_minflt - usage_before.ru_minflt)
    out["base_rss_mb"] = base
    if mode == "static":  # the graph is built on first use, after the clock: timed apart
        graph_start = time.perf_counter()
        out.update(graph_edges=report.graph.number_of_edges(), graph_s=time.perf_counter() - graph_start)
        out["graph_rss_mb"] = _rss_mb()
    return out


def _write_report(report: Any, mode: str, path: Path) -> dict[str, Any]:
    """Write the report as the CLI writes ``-o``; how long that took and how big the file is."""
    from novadiag.outputs import write_output, write_output_chunks
    from novadiag.report.plaintable import plain_table_chunks
    from novadiag.report.streaming import report_chunks

    start = time.perf_counter()
    if mode == "report-json":
        write_output_chunks(path, report_chunks(report, "json"))
    elif mode == "report-json-dict":
        write_output(path, report.to_json(indent=2))
    elif mode == "report-table":
        write_output_chunks(path, plain_table_chunks(report))
    elif mode == "report-table-rich":
        write_output(path, report.render("table"))
    else:
        write_output(path, report.render(mode.removeprefix("report-")))
    written = {"report_s": time.perf_counter() - start, "file_mb": path.stat().st_size / 1e6}
    path.unlink()
    return written


def _profile(snapshot: str) -> str:
    """The static audit under pyinstrument (``pip install -e '.[bench]'``): its call tree, top entries."""
    from pyinstrument import Profiler

    import novadiag.pipeline

    profiler = Profiler(interval=0.002)
    profiler.start()
    novadiag.pipeline.audit(snapshot=snapshot)
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    tree = [line for line in text.splitlines() if "|" in line or "`-" in line]
    return "\n".join(tree[:PROFILE_LINES])


def _child_listing(mode: str, kubeconfig: str, page_size: int, results: list[Any]) -> dict[str, Any]:
    """One listing; what it returns goes to ``results``, to be freed after the clock stops.

    The static lines keep their result (the parsed file, the report) until
    they are timed; a listing's snapshot is kept the same way, so freeing it
    (0.66 s at L) is not counted as listing.
    """
    from novadiag.kube import KubeClient, KubeSettings
    from novadiag.listing import load_cluster_snapshot

    settings = KubeSettings(kubeconfig=kubeconfig, page_size=page_size)
    if mode == "list-typed":
        return {"objects": _typed_listing(kubeconfig, page_size)}
    with KubeClient(settings) as client:
        if mode == "list-novadiag":
            snap = load_cluster_snapshot(client, source_kind="lab")
            results.append(snap)
            return {"objects": sum(snap.count().values()), "client_requests": client.requests_made}
        if mode == "list-bare-par":
            return {"objects": _bare_listing_parallel(client, page_size), "client_requests": client.requests_made}
        if mode == "list-bare-kept":
            from novadiag.snapshot import paused_gc

            with paused_gc():
                count = _bare_listing(client, page_size, keep=results)
            return {"objects": count, "client_requests": client.requests_made}
        return {"objects": _bare_listing(client, page_size), "client_requests": client.requests_made}


def _bare_listing(client: Any, page_size: int, keep: list[Any] | None = None) -> int:
    """Every kind novadiag reads, page by page, ``json.loads`` of each page and nothing else (pages to ``keep``)."""
    from novadiag.model import SNAPSHOT_KINDS

    return sum(_bare_kind(client, kind, page_size, keep) for kind in SNAPSHOT_KINDS)


def _bare_listing_parallel(client: Any, page_size: int) -> int:
    """The bare listing with as many kinds at once as novadiag lists (Namespaces first, as it does)."""
    from concurrent.futures import ThreadPoolExecutor

    from novadiag.listing import LIST_WORKERS
    from novadiag.model import SNAPSHOT_KINDS

    count = _bare_kind(client, "Namespace", page_size)
    with ThreadPoolExecutor(max_workers=LIST_WORKERS) as pool:
        kinds = [kind for kind in SNAPSHOT_KINDS if kind != "Namespace"]
        return count + sum(pool.map(lambda kind: _bare_kind(client, kind, page_size), kinds))


def _bare_kind(client: Any, kind: str, page_size: int, keep: list[Any] | None = None) -> int:
    from novadiag.kube import KINDS, NotFoundError

    count, path, token = 0, KINDS[kind].path(), None
    while True:
        query = {"limit": page_size, **({"continue": token} if token else {})}
        try:
            page = json.loads(client.request("GET", path, query=query))
        except NotFoundError:
            break
        count += len(page.get("items") or ())
        if keep is not None:
            keep.append(page)
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            break
    return count


_TYPED_LISTS: Mapping[str, tuple[str, str]] = {
    "Namespace": ("CoreV1Api", "list_namespace"),
    "Service": ("CoreV1Api", "list_service_for_all_namespaces"),
    "Endpoints": ("CoreV1Api", "list_endpoints_for_all_namespaces"),
    "EndpointSlice": ("DiscoveryV1Api", "list_endpoint_slice_for_all_namespaces"),
    "Pod": ("CoreV1Api", "list_pod_for_all_namespaces"),
    "Deployment": ("AppsV1Api", "list_deployment_for_all_namespaces"),
    "StatefulSet": ("AppsV1Api", "list_stateful_set_for_all_namespaces"),
    "DaemonSet": ("AppsV1Api", "list_daemon_set_for_all_namespaces"),
    "ReplicaSet": ("AppsV1Api", "list_replica_set_for_all_namespaces"),
    "Job": ("BatchV1Api", "list_job_for_all_namespaces"),
    "CronJob": ("BatchV1Api", "list_cron_job_for_all_namespaces"),
    "ConfigMap": ("CoreV1Api", "list_config_map_for_all_namespaces"),
    "Secret": ("CoreV1Api", "list_secret_for_all_namespaces"),
    "NetworkPolicy": ("NetworkingV1Api", "list_network_policy_for_all_namespaces"),
    "ServiceAccount": ("CoreV1Api", "list_service_account_for_all_namespaces"),
    "PersistentVolumeClaim": ("CoreV1Api", "list_persistent_volume_claim_for_all_namespaces"),
    "Role": ("RbacAuthorizationV1Api", "list_role_for_all_namespaces"),
    "RoleBinding": ("RbacAuthorizationV1Api", "list_role_binding_for_all_namespaces"),
    "Ingress": ("NetworkingV1Api", "list_ingress_for_all_namespaces"),
}


def _typed_listing(kubeconfig: str, page_size: int) -> int:
    """The same kinds through the official client's typed models (``V1ConfigMapList`` ...)."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException

    from novadiag.model import SNAPSHOT_KINDS

    # Gateway API and Istio kinds are CRDs: the official client has no models and lists them as dicts.
    custom_kinds = [kind for kind in SNAPSHOT_KINDS if kind not in _TYPED_LISTS]
    api_client = k8s_config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    count = 0
    try:
        for group, method in _TYPED_LISTS.values():
            call = getattr(getattr(k8s, group)(api_client), method)
            token = None
            while True:
                try:
                    page = call(limit=page_size, _continue=token) if token else call(limit=page_size)
                except ApiException as exc:
                    if exc.status == 404:
                        break
                    raise
                count += len(page.items)
                token = page.metadata._continue
                if not token:
                    break
        count += sum(_custom_listing(k8s.CustomObjectsApi(api_client), kind, page_size) for kind in custom_kinds)
    finally:
        api_client.close()
    return count


def _custom_listing(api: Any, kind: str, page_size: int) -> int:
    from kubernetes.client.exceptions import ApiException

    from novadiag.kube import KINDS

    info, count, token = KINDS[kind], 0, None
    while True:
        extra: dict[str, str] = {"_continue": token} if token else {}
        try:
            page = api.list_cluster_custom_object(info.group, info.version, info.plural, limit=page_size, **extra)
        except ApiException as exc:
            if exc.status == 404:
                break
            raise
        count += len(page.get("items") or ())
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return count
    return count


def _child_probes(kubeconfig: str, concurrency: int, page_size: int, timeout: float) -> dict[str, Any]:
    import novadiag.pipeline as pipeline
    from novadiag.kube import KubeSettings
    from novadiag.probing import ProbeSettings

    settings = KubeSettings(kubeconfig=kubeconfig, page_size=page_size)
    probe_settings = ProbeSettings(concurrency=concurrency, timeout=timeout)
    report = pipeline.audit_cluster(settings, probe=True, probe_settings=probe_settings)
    probes = dict(report.probes or {})
    return {
        "edges": len(report.edges),
        "probe_pods": probes.get("pods_created", 0),
        "groups": probes.get("groups", 0),
        "probe_wall_s": probes.get("wall_seconds", 0.0),
        "slowest_pod_s": probes.get("slowest_pod_seconds") or 0.0,
        "median_pod_s": probes.get("median_pod_seconds") or 0.0,
        "failed_pods": len(probes.get("failed") or ()),
        "probed_edges": sum(1 for e in report.edges if e.probe is not None),
        "disagreeing_edges": sum(1 for e in report.edges if e.probe is not None and e.probe.agrees is False),
        "concurrency": concurrency,
    }


def _run_child(
    mode: str, target: str | Path, *, concurrency: int = 8, page_size: int = 500, timeout: float = PROBE_TIMEOUT
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", mode, "--target", str(target)]
    cmd += ["--probe-concurrency", str(concurrency), "--page-size", str(page_size), "--probe-timeout", str(timeout)]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX) :]))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise RuntimeError(f"benchmark child {mode} failed (exit {proc.returncode}): " + " | ".join(tail))


# -- the parent: data, labs, medians, lines ----------------------------------------------


@dataclass
class Line:
    """One printed measurement: medians of its runs, and the ratios against its floor."""

    name: str
    size: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def median(self, key: str) -> float:
        values = [float(r[key]) for r in self.runs if r.get(key) is not None]
        return statistics.median(values) if values else 0.0

    def render(self) -> str:
        fields = {
            "wall_s": f"{self.median('wall_s'):.3f}",
            "cpu_s": f"{self.median('cpu_s'):.3f}",
            "sys_s": f"{self.median('sys_s'):.3f}",
            "minor_faults": f"{self.median('minor_faults'):.0f}",
            "peak_rss_mb": f"{self.median('peak_rss_mb'):.0f}",
            "api_requests": f"{self.median('api_requests'):.0f}",
            "probe_pods": f"{self.median('probe_pods'):.0f}",
        }
        fields.update({k: v if isinstance(v, str) else _number(v) for k, v in self.extra.items()})
        text = f"{self.name:<14} size={self.size} runs={len(self.runs)} "
        text += " ".join(f"{k}={v}" for k, v in fields.items())
        for key, value in self.ratios.items():
            text += f" {key}={value:.2f}"
            if key in TARGETS:
                op, bound = TARGETS[key]
                met = value <= bound if op == "<=" else value >= bound
                text += f" ({op}{bound:g} {'ok' if met else 'MISS'})"
        return text


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return str(value)


class Bench:
    """One benchmark session: where data lives, what to print, the lines kept for growth."""

    def __init__(self, *, workdir: Path, repeat: int, seed: int, concurrency: int, page_size: int,
                 profile: bool = False, probe_timeout: float = PROBE_TIMEOUT,
                 out: Callable[[str], None] = print) -> None:  # fmt: skip
        self.workdir = workdir
        self.probe_timeout = probe_timeout
        self.profile = profile
        self.repeat = repeat
        self.seed = seed
        self.concurrency = concurrency
        self.page_size = page_size
        self.out = out
        self.lines: list[Line] = []
        self.static_lines: dict[str, Line] = {}
        workdir.mkdir(parents=True, exist_ok=True)

    def emit(self, line: Line) -> Line:
        self.lines.append(line)
        self.out(line.render())
        return line

    # -- data --------------------------------------------------------------------------
    def snapshot_file(self, size: Size) -> Path:
        path = self.workdir / f"snapshot-{size.name}-s{self.seed}-v{GENERATOR_VERSION}.json"
        if not path.exists():
            objects = generate_objects(size, seed=self.seed)
            self.out(f"data           size={size.name} objects={len(objects)} kinds={_kinds(objects)}")
            write_snapshot(objects, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").rename(path)
        return path

    def scenario_dir(self, size: Size) -> Path:
        path = self.workdir / f"scenario-{size.name}-s{self.seed}-v{GENERATOR_VERSION}"
        if not (path / "scenario.yaml").exists():
            objects = generate_objects(size, seed=self.seed, replicas=0)
            write_scenario(objects, path, name=f"bench-{size.name.lower()}", replicas=0)
        return path

    # -- static ------------------------------------------------------------------------
    def static(self, size: Size) -> None:
        path = self.snapshot_file(size)
        floor, nogc, audit = Line("floor", size.name), Line("floor-nogc", size.name), Line("static", size.name)
        for _ in range(self.repeat):
            for line, mode in ((floor, "floor"), (nogc, "floor-nogc"), (audit, "static")):
                line.runs.append({**_run_child(mode, path), "api_requests": 0, "probe_pods": 0})
        mb = path.stat().st_size / 1e6
        for line in (floor, nogc):
            line.extra = {"file_mb": round(mb, 1), "base_rss_mb": line.median("base_rss_mb")}
            self.emit(line)
        audit.extra = {
            "edges": int(audit.median("edges")),
            "broken": int(audit.median("broken")),
            "graph_edges": int(audit.median("graph_edges")),
            "graph_s": audit.median("graph_s"),
            "graph_rss_mb": round(audit.median("graph_rss_mb")),
        }
        with_graph = [run["wall_s"] + run["graph_s"] for run in audit.runs]
        audit.ratios = {
            "wall_vs_floor": audit.median("wall_s") / floor.median("wall_s"),
            "with_graph_vs_floor": statistics.median(with_graph) / floor.median("wall_s"),
            "rss_vs_floor": audit.median("peak_rss_mb") / floor.median("peak_rss_mb"),
            "cpu_vs_floor": audit.median("cpu_s") / floor.median("cpu_s"),
            "wall_vs_floor_nogc": audit.median("wall_s") / nogc.median("wall_s"),
            "rss_vs_floor_nogc": audit.median("peak_rss_mb") / nogc.median("peak_rss_mb"),
        }
        self.emit(audit)
        self.static_lines[size.name] = audit
        if self.profile:
            for text in str(_run_child("profile", path)["profile"]).splitlines():
                self.out(f"profile        size={size.name} {text}")

    # -- start-up ----------------------------------------------------------------------
    def startup(self, runs: int) -> None:
        """The console script's start-up, each command a fresh process, against ``python -c pass``."""
        python = _timed_runs([sys.executable, "-c", "pass"], runs)
        self.out(_startup_line("python", python))
        script = _novadiag_command()
        audit = [*script, "audit", "--manifests", str(NOVA_MANIFESTS)]
        for name, command, ratio in (
            ("version", [*script, "--version"], "version_vs_python"),
            ("audit-json", [*audit, "--format", "json", "-o", os.devnull], "audit_json_vs_python"),
            ("audit-table", audit, "audit_table_vs_python"),
        ):
            times = _timed_runs(command, runs)
            ratios = {
                ratio: statistics.median(times) / statistics.median(python),
                "best_vs_python": min(times) / min(python),
            }
            self.out(_startup_line(name, times, ratios))

    # -- report ------------------------------------------------------------------------
    def report(self, size: Size, modes: Sequence[str] = REPORT_MODES) -> None:
        """Each report format after the audit, against the audit alone (the ``static`` line, measured if missing)."""
        path = self.snapshot_file(size)
        audit = self.static_lines.get(size.name)
        if audit is None:
            audit = Line("static", size.name)
            audit.runs = [_run_child("static", path) for _ in range(self.repeat)]
        for mode in modes:
            line = Line(mode, size.name)
            line.runs = [{**_run_child(mode, path), "api_requests": 0, "probe_pods": 0} for _ in range(self.repeat)]
            line.extra = {"edges": int(line.median("edges")), "report_s": line.median("report_s"),
                          "file_mb": round(line.median("file_mb"), 1)}  # fmt: skip
            prefix = "json_" if mode == "report-json" else ""
            # Time: the write against the audit of the same child (another run's wall time differs by
            # more than the write under a shared machine's load); memory: against the audit's own line.
            added = [run["report_s"] / max(run["wall_s"] - run["report_s"], 1e-9) for run in line.runs]
            line.ratios = {
                f"{prefix}wall_added": statistics.median(added),
                f"{prefix}rss_added": line.median("peak_rss_mb") / audit.median("peak_rss_mb") - 1,
            }
            self.emit(line)

    # -- the lab -----------------------------------------------------------------------
    @contextmanager
    def lab(self, size: Size) -> Iterator[Any]:
        from novadiag.lab import Lab

        scenario = self.scenario_dir(size)
        state = tempfile.mkdtemp(prefix="novadiag-bench-lab-")
        start = time.perf_counter()
        with Lab(scenario=str(scenario), state_dir=state, start_timeout=3600.0) as lab:
            objects = sum(len(json.loads(p.read_text())["items"]) for p in (scenario / "manifests").glob("*.json"))
            ready = time.perf_counter() - start
            _settle(lab)
            settled = time.perf_counter() - start
            _warm_up(lab, self.page_size)
            warm = time.perf_counter() - start
            self.out(
                f"lab-start      size={size.name} objects={objects} ready_s={ready:.1f} settled_s={settled:.1f} "
                f"warm_s={warm:.1f} {load_line()}"
            )
            yield lab

    def _metered(self, lab: Any, mode: str, **kwargs: Any) -> dict[str, Any]:
        lab._admin("DELETE", "/lab/v1/metrics")
        result = _run_child(mode, lab.kubeconfig, page_size=self.page_size, **kwargs)
        metrics = lab._admin("GET", "/lab/v1/metrics")
        result["api_requests"] = int(metrics.get("total", 0))
        result["api_by_resource"] = metrics.get("requests", {})
        result.setdefault("probe_pods", 0)
        return result

    def listing(self, size: Size, lab: Any) -> None:
        bare, ours = Line("list-bare", size.name), Line("list-novadiag", size.name)
        bare_par, typed = Line("list-bare-par", size.name), Line("list-typed", size.name)
        kept = Line("list-bare-kept", size.name)
        lines = {"list-bare": bare, "list-bare-par": bare_par, "list-bare-kept": kept, "list-novadiag": ours,
                 "list-typed": typed}  # fmt: skip
        for _ in range(self.repeat):
            for mode, line in lines.items():
                line.runs.append(self._metered(lab, mode))
        expected = self._expected_requests(lab)
        for line in lines.values():
            line.extra = {"objects": int(line.median("objects")), "expected_requests": expected}
        self.emit(bare)
        self.emit(bare_par)
        self.emit(kept)
        ours.ratios = {
            "requests_vs_expected": ours.median("api_requests") / expected,
            "wall_vs_bare": ours.median("wall_s") / bare.median("wall_s"),
            "wall_vs_bare_par": ours.median("wall_s") / bare_par.median("wall_s"),
            "wall_vs_bare_kept": ours.median("wall_s") / kept.median("wall_s"),
        }
        self.emit(ours)
        typed.ratios = {"typed_vs_novadiag": typed.median("wall_s") / ours.median("wall_s")}
        self.emit(typed)

    def _expected_requests(self, lab: Any) -> int:
        """One paginated list per kind: ``ceil(n / page)`` requests (one for an empty or unserved kind)."""
        from novadiag.kube import KubeClient, KubeSettings
        from novadiag.listing import load_cluster_snapshot

        with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig, page_size=self.page_size)) as client:
            snap = load_cluster_snapshot(client, source_kind="lab")
        from novadiag.model import SNAPSHOT_KINDS

        counts = snap.count()
        return sum(max(1, math.ceil(counts.get(kind, 0) / self.page_size)) for kind in SNAPSHOT_KINDS)

    def probes(self, size: Size, lab: Any) -> None:
        line = Line("probes", size.name)
        for _ in range(self.repeat):
            line.runs.append(self._metered(lab, "probes", concurrency=self.concurrency, timeout=self.probe_timeout))
        groups = int(line.median("groups"))
        waves = math.ceil(groups / max(1, self.concurrency)) if groups else 0
        slowest, median_pod = line.median("slowest_pod_s"), line.median("median_pod_s")
        line.extra = {
            "groups": groups,
            "concurrency": self.concurrency,
            "waves": waves,
            "probe_wall_s": line.median("probe_wall_s"),
            "slowest_pod_s": slowest,
            "median_pod_s": median_pod,
            "failed_pods": int(line.median("failed_pods")),
            "edges": int(line.median("edges")),
            "probed_edges": int(line.median("probed_edges")),
            "disagreeing_edges": int(line.median("disagreeing_edges")),
        }
        line.ratios = {
            "pods_vs_groups": line.median("probe_pods") / groups if groups else 0.0,
            "wall_vs_slowest_pod": line.median("wall_s") / slowest if slowest else 0.0,
            "probe_wall_vs_waves": line.median("probe_wall_s") / (waves * median_pod) if waves and median_pod else 0.0,
        }
        self.emit(line)

    # -- growth ------------------------------------------------------------------------
    def growth(self) -> None:
        """How wall time and memory grow from one size to the next, against the size itself."""
        by_name: dict[str, list[Line]] = {}
        for line in self.lines:
            by_name.setdefault(line.name, []).append(line)
        for name, lines in by_name.items():
            ordered = sorted(lines, key=lambda ln: list(SIZES).index(ln.size))
            for small, big in zip(ordered, ordered[1:], strict=False):
                scale = _scale(small, big)
                wall = big.median("wall_s") / max(small.median("wall_s"), 1e-9)
                rss = big.median("peak_rss_mb") / max(small.median("peak_rss_mb"), 1e-9)
                extra = big.median("peak_rss_mb") - small.median("peak_rss_mb")
                per_unit = wall / scale
                self.out(
                    f"growth         {name} {small.size}->{big.size}: data x{scale:.2f} wall x{wall:.2f} "
                    f"(per unit of data x{per_unit:.2f}) peak_rss x{rss:.2f} (+{extra:.0f} MB)"
                )


def _novadiag_command() -> list[str]:
    """The ``novadiag`` console script next to this interpreter, as a user runs it; else ``python -m novadiag``."""
    script = Path(sys.executable).with_name("novadiag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "novadiag"]


def _timed_runs(command: Sequence[str], runs: int) -> list[float]:
    """Wall seconds of each of ``runs`` runs, output into a pipe that is read and dropped (not a terminal).

    An installed novadiag starts from compiled bytecode (pip writes it at
    install time), so the children may write and read ``__pycache__`` whatever
    this shell's PYTHONDONTWRITEBYTECODE says, and one unmeasured run writes it:
    without it each run would compile every module it imports from source.
    """
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, capture_output=True, check=False, env=env)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, check=False, env=env)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 1):  # 1: the Nova scenario has broken edges
            raise RuntimeError(f"{' '.join(command)} failed (exit {proc.returncode}): {proc.stderr.decode()[-300:]}")
    return times


def _startup_line(name: str, times: Sequence[float], ratios: Mapping[str, float] | None = None) -> str:
    text = f"{name:<14} runs={len(times)} best_s={min(times):.3f} median_s={statistics.median(times):.3f}"
    for key, value in (ratios or {}).items():
        text += f" {key}={value:.2f}"
        if key in TARGETS:
            op, bound = TARGETS[key]
            met = value <= bound if op == "<=" else value >= bound
            text += f" ({op}{bound:g} {'ok' if met else 'MISS'})"
    return text


def _warm_up(lab: Any, page_size: int) -> None:
    """List everything once, unmeasured, so that every measured listing meets the same server.

    The lab's API server keeps each object's JSON encoding from the first time
    it lists the object (a real API server serves lists from its watch cache),
    so the first listing after the lab starts also pays for encoding all of
    them; without this, that cost lands on whichever measurement runs first.
    """
    _run_child("list-bare", lab.kubeconfig, page_size=page_size)


def _settle(lab: Any, *, quiet: float = 5.0, timeout: float = 1800.0) -> None:
    """Wait until the lab's controllers are done (ReplicaSets, EndpointSlices): no write for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        version = lab._admin("GET", "/api/v1/namespaces?limit=1")["metadata"]["resourceVersion"]
        if version == last:
            return
        last = version
        time.sleep(quiet)
    raise RuntimeError(f"the lab did not settle within {timeout:g}s")


def _scale(small: Line, big: Line) -> float:
    """The growth of the data a line measures: edges, objects or groups (whichever it reports)."""
    for key in ("edges", "objects", "groups"):
        if small.median(key) and big.median(key):
            return big.median(key) / small.median(key)
    a, b = SIZES[small.size], SIZES[big.size]
    return (b.workloads + b.services) / (a.workloads + a.services)


def _kinds(objects: Sequence[Mapping[str, Any]]) -> str:
    return ",".join(f"{k}:{v}" for k, v in sorted(count_kinds(objects).items()))


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"machine        cpu={cpu!r} cores={os.cpu_count()} mem_gb={mem:.0f} python={platform.python_version()} "
        f"{load_line()}"
    )


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load={one:.2f}/{five:.2f}/{fifteen:.2f}"


# -- command line ------------------------------------------------------------------------


def _sizes(text: str) -> list[Size]:
    names = [s.strip().upper() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in SIZES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"sizes are {', '.join(SIZES)} (comma separated), not {text!r}")
    return [SIZES[n] for n in names]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=_sizes, default=_sizes("S,M,L"), help="S, M, L or a list (default S,M,L)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; lines show medians")
    parser.add_argument("--only", choices=MEASUREMENTS, action="append", help="only these measurements")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "novadiag-bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe-concurrency", type=int, default=8)
    parser.add_argument(
        "--probe-timeout",
        type=float,
        default=PROBE_TIMEOUT,
        help="each probe pod's deadline (novadiag's default: 60 s)",
    )
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="profile the static audit (needs pyinstrument)")
    parser.add_argument(
        "--report-modes",
        type=lambda text: [m.strip() for m in text.split(",") if m.strip()],
        default=list(REPORT_MODES),
        help=f"report lines to measure (default {','.join(REPORT_MODES)}; also {','.join(OPTIONAL_REPORT_MODES)})",
    )
    parser.add_argument("--startup-runs", type=int, default=15, help="runs of each start-up command (default 15)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = _child(args.child, args.target, args.probe_concurrency, args.page_size, args.probe_timeout)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    only = set(args.only or MEASUREMENTS)
    bench = Bench(workdir=args.workdir, repeat=max(1, args.repeat), seed=args.seed,
                  concurrency=args.probe_concurrency, page_size=args.page_size, profile=args.profile,
                  probe_timeout=args.probe_timeout)  # fmt: skip
    print(machine_line(), flush=True)
    if "startup" in only:
        bench.startup(max(1, args.startup_runs))
    for size in args.size:
        print(f"size           {size.name}: namespaces={size.namespaces} services={size.services} "
              f"workloads={size.workloads} {load_line()}", flush=True)  # fmt: skip
        if "static" in only:
            bench.static(size)
        if "report" in only:
            bench.report(size, args.report_modes)
        if only & {"listing", "probes"}:
            with bench.lab(size) as lab:
                if "listing" in only:
                    bench.listing(size, lab)
                if "probes" in only:
                    bench.probes(size, lab)
    bench.growth()
    print(f"done           {load_line()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
