"""Names, labels, annotations and env values are data: no output format may execute or obey them.

A manifest directory is the easiest way to hand novadiag hostile content (no
API server validates it), so these tests audit one: object names holding rich
markup, terminal escape sequences, carriage returns, bidi overrides, HTML,
Markdown table breakers and backticks; env values holding the same; and YAML
tags that would build Python objects. (The HTML report is also checked in a
real browser: ``tests/unit/test_report_html_browser.py``.)
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

import novadiag
from novadiag.boundedio import read_manifest_file
from novadiag.cli import main
from novadiag.errors import ManifestError

HOSTILE_NAME = "web[bold red]x[/] [/] \x1b]0;pwned\x07 \x1b[31m\r\u202eevil|a\nb`c <script>alert(1)</script>"
HOSTILE_CONTAINER = "c[link=https://evil.example]y[/link]"


def deployment(name: str, *, container: str = "app", env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "hostile",
            "labels": {"team": "a|b\x1b[2J"},
            "annotations": {"note": "[/]\x1b]8;;https://evil\x07link"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": container,
                            "image": "x",
                            "env": env or [{"name": "API_URL", "value": 'http://api-svc:80/a`b|c"d<i>\x1b[5m'}],
                        }
                    ]
                },
            },
        },
    }


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    directory = tmp_path / "hostile"
    directory.mkdir()
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hostile"}},
        deployment(HOSTILE_NAME, container=HOSTILE_CONTAINER),
    ]
    (directory / "hostile.yaml").write_text(yaml.safe_dump_all(docs))
    return directory


CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_the_table_prints_markup_and_escapes_as_text(hostile: Path, capsys):
    assert main(["audit", "--manifests", str(hostile)]) == 1
    out = capsys.readouterr().out
    assert "web[bold red]x[/] [/]" in out  # rich markup is shown, not obeyed (nor a crash)
    assert HOSTILE_CONTAINER in out
    assert "\\u001b]0;pwned\\u0007" in out and "\\u202e" in out
    assert CONTROL.search(out) is None, "no raw control character reaches the terminal"


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "junit", "html", "dot", "mermaid", "svg"])
def test_every_format_written_by_the_cli_is_free_of_control_characters(hostile: Path, tmp_path: Path, fmt: str):
    out = tmp_path / f"report.{fmt}"
    assert main(["audit", "--manifests", str(hostile), "--format", fmt, "-o", str(out)]) == 1
    assert CONTROL.search(out.read_text()) is None


def test_junit_written_by_the_cli_stays_parseable_xml(hostile: Path, tmp_path: Path):
    out = tmp_path / "report.xml"
    main(["audit", "--manifests", str(hostile), "--format", "junit", "-o", str(out)])
    suites = ET.parse(out).getroot()
    assert suites.get("failures") == "1"


def test_json_keeps_the_exact_value(hostile: Path, capsys):
    main(["audit", "--manifests", str(hostile), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["edges"][0]["source"]["name"] == HOSTILE_NAME


def test_markdown_tables_keep_their_columns(hostile: Path):
    text = novadiag.audit(manifests=[hostile]).render("markdown")
    for table in re.findall(r"((?:^\|.*\|$\n?)+)", text, flags=re.M):
        rows = table.strip("\n").split("\n")
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
        assert len(widths) == 1, f"a row breaks its table:\n{table}"


def test_html_escapes_names_and_values(hostile: Path):
    html = novadiag.audit(manifests=[hostile]).render("html")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "\\u003cscript\\u003e" in html


def test_yaml_tags_cannot_build_python_objects(tmp_path: Path):
    marker = tmp_path / "pwned"
    manifest = tmp_path / "evil.yaml"
    manifest.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n"
        f"data: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(ManifestError, match=r"evil.yaml:4: invalid YAML"):
        read_manifest_file(manifest)
    assert not marker.exists()


@pytest.mark.parametrize(
    "document",
    [
        "x: !!python/name:os.system ''\n",
        "x: !!python/object/new:subprocess.Popen [['true']]\n",
        "x: !Ref SomeParameter\n",
        "x: !!float not-a-number\n",
        "x: 2024-13-45\n",
        "x: " + "7" * 5000 + "\n",
    ],
)
def test_unknown_and_python_tags_are_one_line_errors(tmp_path: Path, document: str, capsys):
    (tmp_path / "m.yaml").write_text(document)
    assert main(["audit", "--manifests", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("novadiag: error: ") and "invalid YAML" in err[0]


def test_the_library_table_renderer_prints_markup_as_text(hostile: Path):
    assert "web[bold red]x[/] [/]" in novadiag.audit(manifests=[hostile]).render("table")


def test_the_library_junit_renderer_stays_parseable_xml(hostile: Path):
    ET.fromstring(novadiag.audit(manifests=[hostile]).render("junit"))
