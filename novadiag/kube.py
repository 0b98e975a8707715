"""The only module that imports ``kubernetes``: config loading and raw REST calls.

novadiag uses the official client for what it is best at — kubeconfig parsing
(exec plugins, client certificates, tokens, contexts, in-cluster config) and
its connection pool — and bypasses its typed models. Lists come back as raw
JSON (``json.loads`` of the body): listing through the typed models takes 5-9×
longer (benchmarks/, docs/performance.md) and version 37's strict validation turns a missing
field into a crash instead of a gap.

Errors of the client, urllib3 and the network are wrapped here into
:mod:`novadiag.errors`; nothing from ``kubernetes`` or ``urllib3`` escapes.
Transient answers (429 with Retry-After, 500/502/503/504, dropped connections)
are retried with capped exponential backoff and jitter; an expired ``continue``
token (410) restarts the list from the beginning.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config import exec_provider
from kubernetes.config.config_exception import ConfigException

from novadiag.errors import (
    ClusterAccessError,
    ClusterUnreachable,
    ConfigError,
    PermissionDenied,
    Unauthorized,
)
from novadiag.kubesettings import KubeSettings as KubeSettings  # re-exported: the value lives apart, light to import
from novadiag.redaction import redact


@dataclass(frozen=True)
class KindInfo:
    """Where a kind lives in the REST API."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_prefix(self) -> str:
        return f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = self.api_prefix
        if namespace is not None and self.namespaced:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        return base


KINDS: dict[str, KindInfo] = {
    k.kind: k
    for k in (
        KindInfo("Namespace", "", "v1", "namespaces", namespaced=False),
        KindInfo("Service", "", "v1", "services"),
        KindInfo("Endpoints", "", "v1", "endpoints"),
        KindInfo("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices"),
        KindInfo("Pod", "", "v1", "pods"),
        KindInfo("Deployment", "apps", "v1", "deployments"),
        KindInfo("StatefulSet", "apps", "v1", "statefulsets"),
        KindInfo("DaemonSet", "apps", "v1", "daemonsets"),
        KindInfo("ReplicaSet", "apps", "v1", "replicasets"),
        KindInfo("Job", "batch", "v1", "jobs"),
        KindInfo("CronJob", "batch", "v1", "cronjobs"),
        KindInfo("ConfigMap", "", "v1", "configmaps"),
        KindInfo("Secret", "", "v1", "secrets"),
        KindInfo("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies"),
        KindInfo("ServiceAccount", "", "v1", "serviceaccounts"),
        KindInfo("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims"),
        KindInfo("Role", "rbac.authorization.k8s.io", "v1", "roles"),
        KindInfo("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings"),
        KindInfo("Ingress", "networking.k8s.io", "v1", "ingresses"),
        KindInfo("IngressClass", "networking.k8s.io", "v1", "ingressclasses", namespaced=False),
        KindInfo("Gateway", "gateway.networking.k8s.io", "v1", "gateways"),
        KindInfo("HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes"),
        KindInfo("GRPCRoute", "gateway.networking.k8s.io", "v1", "grpcroutes"),
        KindInfo("TLSRoute", "gateway.networking.k8s.io", "v1alpha2", "tlsroutes"),
        KindInfo("TCPRoute", "gateway.networking.k8s.io", "v1alpha2", "tcproutes"),
        KindInfo("ReferenceGrant", "gateway.networking.k8s.io", "v1beta1", "referencegrants"),
        KindInfo("VirtualService", "networking.istio.io", "v1beta1", "virtualservices"),
        KindInfo("DestinationRule", "networking.istio.io", "v1beta1", "destinationrules"),
        KindInfo("ServiceEntry", "networking.istio.io", "v1beta1", "serviceentries"),
    )
}

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(ClusterAccessError):
    """A non-success answer from the API server, with its HTTP status and reason."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFoundError(ApiError):
    """404 from the API server."""


class ExpiredError(ApiError):
    """410 Gone: a continue token or watch resourceVersion is too old."""


class KubeClient:
    """Raw JSON access to one cluster through the official client's configuration."""

    def __init__(self, settings: KubeSettings | None = None) -> None:
        self.settings = settings or KubeSettings()
        self.context_name, configuration = _load_configuration(self.settings)
        configuration.retries = 0  # our own loop retries, visibly and with backoff
        self._api = k8s_client.ApiClient(configuration)
        self._count_lock = threading.Lock()  # kinds are listed from several threads
        self.requests_made = 0
        self.host = redact(str(configuration.host))  # shown in messages and reports: no userinfo
        if not configuration.verify_ssl:
            _warn_insecure(self.host)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float | None = None,
    ) -> bytes:
        """One call with retries; returns the body of a 2xx answer or raises ApiError."""
        attempt = 0
        while True:
            attempt += 1
            raise_if_cancelled(method, path)
            try:
                status, headers, data = self._send(method, path, query, body, content_type, accept, timeout)
            except _TlsFailure:
                raise  # a certificate does not get better by asking again
            except ClusterUnreachable:
                if attempt > self.settings.max_retries or method not in ("GET", "DELETE"):
                    raise
                self._sleep(attempt, None)
                continue
            if 200 <= status < 300:
                return data
            if status in RETRY_STATUSES and attempt <= self.settings.max_retries:
                self._sleep(attempt, headers.get("Retry-After"))
                continue
            raise _api_error(status, data, method, path)

    def get_json(self, path: str, *, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return _decode(self.request("GET", path, query=query), path)

    def list_raw(
        self, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every object of a kind, page by page (``limit``/``continue``), as raw dicts.

        An expired continue token restarts the list once from the beginning:
        the alternative, a silently partial list, would hide workloads. The
        objects already yielded are not yielded twice.
        """
        info = KINDS[kind]
        path = info.path(namespace)
        restarted = False
        token: str | None = None
        yielded: list[dict[str, Any]] = []  # until a restart, when their identities become ``seen``
        seen: set[tuple[str, str]] = set()
        api_version = info.api_prefix.split("/", 2)[-1]
        while True:
            query: dict[str, Any] = {"limit": self.settings.page_size}
            if token:
                query["continue"] = token
            if label_selector:
                query["labelSelector"] = label_selector
            try:
                page = self.get_json(path, query=query)
            except ExpiredError:
                if restarted or not token:
                    raise
                restarted, token = True, None
                seen = {_identity(item) for item in yielded}
                continue
            items = page.get("items") or ()
            if restarted:  # only a restarted list can repeat what was already yielded
                items = [item for item in items if _identity(item) not in seen]
                seen.update(_identity(item) for item in items)
            else:
                yielded.extend(items)
            for item in items:
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", api_version)
                yield item
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return

    def create(self, kind: str, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        path = KINDS[kind].path(namespace)
        return _decode(self.request("POST", path, body=body), path)

    def patch(
        self, kind: str, namespace: str | None, name: str, body: Mapping[str, Any], *, strategic: bool = False
    ) -> dict[str, Any]:
        path = KINDS[kind].path(namespace, name)
        ctype = "application/strategic-merge-patch+json" if strategic else "application/merge-patch+json"
        return _decode(self.request("PATCH", path, body=body, content_type=ctype), path)

    def delete(self, kind: str, namespace: str | None, name: str, *, grace_seconds: int | None = 0) -> bool:
        """Delete one object; False when it was already gone."""
        path = KINDS[kind].path(namespace, name)
        query = {} if grace_seconds is None else {"gracePeriodSeconds": grace_seconds}
        try:
            self.request("DELETE", path, query=query)
        except NotFoundError:
            return False
        return True

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.get_json(KINDS[kind].path(namespace, name))
        except NotFoundError:
            return None

    def read_log(self, namespace: str, pod: str, *, container: str | None = None) -> str:
        path = KINDS["Pod"].path(namespace, pod) + "/log"
        query = {"container": container} if container else None
        return self.request("GET", path, query=query, accept="text/plain").decode("utf-8", "replace")

    def watch_raw(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 30,
    ) -> Iterator[dict[str, Any]]:
        """Watch events (``{"type": ..., "object": ...}``) until the server ends the stream.

        The caller resumes from the last ``metadata.resourceVersion`` it saw; an
        ``ERROR`` event with code 410 means that version is gone: list again.
        """
        query: dict[str, Any] = {"watch": "1", "timeoutSeconds": timeout_seconds, "allowWatchBookmarks": "true"}
        if label_selector:
            query["labelSelector"] = label_selector
        if resource_version:
            query["resourceVersion"] = resource_version
        path = KINDS[kind].path(namespace)
        request = self._api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        with self._count_lock:
            self.requests_made += 1
        try:
            response = self._api.call_api(
                *request, _request_timeout=(self.settings.request_timeout, timeout_seconds + 10)
            )
            if response.status != 200:
                raise _api_error(response.status, response.read() or b"", "GET", path)
            yield from _json_lines(response.response.stream(65536))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterUnreachable(f"watch of {path} broke: {_reason(exc)}") from exc

    # -- internals -----------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        content_type: str,
        accept: str,
        timeout: float | None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        request = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        with self._count_lock:
            self.requests_made += 1
        try:
            response = self._api.call_api(*request, _request_timeout=timeout or self.settings.request_timeout)
            data = response.read() or b""
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(getattr(exc, "reason", exc), urllib3.exceptions.SSLError):
                raise _TlsFailure(f"TLS with the API server at {self.host} failed: {_reason(exc)}") from exc
            raise ClusterUnreachable(f"cannot reach the API server at {self.host}: {_reason(exc)}") from exc
        return response.status, response.headers, data

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** (attempt - 1))
        delay = random.uniform(delay / 2, delay)
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), 60.0))
            except ValueError:
                pass
        cancel = getattr(_cancel, "event", None)
        if cancel is None:
            time.sleep(delay)
        elif cancel.wait(delay):
            raise RequestCancelled("the request was given up while waiting to retry")


class RequestCancelled(ClusterAccessError):
    """This thread's requests were told to stop (see :func:`cancelled_by`)."""


_cancel = threading.local()


@contextmanager
def cancelled_by(event: threading.Event) -> Iterator[None]:
    """Make this thread's requests give up once ``event`` is set: before each attempt and in a back-off.

    Kinds are listed from worker threads (:mod:`novadiag.listing`); when one kind fails or
    the user presses Ctrl-C, a worker waiting out a ``Retry-After`` of up to a minute must not
    hold the whole run. Per thread, so other users of the same client are not affected; a
    request already on the wire still ends by its own timeout.
    """
    previous = getattr(_cancel, "event", None)
    _cancel.event = event
    try:
        yield
    finally:
        _cancel.event = previous


def raise_if_cancelled(method: str, path: str) -> None:
    """What every request does first under :func:`cancelled_by` (a stand-in client should too)."""
    cancel = getattr(_cancel, "event", None)
    if cancel is not None and cancel.is_set():
        raise RequestCancelled(f"{method} {path}: given up, the run is stopping")


def _load_configuration(settings: KubeSettings) -> tuple[str | None, k8s_client.Configuration]:
    configuration = k8s_client.Configuration()
    where = _kubeconfig_path(settings)
    try:
        if settings.in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return "in-cluster", configuration
        with exec_plugin_deadline(settings.request_timeout) as unanswered, _exec_plugin_output_withheld(settings):
            k8s_config.load_kube_config(
                config_file=settings.kubeconfig,
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
        if unanswered:
            raise ConfigError(f"kubeconfig {where}: {unanswered[0]}")
        _, active = k8s_config.list_kube_config_contexts(config_file=settings.kubeconfig)
        name = settings.context or (active or {}).get("name")
        if not str(configuration.host or "").strip():
            raise ConfigError(f"kubeconfig {where}: the cluster of context {name} has no server")
        _one_refresh_at_a_time(configuration, settings)
    except ConfigException as exc:
        raise ConfigError(_kubeconfig_problem(settings, str(exc))) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"kubeconfig {where}{line}: invalid YAML") from exc
    except AttributeError as exc:  # an entry that is a string where kubectl writes a mapping
        problem = "malformed (a cluster, user or context entry is not a mapping)"
        raise ConfigError(f"kubeconfig {where}: {problem}") from exc
    except TypeError as exc:  # the loader indexes into whatever YAML it got: a string, a list
        problem = "not a kubeconfig (expected a mapping with clusters and contexts)"
        raise ConfigError(f"kubeconfig {where}: {problem}") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"kubeconfig {where}: cannot be loaded: {redact(_one_line(str(exc)))}") from exc
    return name, configuration


def _kubeconfig_path(settings: KubeSettings) -> str:
    """The file the client read: --kubeconfig, else $KUBECONFIG, else ~/.kube/config (as kubectl)."""
    return settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"


def _context_names(paths: str) -> list[str]:
    """The contexts the kubeconfig file(s) define, read without the client (which stops at the bad one)."""
    names: set[str] = set()
    for path in paths.split(os.pathsep):
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            continue
        contexts = data.get("contexts") if isinstance(data, dict) else None
        names.update(str(c["name"]) for c in contexts or () if isinstance(c, dict) and c.get("name"))
    return sorted(names)


def _kubeconfig_problem(settings: KubeSettings, message: str) -> str:
    """One line for a kubeconfig the client refused; an unknown context names the ones there are."""
    where = _kubeconfig_path(settings)
    if "No configuration found" in message:
        if os.path.exists(os.path.expanduser(where)):
            return f"kubeconfig {where}: empty (no clusters, users or contexts)"
        return f"kubeconfig {where}: not found (pass --kubeconfig, set KUBECONFIG, or try --lab nova)"
    unknown = re.search(r"Expected object with name (.*) in .*/contexts list", message)
    if unknown:
        names = ", ".join(_context_names(where)) or "none"
        which = "--context" if settings.context else "current-context"
        return f"kubeconfig {where}: no context {unknown.group(1)}, named by {which} (contexts: {names})"
    return f"kubeconfig {where}: {redact(_one_line(message))}"


def _one_refresh_at_a_time(configuration: k8s_client.Configuration, settings: KubeSettings) -> None:
    """Serialize the kubeconfig loader's credential refresh, which runs before every request.

    Kinds are listed from several threads (:mod:`novadiag.listing`); when an exec-plugin
    or OIDC token expires mid-listing, each thread would otherwise run the plugin at once
    (four ``kubelogin`` prompts). Behind the lock the first refreshes and the others find
    a fresh token. A plugin run by a refresh has ``settings.request_timeout`` seconds to answer, as at load.
    """
    inner = configuration.refresh_api_key_hook
    if inner is None:
        return
    lock = threading.Lock()

    def refresh(config: k8s_client.Configuration) -> None:
        nonlocal inner
        with lock, exec_plugin_deadline(settings.request_timeout), _exec_plugin_output_withheld(settings):
            inner(config)
            if config.refresh_api_key_hook is not refresh:  # the loader installs a new hook as it refreshes
                inner = config.refresh_api_key_hook
                config.refresh_api_key_hook = refresh

    configuration.refresh_api_key_hook = refresh


_plugin_deadline = threading.local()


@contextmanager
def exec_plugin_deadline(seconds: float) -> Iterator[list[str]]:
    """Exec credential plugins started by this thread within the block get ``seconds`` to answer.

    The official client runs the plugin and waits for it without a timeout, so
    a plugin that never returns (a login prompt nobody sees, a hung ``aws``
    call) would hang novadiag forever. :class:`_PluginProcess` kills it when the
    time is up; the client then logs the failure and goes on without
    credentials. Yields the list of what went unanswered, one line each, so the
    caller can stop with that reason instead of a 401 later.
    """
    previous = getattr(_plugin_deadline, "state", None)
    unanswered: list[str] = []
    _plugin_deadline.state = (seconds, unanswered)
    try:
        yield unanswered
    finally:
        _plugin_deadline.state = previous


class _PluginProcess(subprocess.Popen[str]):
    """The process of an exec credential plugin, killed when it outlives :func:`exec_plugin_deadline`."""

    def communicate(self, input: str | None = None, timeout: float | None = None) -> tuple[Any, Any]:
        state: tuple[float, list[str]] | None = getattr(_plugin_deadline, "state", None)
        if state is None:  # a plugin novadiag did not start (another client in the same process): as it was
            return super().communicate(input, timeout)
        seconds, unanswered = state
        try:
            return super().communicate(input, timeout if timeout is not None else seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            super().communicate()  # reap it and close its pipes
            command = self.args[0] if isinstance(self.args, list) else self.args
            problem = f"the exec credential plugin {command!s} did not answer within {seconds:g}s (--request-timeout)"
            unanswered.append(problem)
            raise ConfigException(f"exec: {problem}") from None


class _PluginSubprocess:
    """The ``subprocess`` module as the client's exec provider sees it: its Popen is :class:`_PluginProcess`."""

    Popen = _PluginProcess

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)


setattr(exec_provider, "subprocess", _PluginSubprocess())  # noqa: B010 - the provider's one use: starting the plugin


_EXEC_EXIT_RE = re.compile(r"exec: process returned (-?\d+)")
_exec_warned: set[str] = set()
_exec_lock = threading.Lock()


class _ExecPluginMessages(logging.Filter):
    """Drops the kubeconfig loader's ``exec:`` log records, which quote the plugin's stderr, and keeps the gist.

    The official client runs the plugin, and when it fails logs ``exec:
    process returned 1. <everything the plugin wrote on stderr>`` on the root
    logger, and goes on without a credential. A plugin's stderr can hold a
    token (a debug line, a refresh token in an error), so the record is not
    let through; :func:`_exec_plugin_output_withheld` says what happened instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.failed = False
        self.exit_status: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("exec:"):
            return True
        self.failed = True
        status = _EXEC_EXIT_RE.match(message)
        if status is not None:
            self.exit_status = status.group(1)
        return False


@contextmanager
def _exec_plugin_output_withheld(settings: KubeSettings) -> Iterator[None]:
    """While the client may run the exec plugin: its messages withheld, one warning of ours (once per failure kind)."""
    messages = _ExecPluginMessages()
    root = logging.getLogger()
    root.addFilter(messages)
    try:
        yield
    finally:
        root.removeFilter(messages)
    if messages.failed:
        _warn_exec_failure(_exec_plugin_command(settings), messages.exit_status)


def _warn_exec_failure(command: str, exit_status: str | None) -> None:
    what = f"failed (exit status {exit_status})" if exit_status is not None else "gave no usable credential"
    warning = f"the exec credential plugin {command} {what}"
    with _exec_lock:
        if warning in _exec_warned:
            return
        _exec_warned.add(warning)
    print(f"novadiag: warning: {warning}; its output is not shown, as it may hold a credential", file=sys.stderr)


def _exec_plugin_command(settings: KubeSettings) -> str:
    """The ``exec.command`` of the context's user, read from the kubeconfig file(s) as the client merges them."""
    contexts: dict[str, Any] = {}
    users: dict[str, Any] = {}
    current = settings.context
    for path in _kubeconfig_path(settings).split(os.pathsep):
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(data, dict):
            continue
        current = current or data.get("current-context")
        for section, found in (("contexts", contexts), ("users", users)):
            for entry in data.get(section) or ():
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    found.setdefault(entry["name"], entry.get(section[:-1]))
    context = contexts.get(str(current))
    user = users.get(str(context.get("user"))) if isinstance(context, dict) else None
    plugin = user.get("exec") if isinstance(user, dict) else None
    command = plugin.get("command") if isinstance(plugin, dict) else None
    return redact(_one_line(command)) if isinstance(command, str) and command.strip() else "(unnamed)"


def _api_error(status: int, data: bytes, method: str, path: str) -> ApiError:
    message, reason = f"HTTP {status}", ""
    try:
        doc = json.loads(data)
        if isinstance(doc, dict):
            message = str(doc.get("message") or message)
            reason = str(doc.get("reason") or "")
    except ValueError:
        pass
    text = f"{method} {path}: {redact(_one_line(message))}"
    if status == 401:
        return _Unauthorized(f"the API server rejected the credentials (401): {text}", status=401)
    if status == 403:
        return _Forbidden(text, status=403, reason=reason)
    if status == 404:
        return NotFoundError(text, status=404, reason=reason)
    if status == 410:
        return ExpiredError(text, status=410, reason=reason)
    return ApiError(text, status=status, reason=reason)


class _Unauthorized(ApiError, Unauthorized):
    pass


class _Forbidden(ApiError, PermissionDenied):
    pass


class _TlsFailure(ClusterUnreachable):
    """The server's certificate (or the handshake) failed verification: not retried."""


def _json_lines(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """Watch events, one JSON object per line; a stream cut mid-event is a broken stream."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield from _event(line)
    if buffer.strip():
        yield from _event(buffer)


def _event(line: bytes) -> Iterator[dict[str, Any]]:
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise ClusterUnreachable("the watch stream ended in the middle of an event") from exc
    if isinstance(event, dict):
        yield event


def _identity(item: Mapping[str, Any]) -> tuple[str, str]:
    meta = item.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("uid") or meta.get("name") or id(item))


def _decode(data: bytes, path: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ClusterAccessError(f"GET {path}: the API server answered with invalid JSON") from exc
    if not isinstance(doc, dict):
        raise ClusterAccessError(f"GET {path}: the API server answered with a non-object")
    return doc


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None) or exc
    return redact(_one_line(str(inner)))[:200]


_insecure_warned: set[str] = set()
_insecure_lock = threading.Lock()


def _warn_insecure(host: str) -> None:
    """``insecure-skip-tls-verify`` comes only from the kubeconfig: honour it, say so once per server.

    urllib3's own warning, repeated per request, is silenced in its place.
    """
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    with _insecure_lock:
        if host in _insecure_warned:
            return
        _insecure_warned.add(host)
    print(
        f"novadiag: warning: TLS certificate verification is off for {host} "
        "(insecure-skip-tls-verify in the kubeconfig): anyone on the path can read the token",
        file=sys.stderr,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
