"""Fold probe observations into edges (pure).

An observation becomes the edge's status, the static prediction is kept in
``predicted``, and ``probe.agrees`` says whether the two match. A mismatch is
the most interesting thing a probe can find — the cluster does something the
manifests do not say — so each one gets a finding with the likely cause.

A probe that did not observe says so: ``dns: not-run`` and ``agrees: null``
(there is nothing to agree with), the edge keeps its static verdict, and a
``probe-not-run`` finding per pod names the reason (Pending, Unschedulable,
ImagePullBackOff, a deadline). A refusal by RBAC is a gap instead (see
:func:`novadiag.pipeline.probe_report`). An ``unverified`` prediction has
nothing to agree with either: what the probe saw decides the edge.

Edges from routing objects (Ingress, Gateway API routes, VirtualServices) are
probed from their controller's namespace when it is known (see
:class:`~novadiag.probing.groups.RouteProbe`); the others say ``not-run`` the
same way, with the reason the caller gives (what to pass to name the
controller), :data:`ROUTE_NOT_PROBED` by default. A route the Gateway API
refuses (no ReferenceGrant, not attached) is refused by the data plane after
DNS and the connection succeed: a probe cannot see that refusal, so such an
edge keeps ``blocked`` (``verdict_from: static``) with ``agrees: null`` when the
probe got through, and says why (:data:`REFUSAL_UNSEEN`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal, cast

from novadiag.index import ClusterIndex
from novadiag.model import Edge, Finding, ObjectRef, ProbeConnect, ProbeDNS, ProbeHealth, ProbeObservation, Status
from novadiag.netpol.evaluation import PolicyIndex, evaluate_dns, service_denial
from novadiag.netpol.policy import Endpoint
from novadiag.probing.groups import PROBE_LABELS
from novadiag.probing.runner import GroupOutcome

ROUTE_NOT_PROBED = (
    "not probed: a routing object's backend is reached by its controller, whose namespace the audit "
    "does not know; pass --ingress-from NS (the controller's namespace)"
)
REFUSAL_UNSEEN = (
    "a probe from the controller's namespace resolved and reached the Service, which is all a probe can see: "
    "the Gateway API's refusal is the data plane's, and stands as predicted"
)

_DNS: dict[str, ProbeDNS] = {"ok": "ok", "nxdomain": "nxdomain", "servfail": "servfail", "timeout": "timeout"}


def merge_observations(
    edges: Iterable[Edge],
    outcomes: Iterable[GroupOutcome],
    index: ClusterIndex,
    *,
    policies: PolicyIndex | None = None,
    route_reasons: Mapping[str, str] | None = None,
) -> tuple[list[Edge], list[Finding]]:
    """Edges with their ``probe`` field and observed status, plus disagreement findings.

    ``policies``: the snapshot's NetworkPolicies, to tell when they treat the probe pod
    differently from the workload it stands in for (see :func:`stand_in_caveat`).
    ``route_reasons``: why each routing edge left unprobed was not probed (by edge id).
    """
    route_reasons = route_reasons or {}
    results: dict[str, tuple[dict[str, Any], str, str]] = {}
    errors: dict[str, str] = {}
    findings: list[Finding] = []
    for outcome in outcomes:
        if outcome.document is None:
            for edge_id in outcome.group.edge_ids:
                errors[edge_id] = outcome.error or "probe produced no result"
            if not outcome.forbidden:
                findings.append(not_run(outcome))
            continue
        by_check = {r["id"]: r for r in outcome.document.get("results") or ()}
        for check in outcome.group.checks:
            result = by_check.get(check.id)
            for edge_id in check.edge_ids:
                if result is None:
                    errors[edge_id] = f"probe pod {outcome.pod} returned no result for this check"
                else:
                    results[edge_id] = (result, outcome.pod, outcome.group.namespace)
    merged: list[Edge] = []
    for edge in edges:
        if edge.id in results:
            result, pod, probed_from = results[edge.id]
            caveat = stand_in_caveat(edge, result, index, policies, probed_from=probed_from)
            new = observe(edge, result, pod, index, caveat=caveat)
            if new.probe is not None and new.probe.agrees is False:
                findings.append(disagreement(edge, new))
            merged.append(new)
        elif edge.id in errors:
            merged.append(replace(edge, probe=ProbeObservation(dns="not-run", agrees=None, error=errors[edge.id])))
        elif edge.reference.routing:
            reason = route_reasons.get(edge.id, ROUTE_NOT_PROBED)
            merged.append(replace(edge, probe=ProbeObservation(dns="not-run", agrees=None, error=reason)))
        else:
            merged.append(edge)
    return merged, findings


def not_run(outcome: GroupOutcome) -> Finding:
    """Why one probe pod observed nothing, and what that leaves: the static verdicts of its edges."""
    group = outcome.group
    reason = outcome.error or f"probe pod {group.namespace}/{outcome.pod} produced no result"
    return Finding(
        "warning",
        "probe-not-run",
        f"{reason}; {len(group.edge_ids)} edge(s) from {group.namespace} keep their static verdict",
        ObjectRef("Pod", group.namespace, outcome.pod),
    )


def observed_status(edge: Edge, result: Mapping[str, Any], index: ClusterIndex) -> Status:
    """The status the observation supports, by the same layer order as the prediction."""
    if edge.status == "external":
        return "external"
    system = result.get("system") or {}
    if system.get("status") != "ok":
        if system.get("status") == "nxdomain" and _headless_without_endpoints(edge, index):
            return "no-endpoints"  # a headless Service with no ready endpoint answers NXDOMAIN, as predicted
        return "dns-unresolvable" if edge.target is not None else "unknown-target"
    connect = result.get("connect")
    if connect == "refused":
        return "port-mismatch" if edge.status == "port-mismatch" else "no-endpoints"
    if connect == "timeout":
        return "blocked"
    if connect in (None, "skipped") and edge.status in ("port-mismatch", "no-endpoints", "blocked", "unverified"):
        return edge.status  # no port, no connection: DNS was all the probe could see, the later layers stand
    return "ok"


def _headless_without_endpoints(edge: Edge, index: ClusterIndex) -> bool:
    reached = edge.resolves_to
    if edge.status != "no-endpoints" or reached is None or reached.namespace is None:
        return False
    svc = index.service(reached.namespace, reached.name)
    return svc is not None and svc.headless


def stand_in_caveat(
    edge: Edge,
    result: Mapping[str, Any],
    index: ClusterIndex,
    policies: PolicyIndex | None,
    *,
    probed_from: str | None = None,
) -> str | None:
    """Why this observation cannot speak for the workload, when NetworkPolicies say so; else None.

    A probe pod stands in for the workloads of its namespace, but policies select
    pods by label, and the probe carries novadiag's labels (copying the workload's
    would make its Services send traffic to the probe). Where the policies deny
    the probe what they allow the workload, a timeout is the policy doing its job
    on the probe, not a fault of the edge: the connection (or the whole lookup,
    when the probe's DNS egress is denied) is left out of the comparison.
    ``probed_from``: the probe pod's namespace (a routing edge's is its controller's).
    """
    if policies is None or (edge.status == "blocked" and not edge.reference.routing):
        return None  # a timeout is what the policy verdict predicts (a route's blocked is a Gateway API refusal)
    probe = Endpoint(probed_from or edge.reference.namespace, PROBE_LABELS, "novadiag-probe")
    system = result.get("system") or {}
    if system.get("status") == "timeout" and not evaluate_dns(policies, probe).allowed:
        return "NetworkPolicies deny the probe pod's DNS queries (they select the workload's labels, not the probe's)"
    if result.get("connect") != "timeout":
        return None
    reached = edge.resolves_to
    svc = None if reached is None else index.service(reached.namespace or "default", reached.name)
    if svc is None or service_denial(policies, probe, svc, port=edge.reference.port) is None:
        return None
    return (
        f"NetworkPolicies deny the probe pod the connection to {svc.namespace}/{svc.name} "
        "that they allow the workload (they select the workload's labels, not the probe's)"
    )


def observe(
    edge: Edge, result: Mapping[str, Any], pod: str, index: ClusterIndex, *, caveat: str | None = None
) -> Edge:
    """The edge as the probe saw it; with a ``caveat`` the part the policies spoiled is not compared."""
    system = result.get("system") or {}
    compared = result
    if caveat is not None:
        if system.get("status") == "timeout":  # the lookup itself was denied: nothing to compare
            observation = ProbeObservation(dns="timeout", agrees=None, error=f"not compared: {caveat}", pod=pod)
            return replace(edge, probe=observation)
        compared = {**result, "connect": "skipped", "health": "skipped"}
    status = observed_status(edge, compared, index)
    unseen = _refusal_unseen(edge, status)
    if unseen:
        status = edge.status
    candidates = result.get("candidates") or ()
    answered_by = next((c["name"].rstrip(".") for c in candidates if c.get("result") == "ok"), None)
    addresses = tuple(system.get("addresses") or ())
    if edge.status == "unverified" or unseen:
        agrees: bool | None = None
    else:
        agrees = status == edge.status and _same_target(edge, addresses, index)
    observation = ProbeObservation(
        dns=_dns_answer(system, candidates),
        addresses=addresses,
        answered_by=answered_by,
        connect=cast(ProbeConnect, result.get("connect") or "skipped"),
        health=cast(ProbeHealth, result.get("health") or "skipped"),
        agrees=agrees,
        error=f"connect not compared: {caveat}" if caveat else _error_text(system, result),
        tried=tuple((c["name"].rstrip("."), str(c.get("result"))) for c in candidates),
        pod=pod,
    )
    if agrees:
        detail = edge.detail
    elif unseen:
        detail = f"{edge.detail} ({REFUSAL_UNSEEN})"
    elif agrees is None and status == "unverified":
        detail = edge.detail  # the probe saw only DNS: the layers that were not read stay open
    else:
        detail = f"observed {status} from a probe pod ({_observed_text(observation)}); predicted: {edge.detail}"
    source: Literal["static", "probe"] = "static" if unseen else "probe"  # an unseen refusal: still the prediction
    return replace(edge, status=status, probe=observation, predicted=edge.status, verdict_from=source, detail=detail)


def _refusal_unseen(edge: Edge, observed: Status) -> bool:
    """A routing edge the Gateway API refuses, whose probe got through: the refusal is beyond what it sees.

    A routing edge is ``blocked`` only by the Gateway API's own rules (a missing
    ReferenceGrant, a route no Gateway accepts); its probe checks DNS and the
    connection, both of which succeed in that case. A connect that timed out (a
    NetworkPolicy on the probe pod's way) says nothing about that refusal either.
    """
    return edge.reference.routing and edge.status == "blocked" and observed in ("ok", "blocked")


def _dns_answer(system: Mapping[str, Any], candidates: Iterable[Mapping[str, Any]]) -> ProbeDNS:
    """The resolver's answer; glibc's EAI_AGAIN covers SERVFAIL *and* silence, the candidates tell which."""
    answer = _DNS.get(str(system.get("status")), "error")
    tried = [str(c.get("result")) for c in candidates]
    if answer == "servfail" and tried and all(t == "timeout" for t in tried):
        return "timeout"
    return answer


def _same_target(edge: Edge, addresses: tuple[str, ...], index: ClusterIndex) -> bool:
    """When the target has a ClusterIP, the probe must have reached that address."""
    target = edge.resolves_to or edge.target
    if not addresses or target is None or target.namespace is None:
        return True
    svc = index.service(target.namespace, target.name)
    if svc is None or not svc.cluster_ip or svc.cluster_ip in ("None", "none") or svc.type == "ExternalName":
        return True
    if svc.cluster_ip.startswith("10.") and not index.live:
        return True  # manifests' placeholder IPs say nothing about the cluster
    return svc.cluster_ip in addresses


def _error_text(system: Mapping[str, Any], result: Mapping[str, Any]) -> str | None:
    if system.get("status") != "ok":
        return str(system.get("error") or system.get("status"))
    if result.get("connect") in ("refused", "timeout") or result.get("health") == "failed":
        return str(result.get("detail") or result.get("connect"))
    return None


def _observed_text(observation: ProbeObservation) -> str:
    if observation.dns != "ok":
        return f"DNS {observation.dns}"
    via = f" as {observation.answered_by}" if observation.answered_by else ""
    return f"resolved{via} to {', '.join(observation.addresses)}, connect {observation.connect}"


def disagreement(before: Edge, after: Edge) -> Finding:
    """Explain why the cluster disagrees with the static model, as far as it can be told."""
    observed, predicted = after.status, before.status
    probe = after.probe
    assert probe is not None
    if predicted in ("dns-unresolvable", "unknown-target") and probe.dns == "ok":
        cause = (
            f"the name resolved ({'as ' + probe.answered_by if probe.answered_by else 'by the system resolver'}) "
            "though no Service explains it: a CoreDNS rewrite, a stub domain, a search domain of the node, "
            "or a record outside Kubernetes"
        )
    elif predicted not in ("dns-unresolvable", "unknown-target") and probe.dns != "ok":
        cause = (
            f"the cluster DNS did not answer for a Service that exists (DNS {probe.dns}): "
            "CoreDNS down or misconfigured, a stale cache, or another cluster domain"
        )
    elif observed == "no-endpoints":
        cause = "the connection was refused: no ready pod behind the Service, or a wrong targetPort"
    elif observed == "blocked":
        cause = "the connection timed out: a NetworkPolicy or the CNI dropped it"
    elif observed == predicted:
        cause = "the name reached a different address than the Service's ClusterIP: a rewrite or a stale record"
    else:
        cause = "the cluster behaves differently from its manifests"
    return Finding(
        "warning",
        "probe-disagrees",
        f"{before.id}: predicted {predicted}, observed {observed}: {cause}",
        before.source,
    )
