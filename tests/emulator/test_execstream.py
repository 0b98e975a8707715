"""The WebSocket channel protocol of ``pods/exec``, byte for byte (RFC 6455 and k8s channels)."""

from __future__ import annotations

import os
import struct

import pytest

from novadiag.lab.execstream import (
    OP_BINARY,
    OP_CONTINUATION,
    OP_PING,
    FrameReader,
    ProtocolError,
    accept_key,
    choose_protocol,
    exit_status,
    frame,
)


def client_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A frame as a client sends it: masked."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_accept_key_is_the_rfc_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_v5_is_preferred_and_unknown_protocols_are_refused() -> None:
    assert choose_protocol("v4.channel.k8s.io, v5.channel.k8s.io") == "v5.channel.k8s.io"
    assert choose_protocol("v4.channel.k8s.io") == "v4.channel.k8s.io"
    assert choose_protocol("channel.k8s.io, base64.channel.k8s.io") is None
    assert choose_protocol(None) is None


def test_server_frames_are_unmasked_with_the_right_length_encoding() -> None:
    assert frame(OP_BINARY, b"\x01hi") == b"\x82\x03\x01hi"
    assert frame(OP_BINARY, b"x" * 300)[:4] == b"\x82\x7e\x01\x2c"
    assert frame(OP_BINARY, b"x" * 70000)[:2] == b"\x82\x7f"


def test_fragmented_masked_messages_are_joined_and_pings_pass_between() -> None:
    reader = FrameReader()
    data = (client_frame(OP_BINARY, b"\x00hel", fin=False) + client_frame(OP_PING, b"p")
            + client_frame(OP_CONTINUATION, b"lo" * 100))
    messages = []
    for i in range(0, len(data), 7):  # arrives in pieces
        messages += list(reader.feed(data[i:i + 7]))
    assert messages == [(OP_PING, b"p"), (OP_BINARY, b"\x00hel" + b"lo" * 100)]


def test_unmasked_client_frames_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        list(FrameReader().feed(frame(OP_BINARY, b"\x00x")))


def test_exit_status_is_what_kubectl_reads_its_exit_code_from() -> None:
    assert exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    failed = exit_status(3, ["sh", "-c", "exit 3"])
    assert failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert failed["message"].endswith("error executing command [sh -c exit 3], exit code 3")
