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
