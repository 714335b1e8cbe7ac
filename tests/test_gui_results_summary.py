"""Readable results: the Summary page's formatted tables, the side-by-side window and an exported
report, checked for their numbers; with HLM_UPDATE_SCREENSHOTS=1 their screenshots go to docs/."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)
from test_gui_support import main_window  # noqa: F401  (fixture)

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QTextBrowser

from engine.centering import Centering
from engine.fit_report import format_cell
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.project import FitRecord

DOCS = Path(__file__).resolve().parent.parent / "docs"
MODELS = ["mathach || school:, reml",
          "mathach meanses || school:, reml",
          "mathach meanses i.sector##c.ses_c || school: ses_c, covariance(exchangeable) reml"]


@pytest.fixture(scope="module")
def records():
    frame = pd.read_csv("tests/data/hsb.csv")
    out = []
    for k, text in enumerate(MODELS, start=1):
        spec = ModelSpec.parse(text)
        spec.centering = [Centering("ses_c", "ses", "group", "school")]
        out.append(FitRecord(label=f"#{k} mixed REML", result=fit_mixed(frame, spec), data_label="hsb.csv", run=k))
    return out


def save(widget, name: str, tmp_path) -> Path:
    path = tmp_path / f"{name}.png"
    assert widget.grab().save(str(path))
    if os.environ.get("HLM_UPDATE_SCREENSHOTS") == "1":
        widget.grab().save(str(DOCS / f"screenshot-{name}.png"))
    image = QImage(str(path))
    assert image.width() > 600 and image.height() > 400
    return path


def test_summary_page_side_by_side_and_report(qtbot, main_window, records, tmp_path):
    window = main_window
    results = window.results_view
    window.tabs.setCurrentWidget(results)
    results.add_run(records)
    results.history_list.setCurrentRow(2)
    fit = records[2].result
    assert results.tabs.currentWidget() is results.summary_view  # readable tables first
    text = results.summary_view.toPlainText()
    cells = text.split("\n")  # a table's cells come one per line
    for row in fit.fixed:
        stars = "***" if row.p < 0.001 else "**" if row.p < 0.01 else "*" if row.p < 0.05 else ""
        at = cells.index(row.term)
        assert cells[at + 1: at + 3] == [format_cell(row.coef), format_cell(row.se)]
        assert cells[at + 5: at + 8] == [format_cell(row.ci[0]), format_cell(row.ci[1]), stars]
    assert "school: Exchangeable" in text and "Residual" in text
    assert format_cell(fit.random_param("school", "corr(ses_c _cons)").estimate) in text
    qtbot.wait(50)
    save(window, "results-summary", tmp_path)

    # the three fits side by side
    selection = results.history_list
    for row in range(3):
        selection.item(row).setSelected(True)
    dialog = results.show_side_by_side()
    qtbot.addWidget(dialog)
    dialog.resize(1000, 760)
    qtbot.wait(50)
    shown = dialog.view.table_model().frame
    assert list(shown.columns)[1:] == ["(1) #1 mixed REML", "(2) #2 mixed REML", "(3) #3 mixed REML"]
    save(dialog, "side-by-side", tmp_path)
    dialog.close()

    # the exported report, as a page viewer shows it
    written = window.export_report(tmp_path / "report.html")
    browser = QTextBrowser()
    qtbot.addWidget(browser)
    browser.resize(1000, 1500)
    browser.setHtml(written.read_text(encoding="utf-8"))
    browser.show()
    qtbot.wait(50)
    assert format_cell(fit.coef("ses_c").coef) in browser.toPlainText()
    save(browser, "report", tmp_path)


def test_summary_page_says_the_units_of_its_tables(qtbot, records):
    from gui.views.result_summary import FitSummaryView

    view = FitSummaryView()
    qtbot.addWidget(view)
    view.show_fit(records[1].result, "hsb.csv")
    text = view.toPlainText()
    assert "Units: coefficients in units of mathach per unit of each predictor" in text
    assert "Units: sds in units of mathach" in text
    view.show_fit(records[1].result, "hsb.csv", variances=True)
    assert "Units: variances in squared units of mathach" in view.toPlainText()
