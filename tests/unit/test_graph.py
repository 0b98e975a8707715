from __future__ import annotations

from novadiag.graph import build_graph, service_node, workload_node
from novadiag.index import build_index
from novadiag.model import Edge, ObjectRef, Reference, SourceInfo
from novadiag.snapshot import build_snapshot

APP = ObjectRef("Deployment", "nova", "app")
DB = ObjectRef("Service", "nova", "db")


def _edge(env: str, status: str) -> Edge:
    ref = Reference(workload=APP, container="app", env=env, origin="value", reference="db:5432", host="db", port=5432)
    return Edge(ref, status, "detail", target=DB)  # type: ignore[arg-type]


def test_a_pair_of_nodes_shows_the_worst_status_of_its_references():
    snap = build_snapshot(
        [
            {"kind": "Deployment", "metadata": {"name": "app", "namespace": "nova"}, "spec": {"template": {}}},
            {"kind": "Service", "metadata": {"name": "db", "namespace": "nova"}, "spec": {"ports": [{"port": 5432}]}},
        ],
        SourceInfo("manifests"),
    )
    statuses = ["ok", "port-mismatch", "ok", "dns-unresolvable", "no-endpoints"]
    edges = [_edge(f"E{i}", status) for i, status in enumerate(statuses)]
    graph = build_graph(edges, build_index(snap))
    data = graph.get_edge_data(workload_node(APP), service_node(DB))
    assert (data["status"], len(data["edges"])) == ("dns-unresolvable", 5)
    alone = build_graph(edges[:1], build_index(snap))
    assert alone.get_edge_data(workload_node(APP), service_node(DB))["status"] == "ok"


def test_a_report_builds_its_graph_on_first_use_from_its_own_edges():
    import dataclasses

    import networkx as nx

    import novadiag
    from novadiag.lab.scenario import scenario_path

    report = novadiag.audit(manifests=[scenario_path("nova") / "manifests"])
    assert "graph" not in vars(report)  # the audit itself did not build it
    graph = report.graph
    assert report.graph is graph and report.index is not None
    assert nx.utils.graphs_equal(graph, build_graph(report.edges, report.index))
    assert graph.number_of_edges() > len({e.source for e in report.edges})
    fewer = dataclasses.replace(report, edges=report.edges[:1])
    references = [(u, v) for u, v, kind in fewer.graph.edges(data="kind") if kind == "references"]
    assert references == [(workload_node(report.edges[0].source), service_node(report.edges[0].target))]
