"""Oversized and hostile inputs cost bounded memory and time, or stop with one clear line.

Memory is measured in a fresh child process (its peak RSS), so the numbers are
those of one ``novadiag`` run and not of the test session. The budgets leave
room for the interpreter and its imports (~110 MB here).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_support import REPO, cli_env

from novadiag.cli import main

MEASURE = """
import json, resource, sys, time
import novadiag
started = time.monotonic()
report = novadiag.audit(manifests=[sys.argv[1]])
text = report.render("json")
print(json.dumps({"seconds": time.monotonic() - started, "edges": len(report.edges),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(directory: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
        cwd=REPO,
        check=True,
    )
    return dict(json.loads(done.stdout))


def workload(env: list[dict[str, Any]] | None = None, env_from: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "x", "env": env or []}
    if env_from:
        container["envFrom"] = [{"configMapRef": {"name": env_from}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}}, "spec": {"containers": [container]}},
        },
    }


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(("http://a:b@" * 1_000_000)[:10_000_000], id="url-credentials-repeated"),
        pytest.param(("kafka-1:9092," * 800_000)[:10_000_000], id="broker-list"),
    ],
)
def test_a_10_mb_configmap_value(tmp_path: Path, value: str):
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big", "namespace": "default"},
        "data": {"DATA_URL": value, "API_URL": "http://api:80"},
    }
    (tmp_path / "m.json").write_text(json.dumps({"kind": "List", "items": [configmap, workload(env_from="big")]}))
    seen = measure(tmp_path)
    assert seen["edges"] == 1  # API_URL; the 10 MB value is no reference
    assert seen["seconds"] < 15
    assert seen["peak_mb"] < 600


def test_100000_env_vars(tmp_path: Path):
    env = [{"name": f"VAR_{i}", "value": f"svc-{i % 50}:80" if i % 3 == 0 else f"v{i}"} for i in range(100_000)]
    (tmp_path / "m.json").write_text(json.dumps(workload(env)))
    seen = measure(tmp_path)
    assert seen["edges"] == 33_334
    assert seen["seconds"] < 20
    assert seen["peak_mb"] < 800


def one_line_error(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    started = time.monotonic()
    code = main(["audit", "--manifests", str(path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("novadiag: error: ")
    assert time.monotonic() - started < 10
    return err[0]


def test_a_1_gb_manifest_file_is_refused_before_it_is_read(tmp_path: Path, capsys):
    big = tmp_path / "huge.yaml"
    with big.open("wb") as f:
        f.truncate(1 << 30)  # sparse: costs no disk
    assert one_line_error(big, capsys).endswith("huge.yaml: file is 1024 MiB, over the 256 MiB limit")


def test_a_deeply_nested_manifest_is_refused(tmp_path: Path, capsys):
    nested: Any = "bottom"
    for _ in range(500):
        nested = {"a": nested}
    (tmp_path / "deep.json").write_text(json.dumps({"kind": "ConfigMap", "metadata": {"name": "x"}, "data": nested}))
    assert one_line_error(tmp_path / "deep.json", capsys).endswith("deep.json: document nested deeper than 200 levels")


def test_yaml_nested_past_the_parser_limit_is_refused(tmp_path: Path, capsys):
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "deep.yaml:1: invalid YAML" in one_line_error(tmp_path / "deep.yaml", capsys)


def test_a_billion_laughs_is_refused(tmp_path: Path, capsys):
    lines = ["x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    body = "\n".join("    " + line for line in lines)
    (tmp_path / "bomb.yaml").write_text(f"kind: ConfigMap\nmetadata:\n  name: bomb\n  annotations:\n{body}\n")
    message = one_line_error(tmp_path / "bomb.yaml", capsys)
    assert re.search(r"bomb\.yaml: YAML aliases expand to [\d,]{11} values \(over 1,000,000\)$", message), message


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path, capsys):
    (tmp_path / "loop.yaml").write_text("kind: ConfigMap\nmetadata:\n  name: loop\n  labels: &l {a: *l}\n")
    assert one_line_error(tmp_path / "loop.yaml", capsys).endswith("loop.yaml: a YAML alias contains itself")


def test_aliases_of_ordinary_size_are_fine(tmp_path: Path):
    text = """
kind: Deployment
apiVersion: apps/v1
metadata: {name: app, namespace: default}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - {name: a, image: x, env: &env [{name: API_URL, value: "http://api:80"}]}
        - {name: b, image: x, env: *env}
"""
    (tmp_path / "m.yaml").write_text(text)
    assert main(["audit", "--manifests", str(tmp_path), "--format", "json", "-o", str(tmp_path / "r.json")]) == 1
    assert len(json.loads((tmp_path / "r.json").read_text())["edges"]) == 2


def bounded_child(*args: str) -> subprocess.CompletedProcess[str]:
    """``novadiag ARGS`` in a child held to 2 GB and 20 s: an unbounded read fails the test, not the machine."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
    program = limit + "import sys; from novadiag.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=cli_env(),
        cwd=REPO,
        check=False,
    )


def test_a_snapshot_that_never_ends_is_refused():
    done = bounded_child("audit", "--snapshot", "/dev/zero")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "novadiag: error: /dev/zero: not a regular file (a pipe, a device or a socket could block or never end)"
    ]


def test_a_snapshot_fifo_is_refused_instead_of_waiting_for_a_writer(tmp_path: Path):
    fifo = tmp_path / "snap.json"
    os.mkfifo(fifo)
    done = bounded_child("snapshot", "save", str(tmp_path / "copy.json"), "--snapshot", str(fifo))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"novadiag: error: {fifo}: not a regular file (a pipe, a device or a socket could block or never end)"
    ]
    assert not (tmp_path / "copy.json").exists()


def test_a_1_gb_snapshot_is_refused_before_it_is_read(tmp_path: Path):
    big = tmp_path / "huge.json"
    with big.open("wb") as f:
        f.truncate(1 << 30)  # sparse: costs no disk
    done = bounded_child("audit", "--snapshot", str(big))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"novadiag: error: {big}: snapshot file is 1024 MiB, over the 256 MiB limit"]
