"""The multi-model table (esttab-like): its numbers are each fit's own, in every output format."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.model_table import build_model_table
from engine.model_table_output import (model_table_frame, model_table_html, model_table_latex, model_table_numbers,
                                       model_table_text, write_model_table)
from main import main

HSB = "tests/data/hsb.csv"
MODELS = ["mathach || school:",
          "mathach meanses || school:",
          "mathach meanses ses || school: ses, covariance(unstructured)"]


@pytest.fixture(scope="module")
def fits():
    frame = pd.read_csv(HSB)
    return [fit_mixed(frame, ModelSpec.parse(text), predict=False) for text in MODELS]


@pytest.fixture(scope="module")
def table(fits):
    return build_model_table(fits, ["null", "meanses", "slope"])


def stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def test_rows_are_the_union_in_reading_order(table):
    assert [row.label for row in table.rows_of("fixed")] == ["meanses", "ses", "_cons"]
    assert [(row.level, row.label) for row in table.rows_of("random")] == [
        ("school", "sd(_cons)"), ("school", "sd(ses)"), ("school", "corr(ses,_cons)"), ("Residual", "sd(Residual)")]
    statistics = [row.label for row in table.rows_of("statistic")]
    assert statistics[:6] == ["Observations", "Groups: school", "Method", "Log likelihood", "AIC", "BIC"]
    # then ICC and R² rows, when the fits carry them
    assert all(label.startswith(("ICC: ", "R² ")) for label in statistics[6:])
    # a fit without a row has no cell there
    assert table.row("meanses").cells[0] is None and table.row("ses").cells[1] is None
    assert table.row("sd(ses)", level="school").cells[:2] == [None, None]


def test_every_number_is_the_fits_own(fits, table):
    for k, fit in enumerate(fits):
        for row in fit.fixed:
            cell = table.row(row.term, "fixed").cells[k]
            assert (cell.estimate, cell.se, cell.ci, cell.p) == (row.coef, row.se, row.ci, row.p)
        for row in fit.random:
            cell = table.row(row.param, "random", level=row.level).cells[k]
            assert (cell.estimate, cell.se, cell.ci) == (row.estimate, row.se, row.ci)
        assert table.row("Observations").cells[k].estimate == fit.nobs
        assert table.row("Groups: school").cells[k].estimate == fit.groups[0].groups
        assert table.row("Log likelihood").cells[k].estimate == fit.loglik
        assert table.row("AIC").cells[k].estimate == pytest.approx(-2 * fit.loglik + 2 * fit.n_params, abs=1e-9)
        assert table.row("BIC").cells[k].estimate == pytest.approx(-2 * fit.loglik + math.log(fit.nobs) * fit.n_params,
                                                                   abs=1e-9)
        assert table.row("Method").cells[k].text == "ML"


def test_variances_use_the_variance_rows(fits):
    table = build_model_table(fits, variances=True)
    assert table.titles == ["(1)", "(2)", "(3)"]
    row = table.row("cov(ses,_cons)", level="school")
    expected = next(r for r in fits[2].random_variances if r.param == "cov(ses,_cons)")
    assert row.cells[2].estimate == expected.estimate and row.cells[2].se == expected.se


def test_csv_keeps_full_precision(fits, table, tmp_path):
    path = write_model_table(table, tmp_path / "models.csv")
    back = pd.read_csv(path)
    assert list(back["term"]) == [row.label for row in table.rows]
    for title, fit in zip(table.titles, fits):
        for row in fit.fixed:
            line = back[(back.section == "fixed") & (back.term == row.term)].iloc[0]
            assert float(line[f"{title} estimate"]) == row.coef
            assert float(line[f"{title} se"]) == row.se
            assert [float(line[f"{title} ci_low"]), float(line[f"{title} ci_high"])] == row.ci
            assert float(line[f"{title} p"]) == row.p
        for row in fit.random:
            line = back[(back.level == row.level) & (back.term == row.param)].iloc[0]
            assert float(line[f"{title} estimate"]) == row.estimate
        line = back[back.term == "Log likelihood"].iloc[0]
        assert float(line[f"{title} estimate"]) == fit.loglik
    assert pd.isna(back[back.term == "meanses"].iloc[0]["null estimate"])


class _Cells(HTMLParser):
    """Rows of an HTML table as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _expected_lines(fit, decimals=3, interval="se"):
    """label -> (top, below) as the table should print them, from the fit directly."""
    out = {}
    for row in fit.fixed:
        below = f"({row.se:.{decimals}f})" if interval == "se" else f"[{row.ci[0]:.{decimals}f}, {row.ci[1]:.{decimals}f}]"
        out[row.term] = (f"{row.coef:.{decimals}f}{stars(row.p)}", below)
    for row in fit.random:
        label = row.param if row.level == "Residual" else f"{row.level}: {row.param}"
        out[label] = (f"{row.estimate:.{decimals}f}", f"({row.se:.{decimals}f})")
    out["Log likelihood"] = (f"{fit.loglik:.{decimals}f}", "")
    out["Observations"] = (str(fit.nobs), "")
    return out


def _pairs(rows, label_index=0):
    """label -> (row, next row) for rows whose first cell is a label."""
    return {row[0]: (row, rows[i + 1] if i + 1 < len(rows) else None) for i, row in enumerate(rows) if row and row[0]}


def test_html_parses_back_to_the_fits_numbers(fits, table):
    parser = _Cells()
    parser.feed(model_table_html(table))
    assert parser.rows[0] == ["", "null", "meanses", "slope"]
    pairs = _pairs(parser.rows)
    for k, fit in enumerate(fits):
        for label, (top, below) in _expected_lines(fit).items():
            row, after = pairs[label]
            assert row[1 + k] == top, label
            if below:
                assert after[1 + k] == below, label
    assert pairs["meanses"][0][1] == ""  # the null model has no meanses


def test_latex_parses_back_to_the_fits_numbers(fits, table):
    text = model_table_latex(table)
    assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    rows = []
    for line in text.splitlines():
        if line.endswith(r"\\") and "&" in line:
            cells = [c.strip() for c in line[:-2].split("&")]
            cells = [re.sub(r"\$\^\{(\*+)\}\$", r"\1", c).replace(r"\_", "_") for c in cells]
            rows.append(cells)
    pairs = _pairs(rows)
    for k, fit in enumerate(fits):
        for label, (top, below) in _expected_lines(fit).items():
            row, after = pairs[label]
            assert row[1 + k] == top, label
            if below:
                assert after[1 + k] == below, label


def test_confidence_intervals_under_the_estimates(fits):
    table = build_model_table(fits, interval="ci")
    frame = model_table_frame(table, decimals=4)
    labels = list(frame[""])
    for k, fit in enumerate(fits):
        for row in fit.fixed:
            at = labels.index(row.term)
            assert frame.iloc[at, 1 + k] == f"{row.coef:.4f}{stars(row.p)}"
            assert frame.iloc[at + 1, 1 + k] == f"[{row.ci[0]:.4f}, {row.ci[1]:.4f}]"
    assert "95% confidence intervals in brackets." in table.notes
    assert "(1)" in model_table_text(table).splitlines()[1]


def test_bad_requests_are_refused(fits):
    with pytest.raises(UserInputError, match="one title per model"):
        build_model_table(fits, ["a"])
    with pytest.raises(UserInputError, match="'se' or 'ci'"):
        build_model_table(fits, interval="sd")
    with pytest.raises(UserInputError, match="unknown table format"):
        write_model_table(build_model_table(fits), "models.xlsx")


def test_command_line_writes_every_format(tmp_path, capsys, fits):
    outputs = {}
    for suffix in (".csv", ".tex", ".html"):
        path = tmp_path / f"models{suffix}"
        code = main(["table", HSB, "--model", MODELS[0], "--model", MODELS[1], "--ci", "--out", str(path),
                     "--title", "null", "--title", "meanses"])
        assert code == 0
        outputs[suffix] = path.read_text()
    printed = capsys.readouterr().out
    assert "null" in printed and "meanses" in printed and "[" in printed
    back = pd.read_csv(tmp_path / "models.csv")
    line = back[back.term == "meanses"].iloc[0]
    assert float(line["meanses estimate"]) == pytest.approx(fits[1].coef("meanses").coef, rel=1e-12)
    assert f"[{fits[1].coef('meanses').ci[0]:.3f}" in outputs[".html"]
    assert main(["table", HSB, "--model", MODELS[0], "--title", "a", "--title", "b"]) == 2
    assert main(["table", HSB, "--model", MODELS[0], "--out", str(tmp_path / "x.docx")]) == 2
    assert "one title per model" in capsys.readouterr().err


def test_icc_and_r2_rows_when_the_fits_carry_them(fits):
    """The hook for ICC and R² (results of `estat icc` and r2_nakagawa, added to FitResult elsewhere)."""
    import copy

    first, second = copy.copy(fits[0]), copy.copy(fits[1])
    from types import SimpleNamespace

    first.icc = [SimpleNamespace(level="school", label="school", icc=0.1803, se=0.0187, ci=[0.146, 0.220])]
    first.r2 = {"marginal": 0.0, "conditional": 0.1803}
    second.icc = []
    second.r2 = {"marginal": 0.121, "conditional": 0.164}
    table = build_model_table([first, second])
    icc = table.row("ICC: school")
    assert icc.cells[0].estimate == 0.1803 and icc.cells[0].se == 0.0187 and icc.cells[1] is None
    assert [c.estimate for c in table.row("R² marginal").cells] == [0.0, 0.121]
    assert [c.estimate for c in table.row("R² conditional").cells] == [0.1803, 0.164]
