"""Least-privilege NetworkPolicies from the verified graph: hand-written truth, then a property."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import novadiag
from novadiag.cli import main
from novadiag.errors import ConfigError, PolicyProofError
from novadiag.index import build_index
from novadiag.least_privilege import EDGES_ANNOTATION, ControllerAllowance, generate_policies, prove
from novadiag.model import ObjectRef, SourceInfo
from novadiag.netpol.evaluation import build_policy_index, evaluate
from novadiag.netpol.policy import Endpoint
from novadiag.pipeline import audit_snapshot
from novadiag.snapshot import build_snapshot

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(ns: str, name: str, ports: dict[str, int], env: dict[str, str], **labels: str) -> dict[str, Any]:
    pod_labels = {"app": name, **labels}
    container = {
        "name": name,
        "image": "example/app:1",
        "ports": [{"name": n, "containerPort": p} for n, p in ports.items()],
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": pod_labels},
            "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [container]}},
        },
    }


def service(ns: str, name: str, port: int, target: int | str, app: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": app or name}, "ports": [{"port": port, "targetPort": target}]},
    }


def old_policy(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all", "namespace": ns, "uid": "u-1", "resourceVersion": "7"},
        "spec": {"podSelector": {}, "ingress": [{}]},
    }


def shop() -> list[dict[str, Any]]:
    """web (ns front) -> api (ns back, named targetPort) -> db; web -> db only by a short name that fails."""
    return [
        namespace("front"),
        namespace("back"),
        deployment(
            "front",
            "web",
            {},
            {"API_URL": "http://api.back:80", "DB_HOST": "db:5432", "CDN": "https://cdn.example.com"},
        ),
        deployment("back", "api", {"http": 8080, "admin": 9090}, {"DB_URL": "postgres://db:5432/shop"}),
        deployment("back", "db", {"pg": 5432}, {}),
        service("back", "api", 80, "http"),
        service("back", "db", 5432, 5432),
        old_policy("back"),
    ]


def report_of(objects: list[dict[str, Any]]) -> novadiag.Report:
    return audit_snapshot(build_snapshot(objects, SourceInfo("manifests")))


def named(generated: novadiag.GeneratedPolicies, ns: str, name: str) -> dict[str, Any]:
    return next(p for p in generated.policies if p["metadata"]["namespace"] == ns and p["metadata"]["name"] == name)


def decide(generated: novadiag.GeneratedPolicies, report: novadiag.Report, src: str, dst: str, port: int) -> bool:
    assert report.snapshot is not None
    cluster = build_index(report.snapshot)
    index = build_policy_index(report.snapshot, cluster, policies=generated.policies)
    workloads = {f"{w.namespace}/{w.ref.name}": w for w in report.snapshot.workloads}
    source, target = index.endpoint(workloads[src]), index.endpoint(workloads[dst])
    return evaluate(index, source, target, port=port).allowed


def test_ok_edges_get_exact_rules_on_the_port_the_pod_sees():
    report = report_of(shop())
    assert {e.reference.env: e.status for e in report.edges} == {
        "API_URL": "ok",
        "DB_HOST": "dns-unresolvable",
        "CDN": "external",
        "DB_URL": "ok",
    }
    generated = generate_policies(report)
    egress = named(generated, "front", "novadiag-egress-web")["spec"]
    assert egress == {
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "back"}},
                        "podSelector": {"matchLabels": {"app": "api"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8080}],  # targetPort "http", not the Service's 80
            }
        ],
    }
    ingress = named(generated, "back", "novadiag-ingress-api")["spec"]["ingress"]
    assert ingress[0]["from"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "front"}}
    assert ingress[0]["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert decide(generated, report, "front/web", "back/api", 8080)
    assert not decide(generated, report, "front/web", "back/api", 9090)
    assert not decide(generated, report, "front/web", "back/db", 5432)  # the broken edge gets nothing
    assert decide(generated, report, "back/api", "back/db", 5432)
    assert not decide(generated, report, "back/db", "back/api", 8080)


def test_every_namespace_gets_default_deny_and_dns_and_rules_name_their_edges():
    generated = generate_policies(report_of(shop()))
    assert generated.namespaces == ("back", "front")
    for ns in generated.namespaces:
        assert named(generated, ns, "novadiag-default-deny")["spec"] == {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
        }
        dns = named(generated, ns, "novadiag-allow-dns")["spec"]["egress"][0]
        assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
        assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    annotation = named(generated, "back", "novadiag-ingress-db")["metadata"]["annotations"][EDGES_ANNOTATION]
    assert json.loads(annotation) == {"ingress[0]": ["back/deployment/api/api/DB_URL/db:5432"]}
    assert "# ingress[0] admits back/deployment/api/api/DB_URL/db:5432\n" in generated.to_yaml()
    assert any("CDN" in n and "external, not admitted" in n for n in generated.notes)


def test_output_is_deterministic_whatever_the_edge_order():
    report = report_of(shop())
    shuffled = dataclasses.replace(report, edges=tuple(reversed(report.edges)))
    assert generate_policies(report).to_yaml() == generate_policies(shuffled).to_yaml()
    names = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in generate_policies(report).policies]
    assert names == sorted(names)


def test_peers_merge_only_when_their_ports_are_the_same():
    objects = [
        namespace("a"),
        deployment("a", "client", {}, {"X": "x:80", "Y": "y:80", "Z": "z:81"}),
        deployment("a", "x", {"http": 80}, {}),
        deployment("a", "y", {"http": 80}, {}),
        deployment("a", "z", {"http": 81}, {}),
        service("a", "x", 80, 80),
        service("a", "y", 80, 80),
        service("a", "z", 81, 81),
    ]
    report = report_of(objects)
    generated = generate_policies(report)
    rules = named(generated, "a", "novadiag-egress-client")["spec"]["egress"]
    assert [([p["podSelector"]["matchLabels"]["app"] for p in r["to"]], r["ports"]) for r in rules] == [
        (["x", "y"], [{"protocol": "TCP", "port": 80}]),
        (["z"], [{"protocol": "TCP", "port": 81}]),
    ]
    assert not decide(generated, report, "a/client", "a/z", 80)


def test_planned_edges_are_admitted_only_when_asked_and_only_with_a_plan():
    report = report_of(shop())
    planned = novadiag.plan(report)
    generated = generate_policies(report, include_planned=True, plan=planned)
    assert decide(generated, report, "front/web", "back/db", 5432)
    assert "front/deployment/web/web/DB_HOST/db:5432" in generated.edges
    with pytest.raises(ConfigError, match="include_planned needs the plan"):
        generate_policies(report, include_planned=True)


def test_labels_that_cannot_tell_two_workloads_apart_are_refused_with_the_pair():
    objects = shop() + [deployment("front", "web-canary", {}, {}, app="web", track="canary")]
    objects[-1]["spec"]["template"]["metadata"]["labels"] = {"app": "web", "track": "canary"}
    with pytest.raises(PolicyProofError, match=r"front/web-canary -> .*back/api on TCP 8080"):
        generate_policies(report_of(objects))


def host_network(obj: dict[str, Any]) -> dict[str, Any]:
    obj["spec"]["template"]["spec"].update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    return obj


def test_an_ok_edge_to_a_host_network_pod_cannot_be_proven_and_says_which():
    objects = shop()
    host_network(objects[3])  # api: its traffic carries the node's IP, which pod selectors miss
    with pytest.raises(PolicyProofError, match=r"would deny edge front/deployment/web/web/API_URL/api.back:80: "):
        generate_policies(report_of(objects))


def test_a_host_network_pod_without_edges_is_noted():
    objects = [*shop(), host_network(deployment("back", "node-exporter", {"metrics": 9100}, {}))]
    generated = generate_policies(report_of(objects))
    assert "Deployment back/node-exporter uses hostNetwork: NetworkPolicies do not isolate its pods" in generated.notes


def test_a_report_without_its_snapshot_is_a_config_error():
    report = dataclasses.replace(report_of(shop()), snapshot=None)
    with pytest.raises(ConfigError, match="needs the report's snapshot"):
        generate_policies(report)


def shop_ingress() -> dict[str, Any]:
    """An Ingress in back routing to api on Service port 80 (targetPort "http", the pod's 8080)."""
    backend = {"service": {"name": "api", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "shop", "namespace": "back"},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]},
    }


def shop_route(gateway_namespace: str) -> list[dict[str, Any]]:
    """A Gateway in ``gateway_namespace`` admitting routes from every namespace, and an HTTPRoute in back to api."""
    listener = {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}}
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": gateway_namespace},
        "spec": {"gatewayClassName": "any", "listeners": [listener]},
    }
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": "back"},
        "spec": {
            "parentRefs": [{"name": "edge", "namespace": gateway_namespace}],
            "rules": [{"backendRefs": [{"name": "api", "port": 80}]}],
        },
    }
    return [namespace(gateway_namespace), gateway, route]


def controller_pod_admitted(
    generated: novadiag.GeneratedPolicies, report: novadiag.Report, controller: str, dst: str, port: int
) -> bool:
    """Would a pod of the controller's namespace reach ``dst`` on ``port`` under the generated policies?"""
    assert report.snapshot is not None
    index = build_policy_index(report.snapshot, build_index(report.snapshot), policies=generated.policies)
    target = next(w for w in report.snapshot.workloads if f"{w.namespace}/{w.ref.name}" == dst)
    pod = Endpoint(controller, {"app.kubernetes.io/name": "controller"}, "controller")
    return evaluate(index, pod, index.endpoint(target), port=port).allowed


def controller_rules(policy: dict[str, Any], controller: str) -> list[dict[str, Any]]:
    """The ingress rules whose peers include the whole controller namespace, with those peers alone."""
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": controller}}}
    return [{"from": [peer], "ports": r["ports"]} for r in policy["spec"]["ingress"] if peer in r["from"]]


def test_an_ingress_backend_admits_the_controller_namespace_on_the_pods_port():
    report = report_of([*shop(), shop_ingress()])
    routed = next(e for e in report.edges if e.reference.routing)
    assert routed.status == "ok"
    generated = generate_policies(report, ingress_from=("ingress-nginx",))
    api = named(generated, "back", "novadiag-ingress-api")
    assert controller_rules(api, "ingress-nginx") == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "ports": [{"protocol": "TCP", "port": 8080}],  # targetPort "http", not the Service's 80
        }
    ]
    assert routed.id in json.loads(api["metadata"]["annotations"][EDGES_ANNOTATION])["ingress[0]"]
    assert routed.id in generated.edges
    assert controller_pod_admitted(generated, report, "ingress-nginx", "back/api", 8080)
    assert not controller_pod_admitted(generated, report, "ingress-nginx", "back/api", 9090)
    assert not controller_pod_admitted(generated, report, "ingress-nginx", "back/db", 5432)
    assert not controller_pod_admitted(generated, report, "elsewhere", "back/api", 8080)
    assert not any(routed.id in n for n in generated.notes)


def test_an_ingress_backend_without_its_controller_namespace_is_noted_with_the_option():
    report = report_of([*shop(), shop_ingress()])
    routed = next(e for e in report.edges if e.reference.routing)
    generated = generate_policies(report)
    assert routed.id not in generated.edges
    note = next(n for n in generated.notes if routed.id in n)
    assert "Service back/api will be unreachable from the controller of Ingress back/shop" in note
    assert "--ingress-from NS" in note
    assert controller_rules(named(generated, "back", "novadiag-ingress-api"), "ingress-nginx") == []


def test_the_proof_refuses_a_controller_rule_that_is_missing_or_too_wide():
    """Hand-edited policies: the controller rule removed, then widened to the api's admin port."""
    report = report_of([*shop(), shop_ingress()])
    routed = next(e for e in report.edges if e.reference.routing)
    assert report.snapshot is not None
    api = next(w for w in report.snapshot.workloads if w.ref.name == "api")
    needed = [ControllerAllowance(routed.id, "ingress-nginx", api, 8080, "TCP")]
    deny = [p for p in generate_policies(report).policies if p["metadata"]["name"] == "novadiag-default-deny"]
    prove(report, deny, [], ["back", "front"], [])  # nothing needed, nothing admitted
    denied = re.escape(f"would deny edge {routed.id}: ingress to back/api is denied")
    with pytest.raises(PolicyProofError, match=denied):
        prove(report, deny, [], ["back", "front"], needed)
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    rule = {"from": [peer], "ports": [{"protocol": "TCP", "port": 8080}]}
    admit = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "controller", "namespace": "back"},
        "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"], "ingress": [rule]},
    }
    prove(report, [*deny, admit], [], ["back", "front"], needed)
    rule["ports"] = [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 9090}]
    wider = re.escape("would admit ingress-nginx/(any pod) -> Deployment back/api on TCP 9090")
    with pytest.raises(PolicyProofError, match=wider):
        prove(report, [*deny, admit], [], ["back", "front"], needed)


NGINX = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
NGINX_CLASS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "IngressClass",
    "metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
    "spec": {"controller": "k8s.io/ingress-nginx"},
}


def with_nginx(**extra: Any) -> list[dict[str, Any]]:
    """shop and its Ingress, served by an ingress-nginx controller in namespace edge (plus ``extra`` workloads)."""
    controller = deployment("edge", "controller", {"http": 80}, {})
    labels = {**NGINX}
    controller["spec"]["selector"]["matchLabels"] = labels
    controller["spec"]["template"]["metadata"]["labels"] = labels
    others = [deployment("edge", name, {}, env) for name, env in extra.items()]
    return [*shop(), shop_ingress(), namespace("edge"), controller, NGINX_CLASS, *others]


def test_an_audited_controller_namespace_gives_the_controllers_pods_egress_to_the_backend():
    report = report_of(with_nginx(webhook={}))
    routed = next(e for e in report.edges if e.reference.routing)
    generated = generate_policies(report)
    assert routed.id in generated.edges
    assert "edge" in generated.namespaces
    assert named(generated, "edge", "novadiag-egress-controller")["spec"]["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "back"}},
                    "podSelector": {"matchLabels": {"app": "api"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    assert decide(generated, report, "edge/controller", "back/api", 8080)
    assert not decide(generated, report, "edge/controller", "back/api", 9090)
    assert not decide(generated, report, "edge/controller", "back/db", 5432)
    assert not decide(generated, report, "edge/webhook", "back/api", 8080)  # not the controller: its egress is denied
    assert not any(p["metadata"]["name"] == "novadiag-egress-webhook" for p in generated.policies)


def test_without_known_controller_pods_every_workload_of_the_named_namespace_gets_the_egress():
    objects = [o for o in with_nginx(webhook={}) if o.get("kind") != "IngressClass"]
    report = report_of(objects)
    generated = generate_policies(report, ingress_from=("edge",))
    assert decide(generated, report, "edge/controller", "back/api", 8080)
    assert decide(generated, report, "edge/webhook", "back/api", 8080)
    assert not decide(generated, report, "edge/webhook", "back/db", 5432)


def test_the_proof_refuses_policies_that_cut_the_controllers_own_egress():
    report = report_of(with_nginx())
    generated = generate_policies(report)
    routed = next(e for e in report.edges if e.reference.routing)
    assert report.snapshot is not None
    controller = next(w for w in report.snapshot.workloads if w.ref.name == "controller")
    api = next(w for w in report.snapshot.workloads if w.ref.name == "api")
    needed = [ControllerAllowance(routed.id, "edge", api, 8080, "TCP", (controller,))]
    # the workloads' own egress left out: the controller's edge is all that is needed
    policies = [
        p
        for p in generated.policies
        if not p["metadata"]["name"].startswith("novadiag-egress-") or p["metadata"]["name"].endswith("-controller")
    ]
    prove(report, policies, [], generated.namespaces, needed)
    without = [p for p in policies if p["metadata"]["name"] != "novadiag-egress-controller"]
    denied = re.escape(f"would deny edge {routed.id} from Deployment edge/controller: egress")
    with pytest.raises(PolicyProofError, match=denied):
        prove(report, without, [], generated.namespaces, needed)


def test_a_gateway_route_backend_admits_the_gateways_namespace_by_default():
    report = report_of([*shop(), *shop_route("edge")])
    routed = next(e for e in report.edges if e.reference.routing)
    assert routed.status == "ok", routed.detail
    generated = generate_policies(report)
    api = named(generated, "back", "novadiag-ingress-api")
    assert [r["ports"] for r in controller_rules(api, "edge")] == [[{"protocol": "TCP", "port": 8080}]]
    assert controller_pod_admitted(generated, report, "edge", "back/api", 8080)
    # the option names the controllers outright: the Gateway's namespace is then not assumed
    given = generate_policies(report, ingress_from=("gw-system",))
    assert controller_rules(named(given, "back", "novadiag-ingress-api"), "edge") == []
    assert controller_pod_admitted(given, report, "gw-system", "back/api", 8080)


def test_cli_writes_manifests_and_a_diff_against_todays_policies(tmp_path, capsys):
    manifests = tmp_path / "shop.yaml"
    manifests.write_text(yaml.safe_dump_all(shop()))
    assert main(["policies", "generate", "--manifests", str(manifests)]) == 0
    out, err = capsys.readouterr()
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert {d["metadata"]["name"] for d in docs} >= {"novadiag-default-deny", "novadiag-egress-web"}
    assert "external, not admitted" in err
    target = tmp_path / "diff.txt"
    assert main(["policies", "generate", "--manifests", str(manifests), "--diff", "-o", str(target)]) == 0
    diff = target.read_text()
    assert "-  name: allow-all\n" in diff and "+  name: novadiag-default-deny\n" in diff
    assert "resourceVersion" not in diff
    assert main(["policies", "generate", "--manifests", str(manifests), "--include-planned", "-n", "back"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert {d["metadata"]["namespace"] for d in docs} == {"back"}
    db = next(d for d in docs if d["metadata"]["name"] == "novadiag-ingress-db")
    assert [p["podSelector"]["matchLabels"]["app"] for p in db["spec"]["ingress"][0]["from"]] == ["api", "web"]


def test_cli_ingress_from_admits_each_named_controller_namespace(tmp_path, capsys):
    manifests = tmp_path / "shop.yaml"
    manifests.write_text(yaml.safe_dump_all([*shop(), shop_ingress()]))
    assert main(["policies", "generate", "--manifests", str(manifests)]) == 0
    assert "--ingress-from NS" in capsys.readouterr().err
    argv = ["policies", "generate", "--manifests", str(manifests), "--ingress-from", "ingress-nginx"]
    assert main([*argv, "--ingress-from", "traefik"]) == 0
    out, err = capsys.readouterr()
    api = next(d for d in yaml.safe_load_all(out) if d and d["metadata"]["name"] == "novadiag-ingress-api")
    for controller in ("ingress-nginx", "traefik"):
        assert [r["ports"] for r in controller_rules(api, controller)] == [[{"protocol": "TCP", "port": 8080}]]
    assert "--ingress-from NS" not in err
    assert "admits back/ingress/shop/" in out  # the YAML comment names the routing edge


def test_nova_policies_keep_every_verdict_of_the_in_cluster_edges():
    """Replace Nova's own policies with the generated ones and re-audit: ok stays ok, broken stays broken."""
    report = novadiag.audit(manifests=[str(NOVA)])
    generated = generate_policies(report)
    nova = [o for f in sorted(NOVA.glob("*.yaml")) for o in yaml.safe_load_all(f.read_text()) if o]
    kept = [o for o in nova if o["kind"] != "NetworkPolicy"]
    after = report_of([*kept, *generated.policies])
    before = {e.id: e.status for e in report.edges}
    now = {e.id: e.status for e in after.edges}
    changed = {i: (before[i], now[i]) for i in before if before[i] != now[i]}
    assert changed == {i: ("external", "blocked") for i, s in before.items() if s == "external"}
    # the Ingress's controller is found by its IngressClass nginx: admitted (the HTTPRoute lacks its grant)
    routed = [e for e in report.edges if e.status == "ok" and e.reference.routing]
    assert [e.source for e in routed] == [ObjectRef("Ingress", "nova-gateway", "graphql-gateway")]
    assert len(generated.edges) == sum(1 for e in report.edges if e.status == "ok")
    assert not any("will be unreachable" in note for note in generated.notes)


@pytest.mark.parametrize("ingress_from", [(), ("ingress-nginx",)], ids=["found-by-ingress-class", "given"])
def test_nova_ingress_backend_admits_the_controller_on_the_named_ports_pod_port(ingress_from):
    """Nova's Ingress names the Service port "http-graphql" (port 4000, targetPort "http-graphql" = 4000)."""
    report = novadiag.audit(manifests=[str(NOVA)])
    generated = generate_policies(report, ingress_from=ingress_from)
    gateway = named(generated, "nova-gateway", "novadiag-ingress-graphql-gateway")
    assert controller_rules(gateway, "ingress-nginx") == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "ports": [{"protocol": "TCP", "port": 4000}],
        }
    ]
    # ingress-nginx is audited too: its default deny would cut the controller's egress, so the
    # controller's own pods (and no other pod there) get theirs
    assert decide(generated, report, "ingress-nginx/ingress-nginx-controller", "nova-gateway/graphql-gateway", 4000)
    assert not decide(generated, report, "ingress-nginx/ingress-nginx-controller", "nova-content/content-service", 9081)
    assert not controller_pod_admitted(generated, report, "ingress-nginx", "nova-gateway/graphql-gateway", 4000)
    egress = named(generated, "ingress-nginx", "novadiag-egress-ingress-nginx-controller")
    assert egress["spec"]["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nova-gateway"}},
                    "podSelector": {"matchLabels": {"app": "graphql-gateway"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 4000}],
        }
    ]
    ok_routed = {e.id for e in report.edges if e.status == "ok" and e.reference.routing}
    assert ok_routed <= set(generated.edges)


# -- property: over generated small clusters ------------------------------------------------------


@st.composite
def clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-3 namespaces, 2-5 workloads with unique app labels, one Service each, random references."""
    spaces = [f"ns{i}" for i in range(draw(st.integers(1, 3)))]
    count = draw(st.integers(2, 5))
    apps = [(f"w{i}", draw(st.sampled_from(spaces)), 8000 + draw(st.integers(0, 2))) for i in range(count)]
    objects: list[dict[str, Any]] = [namespace(ns) for ns in spaces]
    for name, ns, port in apps:
        env: dict[str, str] = {}
        for j, (other, other_ns, _) in enumerate(apps):
            kind = draw(st.sampled_from(["none", "none", "fqdn", "short", "wrong-port"]))
            if other == name or kind == "none":
                continue
            host = other if kind == "short" else f"{other}.{other_ns}"
            env[f"DEP{j}_URL"] = f"http://{host}:{80 + (1 if kind == 'wrong-port' else 0)}"
        named_target = draw(st.booleans())
        objects.append(deployment(ns, name, {"http": port}, env))
        objects.append(service(ns, name, 80, "http" if named_target else port))
    return objects


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_generated_policies_admit_exactly_the_ok_edges(objects: list[dict[str, Any]]) -> None:
    report = report_of(objects)
    generated = generate_policies(report)
    assert report.snapshot is not None
    by_name = {w.ref.name: w for w in report.snapshot.workloads}
    ports = {w.ref.name: w.pod_spec["containers"][0]["ports"][0]["containerPort"] for w in by_name.values()}
    # the truth, from the edges alone: (source, target) pairs of ok edges, on the target's one port
    needed = {(e.source.name, e.resolves_to.name) for e in report.edges if e.status == "ok" and e.resolves_to}
    for src in by_name:
        for dst in by_name:
            for port in {ports[dst], 80, 81}:
                allowed = decide(
                    generated, report, f"{by_name[src].namespace}/{src}", f"{by_name[dst].namespace}/{dst}", port
                )
                assert allowed == ((src, dst) in needed and port == ports[dst]), (src, dst, port)
    # and as the audit sees it: the generated set alone keeps every ok edge ok
    kept = [o for o in objects if o["kind"] != "NetworkPolicy"]
    after = {e.id: e.status for e in report_of([*kept, *generated.policies]).edges}
    assert {e.id: e.status for e in report.edges} == after
