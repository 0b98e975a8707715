"""The benchmark's quick mode, as docs/performance.md tells people to run it.

``python -m benchmarks.run --size S --only static`` must print one line per
measurement with every field and ratio; timings are not asserted (the machine
is shared), only that the numbers are there and judged against their targets.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.generate import SIZES, count_kinds, generate_objects
from novadiag.lab.generate import EXPECTED_BROKEN_ANNOTATION

ROOT = Path(__file__).resolve().parents[2]


def _quick_run(tmp_path_factory: pytest.TempPathFactory, only: str, timeout: float) -> str:
    """``python -m benchmarks.run --size S --only ONLY --repeat 1`` in a fresh workdir: its output."""
    workdir = tmp_path_factory.mktemp(f"bench-{only}")
    cmd = [sys.executable, "-m", "benchmarks.run", "--size", "S", "--only", only, "--repeat", "1"]
    proc = subprocess.run(
        [*cmd, "--workdir", str(workdir)], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _quick_run(tmp_path_factory, "static", timeout=120)


def _line(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.split()[0] == name)


def test_quick_mode_prints_the_floors_and_the_audit(smoke_output: str) -> None:
    names = {line.split()[0] for line in smoke_output.splitlines() if line.strip()}
    assert {"machine", "floor", "floor-nogc", "static"} <= names


def test_audit_line_has_time_memory_requests_and_probe_pods(smoke_output: str) -> None:
    fields = dict(item.split("=", 1) for item in _line(smoke_output, "static").split() if "=" in item)
    assert float(fields["wall_s"]) > 0 and float(fields["peak_rss_mb"]) > 0
    assert (fields["api_requests"], fields["probe_pods"]) == ("0", "0")


def test_audit_line_judges_each_ratio_against_its_target(smoke_output: str) -> None:
    line = _line(smoke_output, "static")
    assert re.search(r"wall_vs_floor=\d+\.\d+ \(<=2\.5 (ok|MISS)\)", line)
    assert re.search(r"rss_vs_floor=\d+\.\d+ \(<=2 (ok|MISS)\)", line)
    assert re.search(r"with_graph_vs_floor=\d+\.\d+", line)
    assert float(_fields(line)["graph_s"]) > 0 and int(_fields(line)["graph_rss_mb"]) > 0


def test_audit_finds_exactly_the_generated_broken_references(smoke_output: str) -> None:
    objects = generate_objects(SIZES["S"])
    expected = sum(
        len(obj["metadata"].get("annotations", {}).get(EXPECTED_BROKEN_ANNOTATION, "").split(",") or ())
        for obj in objects
        if EXPECTED_BROKEN_ANNOTATION in obj["metadata"].get("annotations", {})
    )
    assert f"broken={expected} " in _line(smoke_output, "static") + " "


def test_size_s_has_the_namespaces_services_and_workloads_it_promises() -> None:
    counts = count_kinds(generate_objects(SIZES["S"]))
    assert (counts["Namespace"], counts["Service"], counts["Deployment"] + counts["StatefulSet"]) == (50, 400, 1000)


def test_lab_variant_asks_for_no_pods() -> None:
    objects = generate_objects(SIZES["S"], replicas=0)
    assert {o["spec"]["replicas"] for o in objects if o["kind"] in ("Deployment", "StatefulSet")} == {0}


@pytest.fixture(scope="module")
def listing_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _quick_run(tmp_path_factory, "listing", timeout=300)


def _fields(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split() if "=" in item)


def test_listing_lines_read_the_same_objects_with_one_list_per_kind(listing_output: str) -> None:
    names = ("list-bare", "list-bare-par", "list-bare-kept", "list-novadiag", "list-typed")
    lines = {name: _fields(_line(listing_output, name)) for name in names}
    assert len({fields["objects"] for fields in lines.values()}) == 1
    assert int(lines["list-novadiag"]["objects"]) > 6000  # the lab adds ReplicaSets and EndpointSlices to S
    for fields in lines.values():
        assert fields["api_requests"] == fields["expected_requests"]
        assert int(fields["minor_faults"]) > 0 and "sys_s" in fields


def test_listing_line_judges_novadiag_against_each_floor(listing_output: str) -> None:
    ours = _line(listing_output, "list-novadiag")
    assert re.search(r"requests_vs_expected=1\.00 \(<=1 ok\)", ours)
    assert re.search(r"wall_vs_bare=\d+\.\d+ \(<=1\.5 (ok|MISS)\)", ours)
    assert re.search(r"wall_vs_bare_kept=\d+\.\d+", ours)
    assert re.search(r"typed_vs_novadiag=\d+\.\d+ \(>=5 (ok|MISS)\)", _line(listing_output, "list-typed"))


def test_report_lines_say_what_writing_each_report_adds_to_the_audit(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    output = _quick_run(tmp_path_factory, "report", timeout=180)
    json_line = _line(output, "report-json")
    assert re.search(r"json_wall_added=-?\d+\.\d+ \(<=0\.25 (ok|MISS)\)", json_line)
    assert re.search(r"json_rss_added=-?\d+\.\d+ \(<=0\.25 (ok|MISS)\)", json_line)
    assert float(_fields(json_line)["file_mb"]) > 0 and _fields(json_line)["edges"] == "7345"
    for name in ("report-json-dict", "report-table", "report-html"):
        assert re.search(r"wall_added=-?\d+\.\d+ rss_added=-?\d+\.\d+", _line(output, name))


def test_startup_lines_judge_each_command_against_a_bare_interpreter(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    output = _quick_run(tmp_path_factory, "startup", timeout=180)
    python = _fields(_line(output, "python"))
    assert int(python["runs"]) == 15 and 0 < float(python["best_s"]) <= float(python["median_s"])
    for name, ratio, bound in (
        ("version", "version_vs_python", "3"),
        ("audit-json", "audit_json_vs_python", "6"),
        ("audit-table", "audit_table_vs_python", "6"),
    ):
        line = _line(output, name)
        assert re.search(rf"{ratio}=\d+\.\d+ \(<={bound} (ok|MISS)\) best_vs_python=\d+\.\d+", line)
        assert float(_fields(line)["best_s"]) > float(python["best_s"])
