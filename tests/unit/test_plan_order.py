"""Dependency order: dependencies first, cycles as one unit, gateways last."""

from __future__ import annotations

from novadiag.model import ObjectRef
from novadiag.planning.order import dependency_order


def _w(name: str) -> ObjectRef:
    return ObjectRef("Deployment", "ns", name)


def test_dependencies_come_first() -> None:
    db, api, web = _w("db"), _w("api"), _w("web")
    order = dependency_order([web, api, db], {web: [api], api: [db]})
    assert [units for units, _ in order] == [(db,), (api,), (web,)]


def test_a_cycle_is_one_unit_and_named_as_such() -> None:
    a, b, c = _w("a"), _w("b"), _w("c")
    order = dependency_order([a, b, c], {a: [b], b: [a], c: [a]})
    assert order == [((a, b), True), ((c,), False)]


def test_gateway_goes_last_among_what_is_free() -> None:
    gateway, worker, db = _w("gateway"), _w("worker"), _w("db")
    order = dependency_order([gateway, worker, db], {gateway: [db], worker: [db]}, last=[gateway])
    assert order[-1] == ((gateway,), False)


def test_self_references_are_not_cycles() -> None:
    a = _w("a")
    assert dependency_order([a], {a: [a]}) == [((a,), False)]
