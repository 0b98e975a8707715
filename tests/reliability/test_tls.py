"""TLS: certificates are verified unless the kubeconfig itself says otherwise, and then a warning says so.

Run as child processes, as a user runs novadiag, so the environment variables
that loosen verification in other tools are really set and the one-warning
promise is checked on a fresh process's stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_support import REPO, admin_token, cli_env, kubeconfig_with

pytestmark = pytest.mark.lab

LOOSENING_ENV = {"PYTHONHTTPSVERIFY": "0", "CURL_CA_BUNDLE": "", "REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": ""}


def novadiag(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "novadiag", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**cli_env(), **(env or {})},
        cwd=REPO,
        check=False,
    )


def test_an_unknown_certificate_is_refused_at_once_whatever_the_environment_says(lab, tmp_path: Path):
    kubeconfig = kubeconfig_with(lab, tmp_path, name="no-ca.kubeconfig", **{"certificate-authority-data": None})
    started = time.monotonic()
    done = novadiag("audit", "--kubeconfig", kubeconfig, "--no-probe", env=LOOSENING_ENV)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("novadiag: error: TLS with the API server at https://127.")
    assert "CERTIFICATE_VERIFY_FAILED" in lines[0]
    assert time.monotonic() - started < 10, "a bad certificate is not retried"


def test_insecure_skip_tls_verify_from_the_kubeconfig_is_honoured_with_one_warning(lab, tmp_path: Path):
    kubeconfig = kubeconfig_with(
        lab,
        tmp_path,
        name="insecure.kubeconfig",
        **{"certificate-authority-data": None, "insecure-skip-tls-verify": True},
    )
    done = novadiag("audit", "--kubeconfig", kubeconfig, "--no-probe", "--format", "json")
    assert done.returncode == 1  # the audit ran: Nova has broken edges
    assert json.loads(done.stdout)["schema"] == "novadiag.audit/v1"
    warnings = done.stderr.splitlines()
    assert warnings == [
        f"novadiag: warning: TLS certificate verification is off for {lab.api_url} "
        "(insecure-skip-tls-verify in the kubeconfig): anyone on the path can read the token"
    ]
    assert admin_token(lab) not in done.stderr + done.stdout


def test_no_command_line_option_turns_verification_off():
    done = novadiag("audit", "--help")
    assert "insecure" not in done.stdout.lower() and "verify" not in done.stdout.lower()
