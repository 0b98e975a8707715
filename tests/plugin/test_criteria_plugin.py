"""The pytest plugin, driven with pytester: collection, pass/fail, messages, bad files, options."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import novadiag
from novadiag.boundedio import MAX_INPUT_BYTES
from novadiag.pipeline import audit

NOVA = str(Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests")


def run(pytester: pytest.Pytester, files: dict[str, str], *args: str) -> pytest.RunResult:
    for name, text in files.items():
        pytester.path.joinpath(name).write_text(text)
    return pytester.runpytest("-p", "no:cacheprovider", "--novadiag-manifests", NOVA, *args)


def test_each_criterion_is_one_item_named_after_it(pytester):
    result = run(
        pytester,
        {
            "nova.novadiag.yaml": """
criteria:
  - name: nothing broken in the gateway
    check: no-broken-edges
    namespaces: [nova-gateway]
  - check: separation
    between: [[nova-gateway], [nova-staging]]
"""
        },
        "--collect-only",
        "-q",
    )
    result.stdout.fnmatch_lines(["*nova.novadiag.yaml::nothing broken in the gateway", "*::separation"])


def test_passing_and_failing_criteria(pytester):
    result = run(
        pytester,
        {
            "nova.novadiag.yaml": """
- check: no-broken-edges
  namespaces: [nova-media, nova-feed]
- check: no-broken-edges
  namespaces: [nova-backend]
"""
        },
    )
    result.assert_outcomes(passed=1, failed=1)


def test_failure_lists_offending_edges_with_fixes_not_a_traceback(pytester):
    result = run(
        pytester,
        {
            "nova.novadiag.yaml": """
- name: backend edges
  check: no-broken-edges
  namespaces: [nova-backend]
"""
        },
    )
    result.stdout.fnmatch_lines(
        [
            "*nova.novadiag.yaml:2: no-broken-edges failed: 4 broken edge(s)",
            "*user-service*CONTENT_SERVICE_URL*dns-unresolvable*fix: content-service.nova-content:9081",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_unknown_check_fails_collection_naming_file_and_line(pytester):
    result = run(
        pytester,
        {
            "bad.novadiag.yaml": """
- check: no-broken-edges
- check: no-such-thing
"""
        },
    )
    result.stdout.fnmatch_lines(["*bad.novadiag.yaml:3: unknown criterion 'no-such-thing'*"])
    assert result.ret != 0


def test_bad_parameter_type_fails_collection(pytester):
    result = run(pytester, {"bad.novadiag.yaml": "- check: max-restarts\n  max: lots\n"})
    result.stdout.fnmatch_lines(["*bad.novadiag.yaml:1: max-restarts: parameter 'max' must be int, got str*"])


def test_missing_required_parameter_fails_collection(pytester):
    result = run(pytester, {"bad.novadiag.yaml": "- check: separation\n"})
    result.stdout.fnmatch_lines(["*missing required parameter 'between'*"])


def test_invalid_yaml_names_the_line(pytester):
    result = run(pytester, {"bad.novadiag.yaml": "- check: no-crashloop\n  namespaces: [a\n"})
    result.stdout.fnmatch_lines(["*bad.novadiag.yaml:*invalid YAML*"])


def test_python_tests_can_use_the_report_fixture(pytester):
    result = run(
        pytester,
        {
            "test_x.py": """
def test_broken(novadiag_report):
    assert len(novadiag_report.broken) == 5

def test_same_report_shared(novadiag_report, novadiag_cluster):
    assert novadiag_cluster.report() is novadiag_report
"""
        },
    )
    result.assert_outcomes(passed=2)


def test_cross_namespace_reduction_needs_a_baseline(pytester):
    result = run(pytester, {"r.novadiag.yaml": "- check: cross-namespace-reduction\n  at_least_percent: 95\n"})
    result.stdout.fnmatch_lines(["*could not be checked: needs a baseline*"])


def test_cross_namespace_reduction_against_a_baseline(pytester, tmp_path):
    baseline = tmp_path / "before.json"
    baseline.write_text(audit(manifests=[NOVA]).to_json())
    result = run(
        pytester,
        {"r.novadiag.yaml": "- check: cross-namespace-reduction\n  at_least_percent: 95\n"},
        "--novadiag-baseline",
        str(baseline),
    )
    result.stdout.fnmatch_lines(["*cross-namespace edges 18 → 18: 0.0% fewer (need ≥ 95%)*"])
    result.assert_outcomes(failed=1)


def test_namespace_count_by_environment_label(pytester):
    result = run(
        pytester,
        {
            "n.novadiag.yaml": """
- check: namespace-count
  environment: prod
  namespaces: [nova-prod]
"""
        },
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*namespace nova-backend has workloads but is not listed*",
            "*namespace nova-prod is listed but has no workloads*",
        ]
    )


def test_no_crashloop_passes_on_manifests_without_pod_status(pytester):
    result = run(pytester, {"c.novadiag.yaml": "- check: no-crashloop\n"})
    result.assert_outcomes(passed=1)


def test_novadiag_check_ignores_the_pytest_config_of_the_repo_it_runs_in(tmp_path, monkeypatch):
    """A repo's own pytest.ini (addopts for its tests, plugins CI may lack) must not break ``novadiag check``."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --option-only-the-repo-knows\ntimeout = 5\n")
    criteria = tmp_path / "ci" / "gate.novadiag.yaml"
    criteria.parent.mkdir()
    criteria.write_text("- check: no-broken-edges\n  namespaces: [nova-feed]\n")
    command = [sys.executable, "-m", "novadiag", "check", str(criteria), "--manifests", NOVA, "--no-probe"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_novadiag_check_of_a_missing_file_is_one_line(tmp_path):
    command = [sys.executable, "-m", "novadiag", "check", str(tmp_path / "nope.novadiag.yaml")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"novadiag: error: {tmp_path}/nope.novadiag.yaml: no such criteria file\n"


def test_a_criterion_about_a_namespace_that_does_not_exist_fails_instead_of_checking_nothing(pytester):
    result = run(
        pytester,
        {
            "gate.novadiag.yaml": """
- name: typo
  check: no-broken-edges
  namespaces: [nova-gatway]
- name: an existing namespace
  check: no-broken-edges
  namespaces: [nova-feed]
"""
        },
        "-q",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*namespace nova-gatway does not exist*"])


@pytest.mark.parametrize(
    ("criterion", "problem"),
    [
        ("- check: cross-namespace-reduction\n  at_least_percent: .nan\n", "must be a percentage from 0 to 100"),
        ("- check: cross-namespace-reduction\n  at_least_percent: 500\n", "must be a percentage from 0 to 100"),
        ("- check: no-broken-edges\n  namespaces: [a, 1]\n", "parameter 'namespaces' must list names, not 1"),
        ("- check: separation\n  between: [[a], b]\n", "must be two non-empty lists of namespace names"),
        ("- check: max-restarts\n  max: true\n", "parameter 'max' must be int, got bool"),
        ("- check: no-crashloop\n  since: 2024-13-45\n", "invalid YAML"),
        ("- check: no-crashloop\n  name: !foo x\n", "invalid YAML"),
    ],
)
def test_a_bad_value_fails_collection_naming_file_and_line(pytester, criterion, problem):
    result = run(pytester, {"bad.novadiag.yaml": criterion})
    result.stdout.fnmatch_lines([f"*bad.novadiag.yaml:1: *{problem}*"])
    assert "Traceback" not in result.stdout.str()


def test_novadiag_check_of_a_broken_criteria_file_exits_2(tmp_path):
    criteria = tmp_path / "gate.novadiag.yaml"
    criteria.write_text("- check: no-crashloop\n  name: [x\n")
    command = [sys.executable, "-m", "novadiag", "check", str(criteria), "--manifests", NOVA, "--no-probe"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(r"gate.novadiag.yaml:\d+: invalid YAML", done.stdout)


def test_separation_from_a_namespace_that_does_not_exist_fails(pytester):
    result = run(pytester, {"s.novadiag.yaml": "- check: separation\n  between: [[nova-prod], [nova-staging]]\n"})
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*s.novadiag.yaml:1: separation failed: namespace nova-prod does not exist"])


@pytest.mark.parametrize("namespaces", ["", "  namespaces: [nova-gateway]\n"])
def test_short_names_resolve_on_manifests_cannot_be_checked_and_does_not_pass(pytester, namespaces):
    result = run(pytester, {"n.novadiag.yaml": f"- check: short-names-resolve\n{namespaces}"})
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*n.novadiag.yaml:1: short-names-resolve could not be checked: cannot be checked without probes*"]
    )
    assert "not probed" not in result.stdout.str()


def test_endpoint_responds_on_manifests_cannot_be_checked(pytester):
    criterion = "- check: endpoint-responds\n  namespace: nova-gateway\n  url: http://graphql-gateway:4000/\n"
    result = run(pytester, {"e.novadiag.yaml": criterion})
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*endpoint-responds could not be checked: cannot be checked without probes (this run audits manifests)"]
    )


def test_novadiag_check_names_its_own_baseline_flag(tmp_path):
    criteria = tmp_path / "r.novadiag.yaml"
    criteria.write_text("- check: cross-namespace-reduction\n  at_least_percent: 95\n")
    command = [sys.executable, "-m", "novadiag", "check", str(criteria), "--manifests", NOVA, "--no-probe"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "needs a baseline, an earlier audit JSON or snapshot: novadiag check --baseline FILE" in done.stdout


CREDENTIALS = ("s3cret", "t0ken", "acc3ss", "k3y", "p4ss")
CREDENTIAL_URL = "https://user:s3cret@gw.example/?token=t0ken&access_token=acc3ss&key=k3y&password=p4ss"


def test_url_credentials_in_criteria_files_are_masked_in_output_and_junit(pytester):
    criteria = f"""
- name: "GET {CREDENTIAL_URL}"
  check: no-broken-edges
  namespaces: [nova-backend]
"""
    result = run(pytester, {"c.novadiag.yaml": criteria}, "--junitxml", "junit.xml", "-rA")
    result.assert_outcomes(failed=1)
    junit = (pytester.path / "junit.xml").read_text()
    for text in (result.stdout.str(), junit):
        assert "GET https://user:***@gw.example/?token=***&" in text.replace("&amp;", "&")
        assert not [secret for secret in CREDENTIALS if secret in text]


def test_url_credentials_in_a_bad_criteria_file_are_masked(pytester):
    result = run(pytester, {"c.novadiag.yaml": f'- check: no-crashloop\n  "{CREDENTIAL_URL}": 1\n'})
    result.stdout.fnmatch_lines(["*c.novadiag.yaml:1: no-crashloop: unknown parameter*user:***@gw.example*"])
    assert not [secret for secret in CREDENTIALS if secret in result.stdout.str()]


def unreadable_baselines(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Baselines that would hang or fill memory if read naively: path and the expected problem."""
    fifo = tmp_path / "before.fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as sparse:
        sparse.truncate(MAX_INPUT_BYTES + 1)
    return {
        "device": ("/dev/zero", "not a regular file"),
        "fifo": (str(fifo), "not a regular file"),
        "huge": (str(huge), "baseline is 256 MiB, over the 256 MiB limit"),
    }


@pytest.mark.parametrize("kind", ["device", "fifo", "huge"])
def test_novadiag_check_refuses_a_baseline_it_cannot_read_at_a_bounded_cost(tmp_path, kind):
    path, problem = unreadable_baselines(tmp_path)[kind]
    criteria = tmp_path / "r.novadiag.yaml"
    criteria.write_text("- check: cross-namespace-reduction\n  at_least_percent: 95\n")
    command = [sys.executable, "-m", "novadiag", "check", str(criteria), "--manifests", NOVA, "--baseline", path]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"novadiag: error: baseline {path}: {problem}")
    assert done.stderr.count("\n") == 1


def test_the_plugin_refuses_a_fifo_baseline_without_waiting_for_a_writer(pytester, tmp_path):
    path, _ = unreadable_baselines(tmp_path)["fifo"]
    criterion = "- check: cross-namespace-reduction\n  at_least_percent: 95\n"
    result = run(pytester, {"r.novadiag.yaml": criterion}, "--novadiag-baseline", path, "--timeout", "30")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*could not be checked: baseline {path}: not a regular file*"])
