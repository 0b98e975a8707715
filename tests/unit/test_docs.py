"""The user documentation: commands that parse, no development history, an install extra for the notebooks.

The README and ``docs/`` are read by people who copy their commands, so every
``novadiag ...`` line in a code block must be accepted by the real argument
parser. History (periods of work, issue numbers, a planning document outside
the repo) belongs in commit messages; the repository speaks of the project alone.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from novadiag.cli import build_parser

ROOT = Path(__file__).parents[2]
USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
HISTORY = re.compile(r"\bsessions? \d|\bissues? \d|\bseed[ -]plan\b|\bseed/", re.IGNORECASE)


def documented_commands() -> Iterator[tuple[str, str]]:
    """``(file, command line)`` for each ``novadiag ...`` command of a fenced block, continuations joined.

    In a ``console`` block only the lines after a ``$`` prompt are commands; the rest is output.
    """
    for path in USER_DOCS:
        for language, block in FENCE.findall(path.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                if language == "console" and not line.startswith("$ "):
                    continue
                line = line.removeprefix("$ ").split(" # ")[0].strip()
                if line.startswith("novadiag "):
                    yield path.name, line


def text_files() -> Iterator[tuple[Path, str]]:
    """The repository's prose and code, notebooks as their markdown and source."""
    patterns = ("*.md", "*.py", "*.yaml", "*.toml", "*.ipynb", "run")
    for pattern in patterns:
        for path in ROOT.rglob(pattern):
            parts = set(path.relative_to(ROOT).parts)
            if parts & {".venv", ".git"} or any(p.endswith(".egg-info") for p in parts):
                continue
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".ipynb":
                text = "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
            yield path, text


COMMANDS = sorted(set(documented_commands()))


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) >= 20
    assert {line.split()[1] for _, line in COMMANDS} >= {"audit", "plan", "policies", "check", "lab"}


@pytest.mark.parametrize(("doc", "line"), COMMANDS, ids=[f"{d}:{c}" for d, c in COMMANDS])
def test_every_documented_command_is_accepted_by_the_parser(doc: str, line: str) -> None:
    argv = shlex.split(line)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{doc}: `{line}` is refused by novadiag's parser (exit {exc.code})")


def test_no_file_tells_the_development_history() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)!r}"
        for path, text in text_files()
        for match in HISTORY.finditer(text)
    ]
    assert not found, "development history belongs in commit messages:\n" + "\n".join(found)


def test_the_notebooks_extra_installs_what_running_a_notebook_needs() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    names = {re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower() for requirement in extras["notebooks"]}
    # nbclient and nbformat run the notebooks (tests/notebooks), ipykernel is their "python3" kernel,
    # nbconvert is `jupyter nbconvert --execute` and jupyter opens them.
    assert {"nbclient", "nbformat", "ipykernel", "nbconvert", "jupyter"} <= names
    assert ".[notebooks]" in (ROOT / "README.md").read_text(encoding="utf-8")
