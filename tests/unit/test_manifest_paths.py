"""``--manifests PATH``: a path that yields nothing to audit is an error, never an OK over zero edges."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from novadiag.errors import ManifestError
from novadiag.manifests import load_manifests


def test_an_empty_directory(tmp_path: Path):
    with pytest.raises(ManifestError, match="holds no .yaml, .yml or .json file"):
        load_manifests([tmp_path])


def test_a_directory_of_other_files(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("kind: Deployment\n")
    with pytest.raises(ManifestError, match="holds no .yaml, .yml or .json file"):
        load_manifests([tmp_path])


def test_yaml_that_holds_no_kubernetes_object(tmp_path: Path):
    (tmp_path / "values.yaml").write_text("replicas: 3\nimage: api:1.2\n")
    with pytest.raises(ManifestError, match=r"no Kubernetes object novadiag reads in 1 file\(s\)"):
        load_manifests([tmp_path])


def test_a_fifo_is_refused_instead_of_read_forever(tmp_path: Path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ManifestError, match="not a regular file"):
        load_manifests([fifo])


def test_a_symlink_to_itself_is_named_as_such(tmp_path: Path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    with pytest.raises(ManifestError, match=r"a symbolic link to nothing \(or to itself\)"):
        load_manifests([loop])
