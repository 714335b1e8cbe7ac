"""File > Export report: the chosen fit's report with the window's plots, as HTML or Word.

The report object and its writers are the engine's (engine.fit_report, engine.fit_report_output);
here the plots are drawn off screen, each into SVG (for the HTML page) and PNG (for Word).
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog

from engine.errors import UserInputError
from engine.fit_report import ReportFigure, build_fit_report
from engine.fit_report_output import write_report
from gui.plots.base import PlotContext

REPORT_FILTER = "HTML page (*.html);;Word document (*.docx)"
FIGURE_SIZE = (900, 560)


def _plot_panels():
    from gui.plots.caterpillar_plot import CaterpillarPlot
    from gui.plots.iteration_plot import IterationPlot
    from gui.plots.residual_plot import ResidualPlot
    from gui.plots.sd_plot import SdPlot
    from gui.plots.share_plot import SharePlot

    return [SdPlot(), SharePlot(), CaterpillarPlot(), ResidualPlot(), IterationPlot()]


def render_report_figures(context: PlotContext) -> list[ReportFigure]:
    """Every plot of the Plots tab for ``context``, drawn off screen at a fixed size; a plot with
    nothing to show (e.g. no truth) is left out."""
    figures = []
    with tempfile.TemporaryDirectory() as folder:
        for panel in _plot_panels():
            panel.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
            panel.resize(*FIGURE_SIZE)
            panel.show()
            try:
                panel.draw(context)
                QApplication.processEvents()
                if not panel.has_plot():
                    continue
                svg = panel.export(Path(folder) / f"{panel.export_name}.svg").read_text(encoding="utf-8")
                png = panel.export(Path(folder) / f"{panel.export_name}.png").read_bytes()
                figures.append(ReportFigure(panel.title, svg=svg, png_base64=base64.b64encode(png).decode("ascii")))
            finally:
                panel.close()
                panel.deleteLater()
    return figures


def export_report(window, path: str | Path) -> Path:
    """Write the report of the fit chosen in the Results tab to ``path`` (.html or .docx)."""
    record = window.results_view.current_record
    if record is None:
        raise UserInputError("no fit to report: fit a model first (Ctrl+R)")
    if Path(path).suffix.lower() not in (".html", ".htm", ".docx"):
        raise UserInputError(f"{Path(path).name}: unknown report format; use .html or .docx")
    context = PlotContext(record=record, truth=window.session.truth, true_shares=window.session.true_shares())
    figures = render_report_figures(context)
    report = build_fit_report(record.result, record.data_label or "the data of this session", figures,
                              title=f"{record.label}: {record.result.depvar}",
                              variances=window.results_view.variances_check.isChecked())
    return write_report(report, path)


def export_report_dialog(window) -> Path | None:
    if window.results_view.current_record is None:
        window.show_error("no fit to report: fit a model first (Ctrl+R)")
        return None
    start = str(Path(window.settings.get("last_directory") or ".") / "report.html")
    path, chosen = QFileDialog.getSaveFileName(window, "Export report", start, REPORT_FILTER)
    if not path:
        return None
    if not Path(path).suffix:
        path += ".docx" if "docx" in chosen else ".html"
    try:
        written = export_report(window, path)
    except UserInputError as error:
        window.show_error(str(error))
        return None
    window.statusBar().showMessage(f"Report saved to {written}", 5000)
    return written
