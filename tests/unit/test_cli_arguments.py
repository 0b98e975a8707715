"""Usage errors: refused by the parser before any work, in one line, exit 2."""

from __future__ import annotations

import pytest

from novadiag.cli import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["audit", "--probe-timeout", "-1"], "novadiag audit: error: argument --probe-timeout: must be more than 0"),
        (["audit", "--probe-concurrency", "0"], "novadiag audit: error: argument --probe-concurrency: must be"),
        (["audit", "--request-timeout", "soon"], "novadiag audit: error: argument --request-timeout: not a number"),
        (["plan", "--wait-timeout", "1.5"], "novadiag plan: error: argument --wait-timeout: not a whole number"),
        (["audit", "--cluster-domain", ".."], "novadiag audit: error: argument --cluster-domain: not a DNS domain"),
        (["audit", "--cluster-domain", "a b"], "novadiag audit: error: argument --cluster-domain: not a DNS domain"),
        (["audit", "--format", "xml"], "novadiag audit: error: argument --format: invalid choice: 'xml'"),
        ([], "novadiag: error: the following arguments are required: COMMAND"),
    ],
)
def test_a_bad_argument_is_one_line_naming_it(capsys, argv, expected):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected) and lines[0].endswith("--help)"), lines
