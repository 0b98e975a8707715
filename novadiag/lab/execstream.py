"""``pods/exec`` over WebSocket: the Kubernetes channel protocol, server side.

``kubectl exec`` (1.30+) opens ``GET .../pods/<pod>/exec?command=...`` as a
WebSocket (RFC 6455) asking for the ``v5.channel.k8s.io`` subprotocol (or
``v4``). Every binary message then starts with one byte naming its channel:

- 0 stdin (client → server), 1 stdout and 2 stderr (server → client);
- 3 error: one JSON ``Status`` when the command ends — ``Success``, or
  ``Failure`` with reason ``NonZeroExitCode`` and the exit code as the
  ``ExitCode`` cause, from which kubectl takes its own exit code;
- 4 resize (terminals; ignored here), and in v5 only 255 close: ``[255, n]``
  says the client closed its side of channel n (stdin's end-of-file).

This module speaks enough of it for non-interactive commands with or without
stdin: it frames the process's output as it comes, feeds stdin, answers pings,
sends the status and closes. One thread does it all with ``select`` over the TLS
socket and the process's pipes: an ``ssl.SSLSocket`` must not be read and written
from two threads at once. A client that goes away kills the command.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator
from typing import Any, Protocol

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 16 * 1024 * 1024
CHUNK = 32 * 1024
POLL_SECONDS = 0.5


class ProtocolError(Exception):
    """The client broke the WebSocket framing rules."""


class ExecError(Exception):
    """A command cannot be run in a container (it is not running, or the lab is degraded)."""


class ContainerExec(Protocol):
    """The kubelet's side of exec: whether a container can run a command, and running it."""

    def exec_refusal(self, namespace: str, pod: str, container: str) -> str | None: ...

    def start_exec(self, namespace: str, pod: str, container: str, command: list[str], *,
                   stdin: bool) -> subprocess.Popen[bytes]: ...


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1((key.strip() + WEBSOCKET_GUID).encode("ascii")).digest()  # noqa: S324 - the RFC's hash
    return base64.b64encode(digest).decode("ascii")


def choose_protocol(offered: str | None) -> str | None:
    """Our preferred channel protocol among those the client offers (a comma-separated header)."""
    names = {p.strip() for p in (offered or "").split(",")}
    return next((p for p in PROTOCOLS if p in names), None)


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (servers never mask)."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload


def exit_status(code: int, command: list[str]) -> dict[str, Any]:
    """The ``Status`` a real API server relays on the error channel when the command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
                   f"[{' '.join(command)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


class FrameReader:
    """Client frames out of the bytes received so far (masked, possibly fragmented)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._parts: list[bytes] = []
        self._opcode = 0

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Add received bytes; yield each complete message as (opcode, payload)."""
        self._buffer += data
        while (parsed := self._one_frame()) is not None:
            fin, opcode, payload = parsed
            if opcode >= OP_CLOSE:  # control frames may come between fragments
                yield opcode, payload
                continue
            if opcode != OP_CONTINUATION:
                self._opcode, self._parts = opcode, []
            self._parts.append(payload)
            if sum(map(len, self._parts)) > MAX_MESSAGE:
                raise ProtocolError("message too large")
            if fin:
                yield self._opcode, b"".join(self._parts)
                self._parts = []

    def _one_frame(self) -> tuple[bool, int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        fin, opcode, masked, size = bool(buf[0] & 0x80), buf[0] & 0x0F, buf[1] & 0x80, buf[1] & 0x7F
        offset = 2
        if size == 126:
            if len(buf) < 4:
                return None
            size, offset = struct.unpack_from("!H", buf, 2)[0], 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size, offset = struct.unpack_from("!Q", buf, 2)[0], 10
        if size > MAX_MESSAGE:
            raise ProtocolError("frame too large")
        if not masked:
            raise ProtocolError("client frames must be masked")
        end = offset + 4 + size
        if len(buf) < end:
            return None
        mask = bytes(buf[offset:offset + 4])
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[offset + 4:end]))
        del buf[:end]
        return fin, opcode, payload


class ExecSession:
    """One upgraded connection relaying one process, until the process ends or the client goes."""

    def __init__(self, conn: ssl.SSLSocket, proc: subprocess.Popen[bytes], *, protocol: str,
                 command: list[str], stopping: threading.Event) -> None:
        self.conn = conn
        self.proc = proc
        self.protocol = protocol
        self.command = command
        self.stopping = stopping
        self._reader = FrameReader()
        self._outputs = {proc.stdout.fileno(): STDOUT} if proc.stdout else {}
        if proc.stderr:
            self._outputs[proc.stderr.fileno()] = STDERR
        self._client_gone = False

    def run(self) -> None:
        """Relay until the command's output ends and it exits; then the status and a close frame."""
        self.conn.settimeout(10)
        try:
            while self._outputs and not self._client_gone and not self.stopping.is_set():
                self._pump()
            if self._client_gone or self.stopping.is_set():
                return
            code = self.proc.wait()
            self._send_channel(ERROR, json.dumps(exit_status(code, self.command)).encode())
            self._send(OP_CLOSE, struct.pack("!H", 1000))
        except (OSError, ProtocolError):
            return
        finally:
            self._end_process()

    def _pump(self) -> None:
        if self.conn.pending():
            self._receive()
            return
        watched: list[Any] = [self.conn, *self._outputs]
        readable, _, _ = select.select(watched, [], [], POLL_SECONDS)
        for source in readable:
            if source is self.conn:
                self._receive()
            else:
                self._forward(int(source))

    def _forward(self, fd: int) -> None:
        data = os.read(fd, CHUNK)
        if data:
            self._send_channel(self._outputs[fd], data)
        else:
            del self._outputs[fd]

    def _receive(self) -> None:
        try:
            data = self.conn.recv(CHUNK)
        except ssl.SSLWantReadError:
            return
        if not data:
            self._client_gone = True
            return
        for opcode, payload in self._reader.feed(data):
            self._on_message(opcode, payload)

    def _on_message(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_CLOSE:
            self._client_gone = True
        elif opcode == OP_PING:
            self._send(OP_PONG, payload)
        elif opcode == OP_BINARY and payload:
            self._on_channel(payload[0], payload[1:])

    def _on_channel(self, channel: int, data: bytes) -> None:
        stdin = self.proc.stdin
        if channel == STDIN and stdin is not None and data:
            try:
                stdin.write(data)
                stdin.flush()
            except BrokenPipeError:  # the command stopped reading; its output still counts
                self.proc.stdin = None
        elif channel == CLOSE and data[:1] == bytes([STDIN]) and stdin is not None:
            stdin.close()
            self.proc.stdin = None

    def _send_channel(self, channel: int, data: bytes) -> None:
        self._send(OP_BINARY, bytes([channel]) + data)

    def _send(self, opcode: int, payload: bytes) -> None:
        self.conn.sendall(frame(opcode, payload))

    def _end_process(self) -> None:
        """Kill whatever is left of the command (a client that left, a stopping server) and reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except OSError:
                self.proc.kill()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        self.proc.wait()
