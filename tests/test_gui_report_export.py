"""File > Export report from the window: an HTML page with the plots embedded and a Word document,
both holding the chosen fit's tables."""

from __future__ import annotations

import base64

import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)
from test_gui_support import main_window, run_job  # noqa: F401  (fixture)

from engine.fit_report import format_cell
from tests.test_fit_report import Page


def test_export_report_writes_html_with_plots_and_word(qtbot, main_window, tmp_path):
    window = main_window
    run_job(qtbot, window, window.design_view.simulate_button.click)
    run_job(qtbot, window, window.model_view.fit_button.click)
    record = window.results_view.current_record
    fit = record.result
    html_path = window.export_report(tmp_path / "report.html")
    page = Page()
    page.feed(html_path.read_text(encoding="utf-8"))
    assert [row[1] for row in page.tables["table-fixed"][1:]] == [format_cell(r.coef) for r in fit.fixed]
    assert [row[2] for row in page.tables["table-random"][1:]] == [format_cell(r.estimate) for r in fit.random]
    assert [row[1] for row in page.tables["table-groups"][1:]] == [f"{g.groups:,}" for g in fit.groups]
    assert "Tests" in page.headings and "Plots" in page.headings
    # every plot of the Plots tab, as SVG drawings inside the page
    assert len(page.images) == 5
    for source in page.images:
        assert source.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(source.split(",", 1)[1]).decode("utf-8")
        assert "<svg" in svg and "<path" in svg
    docx_path = window.export_report(tmp_path / "report.docx")
    from docx import Document

    document = Document(str(docx_path))
    fixed = next(t for t in document.tables if t.rows[0].cells[0].text == "Term")
    assert [row.cells[1].text for row in fixed.rows[1:]] == [format_cell(r.coef) for r in fit.fixed]
    assert len(document.inline_shapes) == 5  # the plots, as pictures
