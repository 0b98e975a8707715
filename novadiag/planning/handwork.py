"""The edit a person makes when the plan cannot rewrite a host itself: where, and from what to what."""

from __future__ import annotations

from novadiag.model import Reference


def manual_change(ref: Reference, new_host: str, new_port: int | None, *, why: str) -> str:
    """Why a host outside the env is not rewritten, and the edit a person makes instead.

    ``kafka is named in line 1 of the init-script of container wait (nc -z kafka 9092), not rewritten:
    <why>; change kafka there to kafka.data``.
    """
    if ref.origin == "init-script":
        place = f"{ref.location} of the init-script of container {ref.container}"
    elif ref.location is not None and ref.location.startswith("line "):
        place = f"{ref.location} of the script in {ref.origin} of container {ref.container}"
    else:
        place = f"{ref.slot} of container {ref.container}"
    change = f"{ref.host} there to {new_host}"
    if new_port is not None and new_port != ref.port:
        change += f" and port {ref.port} to {new_port}"
    return f"{ref.host} is named in {place} ({ref.reference}), not rewritten: {why}; change {change}"


def file_instruction(ref: Reference, new_host: str, new_port: int | None) -> str:
    """What to change by hand in a mounted config file the plan cannot rewrite.

    A Secret's file is masked in the snapshot, and a ConfigMap file may hold
    the host apart from a port that must change; the step names the object,
    the key, the place inside the file, and the text.
    """
    source, _, name_key = ref.origin.removeprefix("file:").partition("/")
    name, _, key = name_key.partition("/")
    kind = "Secret" if source == "secret" else "ConfigMap"
    old = ref.host if ref.port is None else f"{ref.host}:{ref.port}"
    port = ref.port if new_port is None else new_port
    new = new_host if port is None else f"{new_host}:{port}"
    return (
        f"{ref.host} is named in a mounted file the plan cannot rewrite: in {kind} {ref.namespace}/{name}, "
        f"key {key}, change {old} to {new} at {ref.location}"
    )
