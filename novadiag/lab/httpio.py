"""HTTP/1.1 over TLS for the lab API server: connections, requests, streamed answers.

The stdlib's ``ThreadingHTTPServer`` with three changes that a Kubernetes client
notices: the TLS handshake runs in the connection's own thread (a slow or broken
client never blocks ``accept``), answers go out as one buffered write with
``TCP_NODELAY`` (no 40 ms delayed-ACK stalls between kubectl's many small
requests), and open connections are tracked so that stopping the server also
ends keep-alive connections and watch streams. The application is anything with
``handle(exchange)``; it answers through :class:`Exchange` and signals errors by
raising :class:`~novadiag.lab.apierrors.StatusError` (sent as a ``Status``) or
:class:`DropConnection`.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import yaml

from novadiag.lab.apierrors import StatusError
from novadiag.lab.faults import FaultAction
from novadiag.lab.patch import APPLY_PATCH_YAML
from novadiag.lab.protobuf import ProtobufError, decode_object
from novadiag.lab.tables import TABLE_ACCEPT

logger = logging.getLogger("novadiag.lab.apiserver")

HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0
MAX_BODY = 64 * 1024 * 1024
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"


class DropConnection(Exception):
    """Close the connection without an answer (a fault rule's ``drop_connection``)."""


class Application(Protocol):
    """What the server calls for each request."""

    def handle(self, exchange: Exchange) -> None: ...


class TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext, app: Application) -> None:
        self.ssl_context = context
        self.app = app
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wrapped = self.ssl_context.wrap_socket(sock, server_side=True,
                                               do_handshake_on_connect=False)
        return wrapped, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("lab API server: connection from %s failed", client_address,
                     exc_info=True)


class Exchange:
    """One request/response on a connection: parsed request and answer helpers."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.method = handler.command
        split = urlsplit(handler.path)
        self.path = split.path
        self.query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.content_type = handler.headers.get("Content-Type") or JSON
        self.body = self._read_body()
        self.fault: FaultAction | None = None
        self.responded = False

    def _read_body(self) -> bytes:
        headers = self.handler.headers
        length = headers.get("Content-Length")
        if length:
            size = int(length)
            if size > MAX_BODY:
                raise StatusError(413, "the request body is too large")
            return self.handler.rfile.read(size)
        if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
            return b"".join(_read_chunks(self.handler.rfile.readline, self.handler.rfile.read))
        return b""

    def query_values(self, name: str) -> list[str]:
        """Every value of a repeated query parameter (``?command=cat&command=/etc/hosts``)."""
        return parse_qs(urlsplit(self.handler.path).query, keep_blank_values=True).get(name, [])

    def header(self, name: str) -> str | None:
        return self.handler.headers.get(name)

    def bearer_token(self) -> str | None:
        header = self.handler.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    def wants_table(self) -> bool:
        return TABLE_ACCEPT in (self.handler.headers.get("Accept") or "")

    def json_body(self, *, optional: bool = False) -> Any:
        if not self.body.strip():
            if optional:
                return None
            raise StatusError(400, "the request body is empty")
        media = self.content_type.split(";", 1)[0].strip().lower()
        if media == PROTOBUF:
            try:
                return decode_object(self.body)
            except ProtobufError as exc:
                raise StatusError(415, str(exc)) from exc
        if "protobuf" in media or "cbor" in media:
            raise StatusError(415, f"the body of the request was in an unknown format - accepted "
                           f"media types include: application/json, application/yaml, "
                           f"application/merge-patch+json, application/strategic-merge-patch"
                           f"+json, application/json-patch+json (got {media})")
        try:
            if media == APPLY_PATCH_YAML or media.endswith("yaml"):
                return yaml.safe_load(self.body)
            return json.loads(self.body)
        except (ValueError, yaml.YAMLError) as exc:
            raise StatusError(400, f"couldn't decode the request body: {exc}") from exc

    # -- answers -----------------------------------------------------------------------------
    def send_json(self, code: int, document: Any, headers: Mapping[str, str] | None = None
                  ) -> None:
        self.send_bytes(code, json.dumps(document, separators=(",", ":")).encode(), JSON,
                        headers)

    def send_text(self, code: int, text: str) -> None:
        self.send_bytes(code, text.encode(), "text/plain")

    def send_bytes(self, code: int, data: bytes, content_type: str,
                   headers: Mapping[str, str] | None = None) -> None:
        handler = self.handler
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Cache-Control", "no-cache, private")
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        self.responded = True
        handler.wfile.write(data)

    def upgrade_websocket(self, accept: str, protocol: str) -> None:
        """Answer 101 Switching Protocols; the connection then carries WebSocket frames, then closes."""
        handler = self.handler
        handler.send_response(101)
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept)
        handler.send_header("Sec-WebSocket-Protocol", protocol)
        handler.end_headers()
        handler.wfile.flush()
        handler.close_connection = True
        self.responded = True

    def start_stream(self, content_type: str) -> None:
        handler = self.handler
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Cache-Control", "no-cache, private")
        handler.end_headers()
        self.responded = True
        handler.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        if not data:
            return
        wfile = self.handler.wfile
        wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        wfile.flush()

    def end_stream(self) -> None:
        try:
            self.handler.wfile.write(b"0\r\n\r\n")
            self.handler.wfile.flush()
        except OSError:
            self.handler.close_connection = True

    def client_gone(self) -> bool:
        """True when the client closed (or sent anything) while we stream to it."""
        conn = self.handler.connection
        try:
            readable, _, _ = select.select([conn], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


def _read_chunks(readline: Callable[[], bytes], read: Callable[[int], bytes]) -> Iterator[bytes]:
    total = 0
    while True:
        size = int(readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while readline().strip():
                pass
            return
        total += size
        if total > MAX_BODY:
            raise StatusError(413, "the request body is too large")
        yield read(size)
        readline()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "novadiag-lab-apiserver"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    wbufsize = 64 * 1024  # one TLS record per answer; handle_one_request flushes
    server: TlsHttpServer

    def setup(self) -> None:
        self.request.settimeout(HANDSHAKE_TIMEOUT)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("lab API server: " + format, *args)

    def _dispatch(self) -> None:
        started = time.monotonic()
        exchange: Exchange | None = None
        try:
            exchange = Exchange(self)
            self.server.app.handle(exchange)
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except StatusError as exc:
            self._send_error(exchange, exc)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - a bug must answer 500, not kill the thread
            logger.exception("lab API server: internal error on %s %s", self.command, self.path)
            self._send_error(exchange, StatusError(500, f"Internal error: {exc}"))
        finally:
            logger.debug("lab API server: %s %s in %.1f ms", self.command, self.path,
                         (time.monotonic() - started) * 1000)

    def _send_error(self, exchange: Exchange | None, error: StatusError) -> None:
        if exchange is None or exchange.responded:
            self.close_connection = True
            if exchange is None:
                data = json.dumps(error.status()).encode()
                try:
                    self.send_response(error.code)
                    self.send_header("Content-Type", JSON)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass
            return
        try:
            exchange.send_json(error.code, error.status(), error.headers)
        except OSError:
            self.close_connection = True

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch
