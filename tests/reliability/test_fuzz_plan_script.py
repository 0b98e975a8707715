"""Property-based: a generated migration script passes cluster data to kubectl exactly, never as code.

Env values are data from the cluster, and the ``rewrite`` strategy writes
them back (with the host fixed) through ``kubectl patch`` in a bash script.
For env values full of shell syntax — quotes, backticks, ``$VAR``, ``;``,
``|``, ``&``, globs, backslashes — the script is executed for real
(``--execute``) with a fake ``kubectl`` and ``novadiag`` on the PATH that
record their argv: the patch must carry the exact value, and nothing else may
run. The same holds for a container's ``args``, which a rewrite sends as a whole
list: the item naming the host changes at the host only, the others not at all.
Object names that are not DNS-1123 are refused before any script exists.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from novadiag.cli import main
from novadiag.redaction import redact

pytestmark = pytest.mark.skipif(not Path("/bin/bash").exists(), reason="needs bash")

SHELLY = st.text(alphabet="ab'\"`|;&<>\\*?{}[]~!#$%^()=+,@:-_.", min_size=1, max_size=24)
RECORDER = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["ARGV_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def manifests(value: str, *, caller: str = "web", args: list[str] | None = None) -> list[dict[str, Any]]:
    def deployment(name: str, ns: str, env: list[dict[str, str]], args: list[str] | None = None) -> dict[str, Any]:
        container: dict[str, Any] = {"name": "main", "image": "x", "ports": [{"containerPort": 80}], "env": env}
        if args is not None:
            container["args"] = args
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [container]},
                },
            },
        }

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "api", "namespace": "b"},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]},
        },
        deployment("api", "b", []),
        deployment(caller, "a", [{"name": "API_URL", "value": value}] if args is None else [], args),
    ]


def plan_and_execute(docs: list[dict[str, Any]], workdir: Path) -> tuple[int, list[list[str]]]:
    """``novadiag plan --strategy rewrite --format script``, then the script with ``--execute``."""
    (workdir / "m").mkdir()
    (workdir / "m" / "all.yaml").write_text(yaml.safe_dump_all(docs))
    script = workdir / "plan.sh"
    code = main(
        ["plan", "--manifests", str(workdir / "m"), "--strategy", "rewrite", "--format", "script", "-o", str(script)]
    )
    if code != 0:
        return code, []
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    for tool in ("kubectl", "novadiag"):
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    log = workdir / "argv.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ARGV_LOG": str(log), "HOME": str(workdir)}
    done = subprocess.run(
        ["/bin/bash", str(script), "--execute"], cwd=workdir, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return 0, calls


def patched_value(calls: list[list[str]]) -> str:
    patches = [c for c in calls if c[:1] == ["patch"]]
    assert len(patches) == 1, calls
    body = json.loads(patches[0][patches[0].index("-p") + 1])
    container = body["spec"]["template"]["spec"]["containers"][0]
    return str(container["env"][0]["value"])


@settings(max_examples=60, deadline=None, database=None)
@given(SHELLY)
@example("a'b\"c`id`d|e;f&g<h>i\\j*k{l}~m!n#o$HOME")
@example("$(touch${IFS}pwned)")
@example(";<:@@")
def test_env_values_reach_kubectl_exactly(tail: str):
    value = f"http://api:80/{tail}"
    # A value the redactor masks (``;<:@@`` reads as ``user:password@``) is rewritten from the live
    # value the script reads at run time, which a recording kubectl cannot serve:
    # tests/unit/test_plan_credentials.py covers that path.
    assume(redact(value) == value)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        workdir = Path(tmp)
        code, calls = plan_and_execute(manifests(value), workdir)
        assume(code == 0 and calls)  # values the reference parser does not take are not planned at all
        assert patched_value(calls) == f"http://api.b:80/{tail}"
        assert [c[0] for c in calls] == ["patch", "rollout", "audit"]
        assert sorted(os.listdir(workdir)) == ["argv.log", "bin", "m", "plan.sh"], "the script made no other file"


@settings(max_examples=40, deadline=None, database=None)
@given(SHELLY)
@example("a'b\"c`id`d|e;f&g<h>i\\j*k{l}~m!n#o$HOME")
@example("$(touch${IFS}pwned)")
def test_argument_lists_reach_kubectl_exactly(tail: str):
    """An argument naming the host is rewritten in its item; the other items go back exactly as they were."""
    args = [f"--note={tail}", f"--api=http://api:80/{tail}", tail]
    assume(all(redact(a) == a for a in args))
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        workdir = Path(tmp)
        code, calls = plan_and_execute(manifests("", args=args), workdir)
        assume(code == 0 and calls)  # arguments the reference parser does not take are not planned at all
        patches = [c for c in calls if c[:1] == ["patch"]]
        assert len(patches) == 1, calls
        body = json.loads(patches[0][patches[0].index("-p") + 1])
        assert body["spec"]["template"]["spec"]["containers"] == [
            {"name": "main", "args": [args[0], f"--api=http://api.b:80/{tail}", tail]}
        ]
        assert [c[0] for c in calls] == ["patch", "rollout", "audit"]


@pytest.mark.parametrize("name", ["web;id", "web$(id)", "Web", "web\nx", "-web", "web.", "a" * 254])
def test_names_that_are_not_dns_1123_are_refused_before_any_script_exists(name: str, tmp_path: Path, capsys):
    code, calls = plan_and_execute(manifests("http://api:80/", caller=name), tmp_path)
    err = capsys.readouterr().err
    assert code in (1, 2) and calls == []
    assert not (tmp_path / "plan.sh").exists()
    assert "not a valid DNS-1123 name" in err
