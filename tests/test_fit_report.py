"""The report to hand on: one HTML page that parses and holds every table with the fit's numbers,
and the same as a Word document that python-docx reads back; `fit --report` writes both."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.fit_report import CLI_PLOTS_NOTE, ReportFigure, build_fit_report, format_cell
from engine.fit_report_output import report_html, write_report
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from main import main

HSB = "tests/data/hsb.csv"
MODEL = "mathach meanses ses || school: ses, covariance(unstructured) reml"


class Page(HTMLParser):
    """Tables (by id: rows of cell texts), headings, images and the whole text of a page."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headings: list[str] = []
        self.images: list[str] = []
        self.text = ""
        self._table = None
        self._cell = None
        self._heading = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = ""
        elif tag == "h2":
            self._heading = ""
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(self._cell)
            self._cell = None
        elif tag == "h2":
            self.headings.append(self._heading)
            self._heading = None

    def handle_data(self, data):
        self.text += data
        if self._cell is not None:
            self._cell += data
        if self._heading is not None:
            self._heading += data


@pytest.fixture(scope="module")
def fit():
    spec = ModelSpec.parse(MODEL)
    return fit_mixed(pd.read_csv(HSB), spec.replace(dfmethod="satterthwaite"))


def expected_tables(fit):
    """Every table's body as it should print, computed from the fit here."""
    fixed = [[r.term, format_cell(r.coef), format_cell(r.se), f"{r.z:.2f}", f"{r.df:.2f}", f"{r.p:.4f}",
              format_cell(r.ci[0]), format_cell(r.ci[1])] for r in fit.fixed]
    random = [[r.level, r.param, format_cell(r.estimate), format_cell(r.se), format_cell(r.ci[0]), format_cell(r.ci[1])]
              for r in fit.random]
    groups = [[g.level, f"{g.groups:,}", f"{g.min:,}", f"{g.mean:.1f}", f"{g.max:,}"] for g in fit.groups]
    tests = [["F test: every coefficient except _cons is 0", f"F({int(fit.wald.df)}, {fit.wald.df2:.2f})",
              format_cell(fit.wald.stat), f"{fit.wald.p:.4f}"],
             ["LR test vs. linear model", f"chi2({int(fit.lr_test.df)})", format_cell(fit.lr_test.stat),
              f"{fit.lr_test.p:.4f}"]]
    return {"fixed": fixed, "random": random, "groups": groups, "tests": tests}


def test_html_report_parses_and_holds_every_table(fit):
    figure = ReportFigure("A plot", svg='<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')
    page = Page()
    page.feed(report_html(build_fit_report(fit, "hsb.csv", [figure])))
    page.close()
    for key, rows in expected_tables(fit).items():
        assert page.tables[f"table-{key}"][1:] == rows, key  # row 0 is the header
    assert page.tables["table-fixed"][0][:4] == ["Term", "Coef.", "Std. Err.", "t"]
    info = dict(row for row in page.tables["table-fit"][1:])
    assert info["Model"] == fit.model and info["Data"] == "hsb.csv"
    assert info["Log restricted-likelihood"] == format_cell(fit.loglik) and info["Observations"] == f"{fit.nobs:,}"
    assert info["AIC"] == format_cell(fit.aic) and info["Degrees of freedom"] == "Satterthwaite"
    assert page.headings[:5] == ["Model and fit", "Groups", "Fixed effects (outcome mathach)",
                                 "Random-effects parameters", "Tests"]
    assert "Plots" in page.headings
    svg = base64.b64decode(page.images[0].split(",", 1)[1]).decode()
    assert page.images[0].startswith("data:image/svg+xml;base64,") and svg == figure.svg
    assert f"{fit.loglik:.8g}" in page.text  # the Stata-style output, verbatim


def test_warnings_come_first_in_the_report():
    frame = pd.read_csv("tests/data/boundary_two_level.csv")
    fit = fit_mixed(frame, ModelSpec.parse("y x || h: || g:"))
    assert fit.warnings
    html = report_html(build_fit_report(fit, "boundary"))
    page = Page()
    page.feed(html)
    assert page.headings[0] == "Warnings"
    assert all(warning in page.text for warning in fit.warnings)


def test_word_report_holds_the_same_numbers(fit, tmp_path):
    from docx import Document

    path = write_report(build_fit_report(fit, "hsb.csv"), tmp_path / "report.docx")
    document = Document(str(path))
    tables = [[[cell.text for cell in row.cells] for row in table.rows] for table in document.tables]
    expected = expected_tables(fit)
    bodies = {tuple(t[0]): t[1:] for t in tables}
    assert bodies[("Term", "Coef.", "Std. Err.", "t", "df", "P>|t|", "95% CI low", "95% CI high")] == expected["fixed"]
    assert bodies[("Level", "Parameter", "Estimate", "Std. Err.", "95% CI low", "95% CI high")] == expected["random"]
    assert bodies[("Level", "Groups", "Min. obs.", "Mean obs.", "Max. obs.")] == expected["groups"]
    assert bodies[("Test", "Distribution", "Statistic", "p-value")] == expected["tests"]
    text = "\n".join(p.text for p in document.paragraphs)
    assert fit.model in text and "hsb.csv" in text


def test_command_line_report_in_both_formats(tmp_path, capsys):
    html_path, docx_path = tmp_path / "fit.html", tmp_path / "fit.docx"
    assert main(["fit", HSB, "--model", MODEL, "--quiet", "--report", str(html_path)]) == 0
    assert main(["fit", HSB, "--model", MODEL, "--quiet", "--report", str(docx_path)]) == 0
    fit = fit_mixed(pd.read_csv(HSB), ModelSpec.parse(MODEL))
    page = Page()
    page.feed(html_path.read_text())
    assert [row[2] for row in page.tables["table-fixed"][1:]] == [format_cell(r.se) for r in fit.fixed]
    assert CLI_PLOTS_NOTE in page.text and not page.images
    from docx import Document

    assert any(CLI_PLOTS_NOTE == p.text for p in Document(str(docx_path)).paragraphs)
    assert main(["fit", HSB, "--model", MODEL, "--report", str(tmp_path / "fit.pdf")]) == 2
    assert "unknown report format" in capsys.readouterr().err
    with pytest.raises(UserInputError):
        write_report(build_fit_report(fit), tmp_path / "fit.odt")


def test_icc_and_r2_tables_when_the_fit_carries_them(fit):
    import copy

    carrying = copy.copy(fit)
    from types import SimpleNamespace

    carrying.icc = [SimpleNamespace(level="school", label="school", icc=0.1803, se=0.0187, ci=[0.146, 0.220])]
    carrying.r2 = {"marginal": 0.121, "conditional": 0.164}
    page = Page()
    page.feed(report_html(build_fit_report(carrying, "hsb.csv")))
    assert page.tables["table-icc"][1:] == [["school", "0.1803", "0.0187", "0.1460", "0.2200"]]
    assert page.tables["table-r2"][1:] == [["R² marginal", "0.1210"], ["R² conditional", "0.1640"]]


def test_every_report_says_what_the_numbers_are_measured_in():
    from pathlib import Path

    import pandas as pd

    from engine.fit_report import build_fit_report
    from engine.mixed import fit_mixed
    from engine.model_spec import ModelSpec

    data = Path(__file__).parent / "data"
    linear = fit_mixed(pd.read_csv(data / "hsb.csv"), ModelSpec.parse("mathach ses || school: ses, reml"))
    tables = {t.key: t for t in build_fit_report(linear).tables}
    assert "Units: coefficients in units of mathach per unit of each predictor" in tables["fixed"].notes[0]
    assert tables["random"].notes[0].startswith("Units: sds in units of mathach")
    variance_tables = {t.key: t for t in build_fit_report(linear, variances=True).tables}
    assert variance_tables["random"].notes[0].startswith("Units: variances in squared units of mathach")
    binary = fit_mixed(pd.read_csv(data / "cbpp_long.csv"), ModelSpec.parse("melogit sick i.period || herd:"))
    tables = {t.key: t for t in build_fit_report(binary).tables}
    assert "log-odds of sick = 1" in tables["fixed"].notes[0] and "odds ratios" in tables["fixed"].notes[0]
    assert "latent log-odds scale" in tables["random"].notes[0]
