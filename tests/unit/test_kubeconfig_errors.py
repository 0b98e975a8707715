"""A kubeconfig the client cannot use is one line naming the file actually read and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from novadiag.errors import ConfigError
from novadiag.kube import KubeClient, KubeSettings

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: u
  user: {token: not-a-real-token}
contexts:
- {name: staging, context: {cluster: c, user: u}}
- {name: dev, context: {cluster: c, user: u}}
current-context: dev
"""


def _refused(settings: KubeSettings) -> str:
    with pytest.raises(ConfigError) as caught:
        KubeClient(settings)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_unknown_context_lists_the_contexts_there_are(tmp_path: Path):
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    message = _refused(KubeSettings(kubeconfig=str(path), context="prod"))
    assert message == f"kubeconfig {path}: no context prod, named by --context (contexts: dev, staging)"


def test_the_file_from_the_environment_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    missing = tmp_path / "nowhere" / "config"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    message = _refused(KubeSettings())
    assert message == f"kubeconfig {missing}: not found (pass --kubeconfig, set KUBECONFIG, or try --lab nova)"


def test_a_file_that_is_not_a_mapping_says_so(tmp_path: Path):
    path = tmp_path / "config"
    path.write_text("just a string\n")
    message = _refused(KubeSettings(kubeconfig=str(path)))
    assert message == f"kubeconfig {path}: not a kubeconfig (expected a mapping with clusters and contexts)"


def test_a_stale_current_context_is_named_and_the_token_is_not(tmp_path: Path):
    path = tmp_path / "config"
    path.write_text(KUBECONFIG.replace("current-context: dev", "current-context: gone"))
    message = _refused(KubeSettings(kubeconfig=str(path)))
    assert message == f"kubeconfig {path}: no context gone, named by current-context (contexts: dev, staging)"
    assert "not-a-real-token" not in message


def test_an_empty_file_is_not_called_missing(tmp_path: Path):
    path = tmp_path / "config"
    path.write_text("")
    message = _refused(KubeSettings(kubeconfig=str(path)))
    assert message.startswith(f"kubeconfig {path}: ") and "empty" in message and "not found" not in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not: [valid\n", ":2: invalid YAML"),
        (KUBECONFIG.replace("user: {token: not-a-real-token}", 'user: "tok"'), ": malformed (a cluster, user or"),
        (KUBECONFIG.replace("{name: dev, context: {cluster: c, user: u}}", '{name: dev, context: "c"}'), ": malformed"),
        (KUBECONFIG.replace('{server: "https://127.0.0.1:9"}', "{server: 5}"), ": malformed (a cluster, user or"),
        (KUBECONFIG.replace('{server: "https://127.0.0.1:9"}', "{}"), ": the cluster of context dev has no server"),
    ],
    ids=["yaml", "user-is-a-string", "context-is-a-string", "server-is-a-number", "no-server"],
)
def test_a_malformed_kubeconfig_is_one_line_without_a_traceback(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "config"
    path.write_text(text)
    message = _refused(KubeSettings(kubeconfig=str(path)))
    assert message.startswith(f"kubeconfig {path}") and problem in message
