"""Write the sample reports of the bundled Nova scenario, one file per output format.

    python -m novadiag.samples reports/

The committed ``reports/`` directory shows every format on the scenario from
Nova (docs/lab.md), so a reader can see what novadiag produces without running it,
and a reviewer sees a renderer change as a diff of those files. The outputs
are deterministic (no timestamps, no absolute paths, stable ordering), and
``tests/unit/test_report_samples.py`` regenerates them and fails when the
committed files are stale.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from novadiag.pipeline import audit
from novadiag.report.core import Report

SCENARIO_MANIFESTS = Path(__file__).resolve().parent / "lab" / "scenarios" / "nova" / "manifests"
REFRESH = "python -m novadiag.samples reports/"

SAMPLES: dict[str, str] = {
    "txt": "table",
    "json": "json",
    "jsonl": "jsonl",
    "csv": "csv",
    "sarif": "sarif",
    "github": "github",
    "md": "markdown",
    "html": "html",
    "xml": "junit",
    "dot": "dot",
    "mmd": "mermaid",
    "svg": "svg",
}
"""File extension → format of each sample, written as ``nova.<extension>``."""


def nova_report() -> Report:
    """The static audit of the Nova scenario's manifests, named ``manifests/...`` as a repository would name them.

    Edges carry the manifest path as given (``source.file``); auditing from the
    scenario's directory keeps the samples free of this checkout's absolute path.
    """
    with contextlib.chdir(SCENARIO_MANIFESTS.parent):
        return audit(manifests=[SCENARIO_MANIFESTS.name])


def render_samples(report: Report) -> dict[str, str]:
    """File name → content of every sample."""
    return {f"nova.{ext}": report.render(fmt) for ext, fmt in SAMPLES.items()}


def write_samples(directory: Path, *, report: Report | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_samples(report or nova_report()).items():
        path = directory / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m novadiag.samples", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where to write nova.* (the repository keeps them in reports/)")
    args = parser.parse_args(argv)
    for path in write_samples(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
