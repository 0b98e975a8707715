"""The lab's HTTPS Kubernetes API server.

Clients reach the lab only through a kubeconfig, like a cluster: HTTPS with the
lab's own CA, a bearer token, the REST paths of the kinds novadiag reads and
writes. The server is the stdlib's ``ThreadingHTTPServer`` (one thread per
connection, HTTP/1.1 keep-alive, chunked streaming for watch and ``logs -f``)
with TLS handshakes done in the connection's thread, so a slow client never
blocks ``accept``. It binds the lab's ``127.N.0.1`` on an ephemeral port.

Request pipeline: admin endpoints (``/lab/v1/...``, admin token only, never
faulted) → authentication (unknown or revoked token: 401) → request counting →
fault rules (latency, 429/500/503, dropped connection, expired continue tokens)
→ authorization (403 with kube-apiserver's wording) → discovery or the REST verb
(``rest.RestStorage``) → a JSON answer or a ``Status`` error.

Admin endpoints (JSON, ``Authorization: Bearer <admin token>``):

- ``GET /lab/v1/healthz`` → ``{"status": "ok", "resourceVersion": ...}``
- ``GET /lab/v1/faults``; ``POST /lab/v1/faults`` with one rule, a list, or
  ``{"faults": [...]}`` (rule fields in ``faults.py``) → 201 ``{"faults": [added]}``;
  ``DELETE /lab/v1/faults`` clears all, ``DELETE /lab/v1/faults/<id>`` one
- ``POST /lab/v1/tokens`` with ``{"user": "ci", "rules": [...], "token"?: "..."}``
  (rule format in ``rbac.py``) → 201 ``{"token": ..., "user": ...}``
- ``GET /lab/v1/metrics`` → ``{"total": N, "requests": {"list pods": 3, ...}}``, the
  request counts per (verb, resource) that benchmarks report as "API requests
  made"; ``DELETE /lab/v1/metrics`` resets them.

On start the server also creates what a fresh cluster has: the ``default``,
``kube-system``, ``kube-public`` and ``kube-node-lease`` namespaces, one Node,
``lab-node`` (existing ones are kept), the ``default/kubernetes`` Service pointing
at itself, and in every namespace the ``kube-root-ca.crt`` ConfigMap and the
``default`` ServiceAccount (see ``bootstrap.py``). Its certificate names the
Service's ClusterIP and ``kubernetes.default.svc.<zone>`` too, so a pod can reach
the API server the way in-cluster clients do.
"""

from __future__ import annotations

import json
import logging
import platform
import ssl
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from novadiag.lab import admission, execstream, resources
from novadiag.lab.apierrors import StatusError, method_not_allowed, unknown_path
from novadiag.lab.bootstrap import NamespaceDefaults, publish_kubernetes_service
from novadiag.lab.execstream import ContainerExec
from novadiag.lab.faults import FaultAction, FaultConfigError, FaultRequest, FaultSet
from novadiag.lab.httpio import JSON, DropConnection, Exchange, Handler, TlsHttpServer
from novadiag.lab.network import LabNetwork
from novadiag.lab.pki import DEFAULT_DNS_NAMES, Pki, ensure_pki
from novadiag.lab.rbac import Authorizer, Identity, RbacConfigError, RequestAttributes
from novadiag.lab.rest import LogProvider, RestStorage, Route, parse_route, verb_for
from novadiag.lab.store import AlreadyExists, Obj, Store, now_rfc3339
from novadiag.lab.tables import to_table
from novadiag.lab.watchstream import WatchStream

logger = logging.getLogger(__name__)

NODE_NAME = "lab-node"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
LOG_POLL_SECONDS = 0.5


class RequestMetrics:
    """Thread-safe request counts per (verb, resource)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def count(self, verb: str, resource: str) -> None:
        with self._lock:
            self._counts[(verb, resource)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
        return {
            "total": sum(counts.values()),
            "requests": {f"{verb} {res}": n for (verb, res), n in sorted(counts.items())},
        }

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class ApiServer:
    """An HTTPS Kubernetes API server over ``store``, bound to ``network.api_ip``.

    Example (in a test)::

        server = ApiServer(store, network=LabNetwork(7), pki_dir=tmp / "pki",
                           admin_token="secret")
        server.start()
        write_kubeconfig(tmp / "kubeconfig", server_url=server.url,
                         ca_pem=server.ca_path.read_bytes(), token="secret", scenario="t")
        ...
        server.stop()
    """

    def __init__(self, store: Store, *, network: LabNetwork, pki_dir: Path, port: int = 0,
                 admin_token: str, rbac: Mapping[str, Any] | None = None,
                 faults: list[Mapping[str, Any]] | None = None,
                 log_provider: LogProvider | None = None,
                 container_exec: ContainerExec | None = None,
                 cluster_domain: str = "cluster.local") -> None:
        self.store = store
        self.network = network
        self.pki_dir = Path(pki_dir)
        self.host = network.api_ip
        self._requested_port = port
        self.authorizer = Authorizer(admin_token, rbac)
        self.faults = FaultSet(faults or ())
        self.metrics = RequestMetrics()
        self.rest = RestStorage(store, network=network, log_provider=log_provider)
        self.cluster_domain = cluster_domain.strip(".")
        self.container_exec = container_exec
        self._namespace_defaults: NamespaceDefaults | None = None
        self.stopping = threading.Event()
        self._httpd: TlsHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._pki: Pki | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("the API server is already running")
        self._pki = ensure_pki(
            self.pki_dir, ip_addresses=[self.host, self.network.kubernetes_service_ip],
            dns_names=[*DEFAULT_DNS_NAMES, f"kubernetes.default.svc.{self.cluster_domain}"])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._pki.server_cert, self._pki.server_key)
        context.set_alpn_protocols(["http/1.1"])
        self._bootstrap()
        self.stopping.clear()
        httpd = TlsHttpServer((self.host, self._requested_port), Handler, context, self)
        self._httpd = httpd
        publish_kubernetes_service(self.store, self.network, self.port, self._admit)
        self._namespace_defaults = NamespaceDefaults(
            self.store, self._pki.ca_pem.decode("ascii")).start()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="lab-apiserver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._namespace_defaults is not None:
            self._namespace_defaults.stop()
            self._namespace_defaults = None
        self.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the API server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.pki_dir / "ca.crt"

    def _bootstrap(self) -> None:
        """What a fresh cluster has before anyone applies anything: system namespaces, a node."""
        wanted: list[Obj] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            for name in SYSTEM_NAMESPACES
        ]
        wanted.append(_node(self.network))
        for obj in wanted:
            try:
                self.store.create(self._admit(obj))
            except AlreadyExists:
                pass  # a restarted lab, or a scenario that ships its own

    def _admit(self, obj: Obj) -> Obj:
        return admission.admit(obj, network=self.network, store=self.store)

    # -- request handling (called from the connection threads) -------------------------------------
    def handle(self, exchange: Exchange) -> None:
        path = exchange.path
        if path.startswith("/lab/v1/"):
            self._handle_admin(exchange)
            return
        if path in ("/healthz", "/livez", "/readyz"):
            exchange.send_text(200, "ok")
            return
        route = parse_route(path)
        verb = verb_for(exchange.method, route, exchange.query) if route else "get"
        resource = _resource_label(route) if route else path
        self.metrics.count(verb, resource)
        identity = self._authenticate(exchange)
        self._apply_faults(exchange, route, verb)
        if route is None:
            self._discovery(exchange)
            return
        if route.resource.kind == "SelfSubjectAccessReview" and verb == "create":
            exchange.send_json(201, self._access_review(identity, exchange.json_body()))
            return
        self._authorize(identity, route, verb)
        if route.subresource == "exec":
            self._serve_exec(exchange, route)
            return
        self._serve_resource(exchange, route, verb)

    def _authenticate(self, exchange: Exchange) -> Identity:
        token = exchange.bearer_token()
        identity = None if self.faults.token_revoked(token) else self.authorizer.authenticate(
            token)
        if identity is None:
            raise StatusError(401, "Unauthorized")
        return identity

    def _apply_faults(self, exchange: Exchange, route: Route | None, verb: str) -> None:
        request = FaultRequest(
            method=exchange.method, path=exchange.path,
            namespace=route.namespace if route else None, verb=verb,
            resource=_resource_label(route) if route else None,
            token=exchange.bearer_token(), has_continue=bool(exchange.query.get("continue")),
        )
        action = self.faults.action_for(request)
        exchange.fault = action
        if action is None:
            return
        if action.latency_ms:
            self.stopping.wait(action.latency_ms / 1000)
        if action.drop_connection:
            raise DropConnection()
        if action.status is not None:
            raise _fault_error(action)

    def _authorize(self, identity: Identity, route: Route, verb: str) -> None:
        res = route.resource
        attrs = RequestAttributes(
            verb=verb, api_group=res.group, resource=res.plural, subresource=route.subresource,
            namespace=route.namespace, name=route.name, namespaced=res.namespaced,
        )
        message = self.authorizer.forbidden_message(identity, attrs)
        if message is not None:
            details: dict[str, Any] = {"kind": res.plural}
            if route.name:
                details["name"] = route.name
            if res.group:
                details["group"] = res.group
            raise StatusError(403, message, details=details)

    def _access_review(self, identity: Identity, review: Any) -> Obj:
        """``kubectl auth can-i``: the same decision a real request would get."""
        if not isinstance(review, dict):
            raise StatusError(400, "the request body must be a SelfSubjectAccessReview")
        spec = review.get("spec") or {}
        attrs = spec.get("resourceAttributes")
        allowed, reason = True, "non-resource URLs are open to every authenticated user"
        if isinstance(attrs, dict):
            resource = resources.lookup(str(attrs.get("group") or ""),
                                        str(attrs.get("version") or ""),
                                        str(attrs.get("resource") or ""))
            request = RequestAttributes(
                verb=str(attrs.get("verb") or ""), api_group=str(attrs.get("group") or ""),
                resource=str(attrs.get("resource") or ""),
                subresource=attrs.get("subresource") or None,
                namespace=attrs.get("namespace") or None, name=attrs.get("name") or None,
                namespaced=resource.namespaced if resource else True)
            denial = self.authorizer.forbidden_message(identity, request)
            # Real RBAC gives no reason for a denial (kubectl then prints a bare "no").
            allowed, reason = denial is None, "" if denial else "allowed by the lab's RBAC rules"
        status: dict[str, Any] = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

    # -- discovery ---------------------------------------------------------------------------
    def _discovery(self, exchange: Exchange) -> None:
        if exchange.method != "GET":
            raise method_not_allowed()
        document = self._discovery_document(exchange.path.rstrip("/") or "/")
        if document is None:
            raise unknown_path()
        exchange.send_json(200, document)

    def _discovery_document(self, path: str) -> dict[str, Any] | None:
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            return dict(resources.SERVER_VERSION)
        if path == "/api":
            return resources.api_versions(f"{self.host}:{self.port}")
        if path == "/apis":
            return resources.api_group_list()
        if parts[:1] == ["api"] and len(parts) == 2:
            return resources.api_resource_list("", parts[1])
        if parts[:1] == ["apis"] and len(parts) == 2:
            return resources.api_group(parts[1])
        if parts[:1] == ["apis"] and len(parts) == 3:
            return resources.api_resource_list(parts[1], parts[2])
        if path == "/openapi/v3":
            return resources.openapi_v3_index()
        if parts[:3] == ["openapi", "v3", "api"] and len(parts) == 4:
            return resources.openapi_v3_document("", parts[3])
        if parts[:3] == ["openapi", "v3", "apis"] and len(parts) == 5:
            return resources.openapi_v3_document(parts[3], parts[4])
        return None

    # -- resources ---------------------------------------------------------------------------
    def _serve_resource(self, exchange: Exchange, route: Route, verb: str) -> None:
        _check_verb(route, verb)
        query = exchange.query
        rest = self.rest
        if verb == "watch":
            self._stream_watch(exchange, route)
        elif verb == "list":
            expire = bool(exchange.fault and exchange.fault.expire_continue)
            listing = rest.list_objects(route, query, expire_continue=expire)
            if exchange.wants_table():
                exchange.send_json(200, to_table(route.resource, listing))
            else:
                exchange.send_bytes(200, self._encode_list(listing), JSON)
        elif verb == "get" and route.subresource == "log":
            self._serve_log(exchange, route)
        elif verb == "get":
            obj = rest.get(route)
            exchange.send_json(200, to_table(route.resource, {"items": [obj], "metadata": {
                "resourceVersion": obj["metadata"].get("resourceVersion", "")}})
                               if exchange.wants_table() and not route.subresource else obj)
        elif verb == "create":
            exchange.send_json(201, rest.create(route, exchange.json_body(), query))
        elif verb == "update":
            exchange.send_json(200, rest.update(route, exchange.json_body(), query))
        elif verb == "patch":
            exchange.send_json(200, rest.patch(route, exchange.json_body(),
                                               exchange.content_type, query))
        elif verb == "delete":
            exchange.send_json(200, rest.delete(route, exchange.json_body(optional=True), query))
        elif verb == "deletecollection":
            exchange.send_json(200, rest.delete_collection(route, query))
        else:
            raise method_not_allowed()

    def _encode_list(self, listing: Obj) -> bytes:
        """The ``<Kind>List`` document as ``json.dumps`` would write it, items from the store's encodings."""
        head = json.dumps({k: v for k, v in listing.items() if k != "items"}, separators=(",", ":"))
        items = b",".join(self.store.encoded(listing["items"]))
        return b"".join((head[:-1].encode(), b',"items":[', items, b"]}"))

    def _stream_watch(self, exchange: Exchange, route: Route) -> None:
        stream = WatchStream(self.store, route, exchange.query, stop=self.stopping)
        events = stream.events()
        as_table = exchange.wants_table()
        first = True
        exchange.start_stream(JSON)
        for event in events:
            if event is None:
                if exchange.client_gone():
                    break
                continue
            if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                table = to_table(route.resource, {"items": [event["object"]]})
                if not first:
                    table["columnDefinitions"] = []
                event = {"type": event["type"], "object": table}
                first = False
            exchange.write_chunk(json.dumps(event).encode() + b"\n")
        exchange.end_stream()

    def _serve_log(self, exchange: Exchange, route: Route) -> None:
        text = self.rest.read_log(route, exchange.query)
        if exchange.query.get("follow") not in ("true", "1"):
            exchange.send_text(200, text)
            return
        pod = self.rest.get(Route(route.resource, route.namespace, route.name))
        container = self.rest.log_container(pod, exchange.query.get("container"))
        sent = len(self._log_text(route, container))
        exchange.start_stream("text/plain")
        exchange.write_chunk(text.encode())
        while not self.stopping.wait(LOG_POLL_SECONDS) and not exchange.client_gone():
            try:
                pod = self.rest.get(Route(route.resource, route.namespace, route.name))
            except StatusError:
                break
            full = self._log_text(route, container)
            if len(full) > sent:
                exchange.write_chunk(full[sent:].encode())
                sent = len(full)
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                break
        exchange.end_stream()

    def _log_text(self, route: Route, container: str) -> str:
        provider = self.rest.log_provider
        if provider is None:
            return ""
        return provider(route.namespace or "", route.name or "", container) or ""

    # -- pods/exec ---------------------------------------------------------------------------
    def _serve_exec(self, exchange: Exchange, route: Route) -> None:
        """``kubectl exec``: check the request as kube-apiserver does, then relay over WebSocket.

        Every refusal comes before the protocol check: kubectl retries a refused
        WebSocket with SPDY, and the user must see why, not that SPDY is unsupported.
        """
        namespace, name = route.namespace or "", route.name or ""
        pod = self.rest.get(Route(route.resource, namespace, name))
        container = self.rest.log_container(pod, exchange.query.get("container"))
        command = exchange.query_values("command")
        if not command:
            raise StatusError(400, "you must specify at least 1 command")
        runtime = self.container_exec
        refusal = "this API server runs no kubelet" if runtime is None else runtime.exec_refusal(
            namespace, name, container)
        if refusal is not None or runtime is None:
            raise StatusError(400, f"unable to upgrade connection: {refusal}")
        if (exchange.header("Upgrade") or "").lower() != "websocket":
            raise StatusError(400, "the lab API server speaks exec over WebSocket only "
                           "(v5.channel.k8s.io, kubectl 1.30 or newer), not SPDY")
        protocol = execstream.choose_protocol(exchange.header("Sec-WebSocket-Protocol"))
        if protocol is None:
            raise StatusError(400, "unable to upgrade connection: no supported channel protocol "
                           f"(the lab offers {', '.join(execstream.PROTOCOLS)})")
        try:
            proc = runtime.start_exec(namespace, name, container, command,
                                      stdin=exchange.query.get("stdin") in ("true", "1"))
        except execstream.ExecError as exc:
            raise StatusError(400, f"unable to upgrade connection: {exc}") from exc
        exchange.upgrade_websocket(execstream.accept_key(exchange.header("Sec-WebSocket-Key") or ""),
                                   protocol)
        execstream.ExecSession(exchange.handler.connection, proc, protocol=protocol,
                               command=command, stopping=self.stopping).run()

    # -- admin endpoints ---------------------------------------------------------------------
    def _handle_admin(self, exchange: Exchange) -> None:
        token = exchange.bearer_token()
        if token != self.authorizer.admin_token:
            if self.authorizer.authenticate(token) is None:
                raise StatusError(401, "Unauthorized")
            raise StatusError(403, "the lab admin endpoints need the admin token")
        parts = [p for p in exchange.path.split("/") if p][2:]
        method = exchange.method
        if parts == ["healthz"] and method == "GET":
            exchange.send_json(200, {"status": "ok", "resourceVersion": str(
                self.store.resource_version), "time": now_rfc3339()})
        elif parts == ["metrics"] and method == "GET":
            exchange.send_json(200, self.metrics.snapshot())
        elif parts == ["metrics"] and method == "DELETE":
            self.metrics.reset()
            exchange.send_json(200, self.metrics.snapshot())
        elif parts[:1] == ["faults"]:
            self._admin_faults(exchange, parts[1:])
        elif parts == ["tokens"] and method == "POST":
            self._admin_tokens(exchange)
        else:
            raise unknown_path()

    def _admin_faults(self, exchange: Exchange, rest: list[str]) -> None:
        method = exchange.method
        if method == "GET" and not rest:
            exchange.send_json(200, {"faults": self.faults.describe()})
        elif method == "POST" and not rest:
            body = exchange.json_body()
            specs = body.get("faults") if isinstance(body, dict) and "faults" in body else body
            specs = specs if isinstance(specs, list) else [specs]
            try:
                added = [self.faults.add(spec) for spec in specs]
            except FaultConfigError as exc:
                raise StatusError(400, str(exc)) from exc
            exchange.send_json(201, {"faults": added})
        elif method == "DELETE" and not rest:
            self.faults.clear()
            exchange.send_json(200, {"faults": []})
        elif method == "DELETE" and len(rest) == 1:
            if not self.faults.remove(rest[0]):
                raise StatusError(404, f'fault "{rest[0]}" not found')
            exchange.send_json(200, {"faults": self.faults.describe()})
        else:
            raise method_not_allowed()

    def _admin_tokens(self, exchange: Exchange) -> None:
        body = exchange.json_body()
        if not isinstance(body, dict) or not body.get("user"):
            raise StatusError(400, 'a token request needs {"user": ..., "rules": [...]}')
        try:
            token = self.authorizer.mint(str(body["user"]), body.get("rules") or [],
                                         token=body.get("token"))
        except RbacConfigError as exc:
            raise StatusError(400, str(exc)) from exc
        exchange.send_json(201, {"token": token, "user": body["user"]})


def _resource_label(route: Route) -> str:
    res = route.resource
    name = f"{res.plural}.{res.group}" if res.group else res.plural
    return f"{name}/{route.subresource}" if route.subresource else name


def _check_verb(route: Route, verb: str) -> None:
    sub = route.subresource
    if sub is None:
        allowed = route.resource.verbs
    elif sub == "log":
        allowed = ("get",)
    elif sub == "exec":
        allowed = ("create",)
    else:
        allowed = ("get", "patch", "update")
    if verb not in allowed:
        raise method_not_allowed()


def _fault_error(action: FaultAction) -> StatusError:
    code = int(action.status or 500)
    headers = {}
    if code in (429, 503):
        headers["Retry-After"] = str(action.retry_after)
    default = {
        429: "Too many requests, please try again later.",
        500: "Internal error (injected by the lab)",
        503: "The server is currently unable to handle the request",
    }.get(code, f"injected fault {code}")
    details: dict[str, Any] = {"retryAfterSeconds": action.retry_after} if headers else {}
    return StatusError(code, action.message or default, details=details or None, headers=headers)


def _node(network: LabNetwork) -> Obj:
    now = now_rfc3339()
    info = {
        "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "novadiag-lab://1",
        "kernelVersion": platform.release(), "kubeProxyVersion": "v1.32.4",
        "kubeletVersion": "v1.32.4", "machineID": "", "operatingSystem": "linux",
        "osImage": "novadiag lab", "systemUUID": "",
    }
    capacity = {"cpu": "2", "memory": "24Gi", "pods": "110"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {
            "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/control-plane": ""}},
        "spec": {"podCIDR": f"127.{network.block}.0.0/16"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "lab kubelet is posting ready status",
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": network.api_ip},
                          {"type": "Hostname", "address": NODE_NAME}],
            "nodeInfo": info, "capacity": capacity, "allocatable": capacity,
        },
    }


__all__ = ["ApiServer", "RequestMetrics"]
