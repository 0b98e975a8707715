"""API errors of the lab API server, rendered as Kubernetes ``Status`` objects.

Clients branch on ``code`` and ``reason`` (the Python client raises ``ApiException``
with the status; kubectl prints ``message`` after ``Error from server (NotFound):``),
so each error carries the same triple a real API server sends, with the
``details`` (name, group, kind = resource plural, causes) it fills in.
"""

from __future__ import annotations

from typing import Any

from novadiag.lab.resources import Resource
from novadiag.lab.store import StoreError

Obj = dict[str, Any]

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class StatusError(Exception):
    """An error answer: HTTP code, Status reason, message, optional details and headers."""

    def __init__(self, code: int, message: str, *, reason: str | None = None,
                 details: Obj | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details
        self.headers = headers or {}

    def status(self) -> Obj:
        return status_object(self.code, self.message, reason=self.reason, details=self.details)


def status_object(code: int, message: str, *, reason: str | None = None,
                  details: Obj | None = None) -> Obj:
    """A ``Status`` with ``status: Failure`` (``Success`` for 2xx)."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason if reason is not None else REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def details_for(resource: Resource, name: str | None, **extra: Any) -> Obj:
    out: Obj = {"kind": resource.plural}
    if name:
        out["name"] = name
    if resource.group:
        out["group"] = resource.group
    out.update(extra)
    return out


def not_found(resource: Resource, name: str) -> StatusError:
    return StatusError(404, f'{resource.qualified} "{name}" not found',
                    details=details_for(resource, name))


def namespace_not_found(namespace: str) -> StatusError:
    return StatusError(404, f'namespaces "{namespace}" not found',
                    details={"name": namespace, "kind": "namespaces"})


def already_exists(resource: Resource, name: str) -> StatusError:
    return StatusError(409, f'{resource.qualified} "{name}" already exists', reason="AlreadyExists",
                    details=details_for(resource, name))


def conflict(resource: Resource, name: str) -> StatusError:
    return StatusError(
        409,
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details=details_for(resource, name),
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, message)


def method_not_allowed() -> StatusError:
    return StatusError(405, "the server does not allow this method on the requested resource",
                    details={})


def unknown_path() -> StatusError:
    return StatusError(404, "the server could not find the requested resource",
                    details={"causes": [{"reason": "UnexpectedServerResponse",
                                         "message": "404 page not found"}]})


def from_store_error(error: StoreError, resource: Resource, name: str | None) -> StatusError:
    """Translate a Store exception into the Status a real server sends."""
    name = name or ""
    if error.code == 404:
        return not_found(resource, name)
    if error.reason == "AlreadyExists":
        return already_exists(resource, name)
    if error.code == 409:
        return conflict(resource, name)
    if error.code == 422:
        causes = getattr(error, "causes", None)
        details = details_for(resource, name, causes=causes) if causes else details_for(
            resource, name)
        return StatusError(422, str(error), details=details)
    return StatusError(error.code, str(error), reason=error.reason)
