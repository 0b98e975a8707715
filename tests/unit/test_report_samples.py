"""The committed sample reports in ``reports/`` are what the current code renders.

A renderer change shows up as a diff of those files in review; this test keeps
them from going stale, and running the generator twice proves the outputs are
deterministic (no timestamps, no absolute paths).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from novadiag.samples import REFRESH, SAMPLES, nova_report, render_samples, write_samples

REPORTS = Path(__file__).resolve().parents[2] / "reports"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_samples(nova_report())


def test_every_format_has_a_sample(rendered: dict[str, str]) -> None:
    assert sorted(rendered) == sorted(f"nova.{ext}" for ext in SAMPLES)


@pytest.mark.parametrize("name", [f"nova.{ext}" for ext in SAMPLES])
def test_committed_sample_is_current(rendered: dict[str, str], name: str) -> None:
    committed = REPORTS / name
    assert committed.exists(), f"reports/{name} is missing: run {REFRESH} to refresh"
    assert committed.read_text(encoding="utf-8") == rendered[name], f"reports/{name} is stale: run {REFRESH} to refresh"


def test_samples_hold_no_machine_specific_text(rendered: dict[str, str]) -> None:
    here = str(Path(__file__).resolve().parents[2])
    assert not [name for name, text in rendered.items() if here in text or "/tmp/" in text]


def test_generator_writes_the_same_bytes_twice(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in write_samples(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in write_samples(tmp_path / "b")}
    assert first == second
