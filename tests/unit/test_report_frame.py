"""The pandas views: ``Report.to_frame()`` and ``Report.namespace_matrix()`` on the Nova scenario."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import novadiag
from novadiag.model import STATUSES, SourceInfo
from novadiag.report import Report

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"


@pytest.fixture(scope="module")
def nova() -> Report:
    return novadiag.audit(manifests=[NOVA])


@pytest.fixture(scope="module")
def frame(nova: Report) -> pd.DataFrame:
    return nova.to_frame()


def test_one_row_per_edge_in_report_order(nova: Report, frame: pd.DataFrame) -> None:
    assert list(frame["id"]) == [e.id for e in nova.edges]


def test_columns_are_typed_for_filtering(frame: pd.DataFrame) -> None:
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    assert set(frame["status"].cat.categories) == set(STATUSES)
    assert str(frame["port"].dtype) == "Int64"
    assert frame["cross_namespace"].dtype == bool and frame["broken"].dtype == bool
    assert str(frame["source_namespace"].dtype) == "string"
    assert str(frame["probe_agrees"].dtype) == "boolean"


def test_broken_rows_are_the_four_user_service_edges_and_the_route_with_their_fix(frame: pd.DataFrame) -> None:
    broken = frame[frame["broken"]]
    assert set(broken["source_name"]) == {"user-service", "content-api"}
    namespaces = ["nova-auth", "nova-content", "nova-content", "nova-feed", "nova-media"]
    assert sorted(broken["target_namespace"]) == namespaces
    assert broken["fix"].notna().all()


def test_sorting_by_status_puts_what_to_fix_on_top(frame: pd.DataFrame) -> None:
    top = frame.sort_values("status", kind="stable").head(4)
    assert top["broken"].all()


def test_value_counts_show_every_status_even_absent_ones(frame: pd.DataFrame) -> None:
    counts = frame["status"].value_counts()
    assert counts["dns-unresolvable"] == 4 and counts["blocked"] == 1 and counts["no-endpoints"] == 0


def test_external_edge_has_no_target_and_no_probe(frame: pd.DataFrame) -> None:
    external = frame[frame["status"] == "external"].iloc[0]
    assert external["target_namespace"] is pd.NA and external["probe_dns"] is not None
    assert pd.isna(external["probe_dns"]) and pd.isna(external["probe_agrees"])


def test_empty_report_gives_the_same_columns_and_no_rows(frame: pd.DataFrame) -> None:
    empty = Report(source=SourceInfo(kind="manifests"), edges=()).to_frame()
    assert list(empty.columns) == list(frame.columns) and len(empty) == 0
    assert (empty.dtypes == frame.dtypes).all()


def test_namespace_matrix_counts_each_pair_by_status(nova: Report) -> None:
    matrix = nova.namespace_matrix()
    row = matrix.loc[("nova-backend", "nova-content")]
    assert (row["dns-unresolvable"], row["broken"], row["total"]) == (1, 1, 1)
    assert matrix["total"].sum() == len(nova.edges)
    assert matrix.loc[("nova-staging", "(external)"), "external"] == 1


def test_square_matrix_of_broken_edges(nova: Report) -> None:
    square = nova.namespace_matrix(status="broken")
    assert square.loc["nova-backend"].sum() == 4
    assert square.loc["nova-backend", "nova-media"] == 1
    assert square.loc["nova-gateway", "nova-content"] == 1  # the HTTPRoute without its ReferenceGrant
    assert square.drop(index=["nova-backend", "nova-gateway"]).to_numpy().sum() == 0
    assert list(square.columns[-1:]) == ["(external)"]


def test_square_matrix_rejects_an_unknown_status(nova: Report) -> None:
    with pytest.raises(ValueError, match="unknown status 'borken'"):
        nova.namespace_matrix(status="borken")


def test_importing_novadiag_and_auditing_does_not_import_pandas() -> None:
    code = (
        "import sys, novadiag; r = novadiag.audit(manifests=[sys.argv[1]]); r.render('html'); r._repr_html_(); "
        "print('pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(NOVA)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
