"""Plot exports: every plot's SVG, rendered by Qt's own SVG renderer, looks like its PNG export
(data at the same place relative to the axes, markers and lines the same size), and the SVG does
not rely on cosmetic pens that some renderers ignore."""

from __future__ import annotations

import re

import numpy as np
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.montecarlo import Study, Sweep, run_study
from engine.presets import get_preset
from engine.project import FitRecord
from engine.simulate import simulate
from tests.reference_cases import DATA

COMPARE_WIDTH = 200  # both images are smoothed down to this width before comparing
# Mean absolute grey-level difference (0..1) after smoothing: 0.002-0.004 for these plots; the
# garbled SVGs this replaced (axes at 3/4 scale, displaced data, smeared markers) gave 0.010-0.016.
MAX_MEAN_DIFFERENCE = 0.006


def small_tutoring():
    design = get_preset("tutoring")
    for level, n in (("dist_id", 3), ("school_id", 3), ("teach_id", 3), ("student_id", 4)):
        design = design.with_units(level, n)
    return design


def grey(image: QImage, width: int) -> np.ndarray:
    small = image.convertToFormat(QImage.Format.Format_RGB32).scaledToWidth(
        width, Qt.TransformationMode.SmoothTransformation).convertToFormat(QImage.Format.Format_Grayscale8)
    stride = small.bytesPerLine()
    raw = np.frombuffer(small.constBits(), dtype=np.uint8, count=stride * small.height())
    return raw.reshape(small.height(), stride)[:, : small.width()].astype(float) / 255.0


def render_svg(path, size) -> QImage:
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(path))
    assert renderer.isValid(), path
    image = QImage(size, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return image


def assert_svg_matches_png(panel, tmp_path) -> None:
    png = QImage(str(panel.export(tmp_path / f"{panel.export_name}.png")))
    svg_path = panel.export(tmp_path / f"{panel.export_name}.svg")
    svg = render_svg(svg_path, png.size())
    # The drawing keeps the plot's proportions and says its size in pixels.
    header = svg_path.read_text()[:600]
    width, height = (float(v) for v in re.search(r'width="([\d.]+)" height="([\d.]+)"', header).groups())
    assert width / height == pytest.approx(png.width() / png.height(), rel=0.01)
    a, b = grey(png, COMPARE_WIDTH), grey(svg, COMPARE_WIDTH)
    assert a.shape == b.shape
    difference = np.abs(a - b)
    assert difference.mean() < MAX_MEAN_DIFFERENCE, f"{panel.title}: mean difference {difference.mean():.4f}"
    # Data coordinates were put in pixels: no group still scales cosmetic strokes.
    text = svg_path.read_text()
    scaled = re.findall(r'transform="matrix\(([^)]*)\)"[^>]*>\s*<(?:path|polyline|rect)[^>]*non-scaling-stroke', text)
    assert not [m for m in scaled if [float(v) for v in m.split(",")][:4] != [1, 0, 0, 1]], panel.title


@pytest.fixture(scope="module")
def fitted_context():
    from gui.plots.base import PlotContext

    simulated = simulate(small_tutoring(), seed=4)
    spec = ModelSpec.parse("perform tutoring || dist_id: || school_id: || teach_id:, reml")
    result = fit_mixed(simulated.frame, spec)
    design = small_tutoring()
    return PlotContext(record=FitRecord(label="#1", result=result), truth=simulated.truth,
                       true_shares=design.variance_shares(), frame=simulated.frame)


def test_every_results_plot_exports_an_svg_that_looks_like_its_png(qtbot, tmp_path, fitted_context):
    from gui.plots.plots_view import PlotsView
    from gui.worker import JobRunner

    runner = JobRunner("test-margins")  # the margins panel computes on a worker
    try:
        view = PlotsView(margins_runner=runner)
        view.resize(900, 600)
        view.show()
        qtbot.addWidget(view)
        view.set_context(fitted_context)
        for panel in view.panels():
            view.show_panel(panel)
            qtbot.wait(20)
            qtbot.waitUntil(panel.has_plot, timeout=30_000)
            assert_svg_matches_png(panel, tmp_path)
    finally:
        runner.shutdown()


def test_every_monte_carlo_plot_exports_an_svg_that_looks_like_its_png(qtbot, tmp_path):
    from gui.plots.montecarlo_plots import EstimateHistogramPlot, PowerPlot, StudyPlotData, SweepAccuracyPlot
    from engine.montecarlo import summary_frame

    study = Study(design=small_tutoring(), models=["perform tutoring || teach_id:, reml", "ols"], reps=6, seed=3,
                  sweep=Sweep(kind="units", target="dist_id", values=[3, 4]))
    result = run_study(study, workers=1)
    data = StudyPlotData(summary=summary_frame(result.summary), records=result.records, models=study.models,
                         sweep_label=study.sweep.label, treatment="tutoring")
    for panel in (EstimateHistogramPlot(), SweepAccuracyPlot(), PowerPlot()):
        panel.resize(900, 600)
        panel.show()
        qtbot.addWidget(panel)
        panel.draw(data, "tutoring")
        qtbot.wait(20)
        assert panel.has_plot(), f"{panel.title}: {panel.message_label.text()}"
        assert_svg_matches_png(panel, tmp_path)


# ----- LaTeX tables -----------------------------------------------------------------------------------------
def test_latex_table_is_booktabs_with_numbers_on_the_decimal_point_and_keeps_its_notes():
    import pandas as pd

    from gui.tables.table_export import latex_table

    frame = pd.DataFrame({"Term": ["ses", "_cons", "1.sector#c.ses"], "Coef.": [2.191172, 12.657, -1.5],
                          "P>|z|": [0.0, 1.5e-5, float("nan")],
                          "Groups": np.array([160, 7185, 3], dtype=np.int64)})
    text = latex_table(frame, decimals=4, notes=["Model: mixed mathach ses || school:",
                                                 "Warning: 50% of the sd & more"])
    assert text == "\n".join([
        r"% needs \usepackage{booktabs, siunitx, threeparttable}",
        r"\begin{threeparttable}",
        r"\begin{tabular}{lS[table-format=-2.4,group-digits=false]S[table-format=1.4,group-digits=false]"
        r"S[table-format=4.0,group-digits=false]}",
        r"\toprule",
        r"Term & {Coef.} & {P\textgreater{}\textbar{}z\textbar{}} & {Groups} \\",
        r"\midrule",
        r"ses & 2.1912 & 0.0000 & 160 \\",
        r"\_cons & 12.6570 & 0.0000 & 7185 \\",
        r"1.sector\#c.ses & -1.5000 & {.} & 3 \\",
        r"\bottomrule",
        r"\end{tabular}",
        r"\begin{tablenotes}\footnotesize",
        r"\item Model: mixed mathach ses \textbar{}\textbar{} school:",
        r"\item Warning: 50\% of the sd \& more",
        r"\end{tablenotes}",
        r"\end{threeparttable}", ""])
    # Every row has as many cells as the column specification has columns.
    body = [line for line in text.splitlines() if line.endswith(r"\\")]
    assert all(line.count(" & ") == 3 for line in body)
    without_notes = latex_table(frame)
    assert "threeparttable" not in without_notes and without_notes.count(r"\toprule") == 1


def test_exported_results_tables_carry_the_fit_and_its_warnings(qtbot, tmp_path):
    import pandas as pd

    from gui.views.results_view import ResultsView

    penicillin = pd.read_csv(DATA / "penicillin.csv")
    result = fit_mixed(penicillin, ModelSpec.parse("diameter || plate: || sample:, reml"), predict=False)
    view = ResultsView()
    qtbot.addWidget(view)
    view.set_history([FitRecord(label="#1 Mixed REML: plate > sample", result=result, run=1)])
    tex = view.fixed_table.export_to(tmp_path / "fixed.tex").read_text()
    assert r"\item Model: mixed diameter \textbar{}\textbar{} plate: \textbar{}\textbar{} sample:, reml" in tex
    assert r"\item Warning: sample looks crossed with plate" in tex
    html_text = view.fixed_table.export_to(tmp_path / "fixed.html").read_text()
    assert '<p class="hlm-note">Warning: sample looks crossed with plate' in html_text
    assert list(pd.read_csv(view.fixed_table.export_to(tmp_path / "fixed.csv"))["Term"]) == ["_cons"]
