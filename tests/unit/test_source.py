"""novadiag.source: one tagged value says where the cluster data comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

import novadiag
from novadiag.cli import main
from novadiag.errors import ConfigError
from novadiag.kube import KubeSettings
from novadiag.source import Cluster, Lab, Manifests, SnapshotFile, is_live, open_source, source_from

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"


def test_each_option_names_its_source_and_none_means_the_current_context() -> None:
    assert source_from(manifests=[NOVA]) == Manifests((NOVA,))
    assert source_from(snapshot="snap.json") == SnapshotFile("snap.json")
    assert source_from(lab="nova", request_timeout=5.0) == Lab("nova", request_timeout=5.0)
    assert source_from(kubeconfig="kc", context="c") == Cluster(KubeSettings(kubeconfig="kc", context="c"))
    assert source_from(request_timeout=7.0).settings.request_timeout == 7.0  # type: ignore[union-attr]
    assert [is_live(s) for s in (Manifests(()), SnapshotFile("x"), Cluster(), Lab("nova"))] == [
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    "options",
    [
        {"manifests": [NOVA], "lab": "nova"},
        {"snapshot": "s.json", "lab": "nova"},
        {"manifests": [NOVA], "snapshot": "s.json"},
    ],
)
def test_two_sources_at_once_are_refused_in_one_line(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"^choose one source: manifests, a snapshot file, or a lab scenario$"):
        source_from(**options)  # type: ignore[arg-type]


def test_files_open_as_themselves() -> None:
    with open_source(Manifests((NOVA,))) as opened:
        assert opened == Manifests((NOVA,))


def test_snapshot_save_refuses_a_lab_and_manifests_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It used to start the lab and drop the manifests without a word."""
    out = tmp_path / "snap.json"
    code = main(["snapshot", "save", str(out), "--lab", "nova", "--manifests", str(NOVA)])
    assert code == 2 and not out.exists()
    assert "choose one source" in capsys.readouterr().err
