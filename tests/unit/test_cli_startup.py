"""Start-up: a command imports what it needs, and nothing that only other commands need.

Each command runs in a fresh interpreter with ``-X importtime``, which names on
standard error every module the run imported; the heavy dependencies must not
be among them unless the command uses them (docs/performance.md, start-up).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import novadiag
from novadiag import shapes
from novadiag.cli import main

NOVA = str(Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests")

ONLY_FOR_OTHER_COMMANDS = ("kubernetes", "urllib3", "networkx", "rich", "pandas", "novadiag.planning", "novadiag.lab")
"""Loaded by a live audit (kubernetes), a drawing (networkx), a terminal (rich), a notebook, ``plan``, ``lab``."""


def imported_by(*argv: str) -> set[str]:
    """Every module ``novadiag ARGV`` imports, its output piped (not a terminal)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "novadiag", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("import time:")]
    assert lines, "no -X importtime lines: the check would pass on anything"
    return {line.rpartition("|")[2].strip() for line in lines}


def heavy(modules: set[str], names: tuple[str, ...] = ONLY_FOR_OTHER_COMMANDS) -> list[str]:
    return sorted(m for m in modules if m in names or m.split(".")[0] in names or m.startswith(names))


@pytest.mark.parametrize(
    "argv", [["--version"], ["--help"], ["audit", "--help"]], ids=["version", "help", "audit-help"]
)
def test_version_and_help_import_none_of_the_heavy_dependencies(argv: list[str]) -> None:
    modules = imported_by(*argv)
    assert "novadiag.console" in modules
    assert heavy(modules, (*ONLY_FOR_OTHER_COMMANDS, "novadiag.pipeline", "novadiag.report.core", "orjson")) == []


@pytest.mark.parametrize(
    "output",
    [["--format", "json", "-o", "/dev/null"], [], ["-o", "/dev/null", "--format", "table"]],
    ids=["json", "table-to-a-pipe", "table-to-a-file"],
)
def test_an_audit_of_manifests_imports_neither_the_kubernetes_client_nor_the_planner(output: list[str]) -> None:
    modules = imported_by("audit", "--manifests", NOVA, *output)
    assert "novadiag.pipeline" in modules  # the audit did run
    assert heavy(modules) == []


ONLY_FOR_SOME_INPUTS = ("novadiag.routing", "tomllib", "logging")
"""Loaded for routing objects (Ingress, Gateway API, Istio), a TOML file, a command that may load the client."""

PLAIN_MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16, ports: [{containerPort: 5432}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: shop/api:1
          env: [{name: DATABASE_URL, value: "postgres://db.shop:5432/shop"}]
"""


@pytest.mark.parametrize("output", [["--format", "json", "-o", "/dev/null"], []], ids=["json", "table-to-a-pipe"])
def test_an_audit_of_plain_manifests_loads_no_routing_judges_toml_parser_or_logging(
    tmp_path: Path, output: list[str]
) -> None:
    """Manifests without routing objects or TOML files: the judges and parsers for them stay unloaded."""
    (tmp_path / "shop.yaml").write_text(PLAIN_MANIFESTS, encoding="utf-8")
    modules = imported_by("audit", "--manifests", str(tmp_path), *output)
    assert {"novadiag.pipeline", "novadiag.verdicts"} <= modules  # the audit did run and judge its edge
    assert heavy(modules, ONLY_FOR_SOME_INPUTS) == []


def test_routing_objects_load_the_routing_judges() -> None:
    """The Nova scenario holds an Ingress, a Gateway and an HTTPRoute: their judges load, and nothing else extra."""
    modules = imported_by("audit", "--manifests", NOVA, "--format", "json", "-o", "/dev/null")
    assert heavy(modules, ONLY_FOR_SOME_INPUTS) == ["novadiag.routing", "novadiag.routing.backends",
                                                    "novadiag.routing.gateway", "novadiag.routing.ingress",
                                                    "novadiag.routing.istio"]  # fmt: skip


def test_a_command_that_may_load_the_kubernetes_client_names_its_log_lines() -> None:
    """The root handler that says "kubernetes client" is still installed where the client can load."""
    script = (
        "import logging, sys\n"
        "from novadiag.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(code, [h.formatter._fmt for h in logging.getLogger().handlers if h.formatter])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "audit", "--kubeconfig", "/nonexistent/kubeconfig"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.stdout == "2 ['novadiag: warning: kubernetes client: %(message)s']\n", run.stderr[-2000:]


def test_a_few_objects_of_a_kind_are_walked_without_writing_its_lean_pass() -> None:
    """Writing a kind's pass costs more than walking a handful of objects; it is written once a kind is common."""
    kind = "StartupCheckKind"  # a kind no other test reads: its count starts at zero
    good = {"metadata": {"name": "a", "labels": {"app": "a"}}}
    bad = {"metadata": {"name": "a", "labels": "app=a"}}
    for _ in range(shapes.WALKED_BEFORE_WRITING - 1):
        assert shapes.shape_problem(kind, good) is None
    assert shapes.shape_problem(kind, bad) == "metadata.labels is a string, not a mapping"
    assert kind not in shapes._LEAN
    assert shapes.shape_problem(kind, good) is None
    assert shapes.shape_problem(kind, bad) == "metadata.labels is a string, not a mapping"
    assert kind in shapes._LEAN


PATTERNS_COMPILED_AT_IMPORT = """
import re, sys
compiled = []
compile = re.compile
def recording(pattern, flags=0):
    compiled.append((sys._getframe(1).f_globals.get("__name__"), str(pattern)))
    return compile(pattern, flags)
re.compile = recording
import novadiag.redaction
from novadiag.redaction import redact
def rare():  # by pattern text, whichever module compiles it (lazy ones compile in novadiag.lazypattern)
    return [text for _, text in compiled if "bearer" in text or "tcp6" in text or "upstream" in text]
print(sorted({module for module, _ in compiled if module.startswith("novadiag.")}))
print(rare())
print(redact("Authorization: Bearer abc.def"), redact("app:pw@tcp(db:3306)/x"))
print(len(rare()))
"""


def test_patterns_for_config_files_and_rare_credential_forms_compile_on_first_use() -> None:
    """Importing redaction (every audit does) compiles no config-file pattern, nor a rare credential form's."""
    run = subprocess.run(
        [sys.executable, "-c", PATTERNS_COMPILED_AT_IMPORT], capture_output=True, text=True, timeout=60, check=False
    )
    modules, rare, masked, rare_after_use = run.stdout.splitlines()
    assert "novadiag.redaction" in modules  # the recording saw the module's own patterns
    assert "novadiag.configformats" not in modules
    assert rare == "[]"
    assert masked == "Authorization: Bearer *** app:***@tcp(db:3306)/x"
    assert rare_after_use == "2"  # the recording sees the lazy patterns too, once they are asked for


def test_the_probe_options_are_still_checked_for_an_audit_of_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    """Probe settings are built only for live clusters; a malformed one is refused all the same."""
    assert main(["audit", "--manifests", NOVA, "--toleration", "no-effect"]) == 2
    assert capsys.readouterr().err.strip() == ("novadiag: error: --toleration 'no-effect': expected KEY[=VALUE]:EFFECT")


def test_the_early_version_answer_is_the_parsers_own(capsys: pytest.CaptureFixture[str]) -> None:
    """``novadiag --version`` is answered before the CLI loads; it must say what the parser's --version says."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    parsers = capsys.readouterr().out
    early = subprocess.run(
        [sys.executable, "-m", "novadiag", "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert early.stdout == parsers == f"novadiag {novadiag.__version__}\n"


INTERRUPTED_WHILE_LOADING = """
import atexit, os, signal, sys

class InterruptWhenLoading:
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1]:
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        return None

sys.meta_path.insert(0, InterruptWhenLoading())
atexit.register(lambda: print("unwound"))
from novadiag.cli import main
sys.exit(main(["audit", "--manifests", sys.argv[3]]))
"""


@pytest.mark.parametrize(
    ("module", "signal_name"),
    [("novadiag.cli.audit", "SIGINT"), ("novadiag.cli.audit", "SIGTERM"), ("orjson", "SIGINT")],
)
def test_an_interrupt_while_a_command_loads_ends_at_once(module: str, signal_name: str) -> None:
    """Ctrl-C while the chosen command's modules load: one line, exit 130, and no unwinding through the import.

    Nothing is owned yet, and a KeyboardInterrupt raised inside an extension
    module's initialisation can crash the interpreter (orjson's did, with SIGSEGV).
    """
    run = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_WHILE_LOADING, module, signal_name, NOVA],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (run.returncode, run.stderr, run.stdout) == (130, "novadiag: interrupted\n", "")
