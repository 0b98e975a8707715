"""Rendering a large report pays no garbage-collector rescans of the audit's heap.

The audit and the graph are built with the cyclic collector paused
(:func:`novadiag.snapshot.paused_gc`); the HTML page and the Markdown report
allocate as much again on top of that heap, and with the
collector running its rescans cost more than half the page's time at size L
(docs/performance.md). Each is built with the collector paused, and it runs
again afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import novadiag
from benchmarks.generate import SIZES, generate_objects, write_snapshot

RENDERERS: dict[str, Callable[[novadiag.Report], object]] = {
    "html": lambda r: r.render("html"),
    "markdown": lambda r: r.render("markdown", all_edges=True),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> novadiag.Report:
    """The benchmark's size S (7,345 edges): enough allocation that a running collector would run."""
    path = write_snapshot(generate_objects(SIZES["S"]), tmp_path_factory.mktemp("size-s") / "s.json")
    report = novadiag.audit(snapshot=path)
    for render in RENDERERS.values():
        render(report)  # renderer modules imported and the graph built before anything is counted
    return report


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of each collection that starts while the test runs."""
    seen: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.collect()  # the allocation count starts from zero
    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_rendering_runs_with_the_collector_paused_and_leaves_it_on(
    report: novadiag.Report, collections: list[int], name: str
) -> None:
    rendered = RENDERERS[name](report)
    assert collections == []  # at the default thresholds, a collection every 700 allocations were it on
    assert "namespace" in str(rendered)
    assert gc.isenabled()
