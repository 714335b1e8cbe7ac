"""Plots of a Monte Carlo study: the spread of one parameter's estimates around its truth, and
bias, RMSE, coverage and power against the swept design value, with Monte Carlo error bars.

Every number drawn comes from the engine's summary rows and records (``engine.montecarlo``);
the panels only choose what to show. Error bars are two Monte Carlo standard errors either side,
the band inside which a difference from the reference line is not yet more than simulation noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel

from gui.plots.base import ESTIMATE_COLOR, MUTED_COLOR, TRUTH_COLOR, PlotPanel, new_plot

MODEL_COLORS = ["#1f5fa8", "#d9822b", "#2e8b57", "#8e44ad", "#c0392b", "#5d6d7e", "#b7950b", "#17a589"]
ERROR_BAR_MCSE = 2  # error bars: estimate +/- 2 Monte Carlo standard errors
TARGET_POWER = 0.8
MAX_HISTOGRAM_BINS = 40
DASHED = Qt.PenStyle.DashLine
ANALYTIC_COLOR = "#222222"
DISAGREE_COLOR = "#c0392b"


@dataclass
class StudyPlotData:
    """What the Monte Carlo plots draw: the engine's summary (``summary_frame()``), the records
    behind it (None while none have arrived), the model strings in study order, the sweep's label
    (None without a sweep) and the treatment whose power is plotted."""

    summary: pd.DataFrame
    records: Optional[pd.DataFrame] = None
    models: list[str] = field(default_factory=list)
    sweep_label: Optional[str] = None
    treatment: Optional[str] = None
    alpha: float = 0.05  # the study's: coverage of (1 - alpha) intervals, power at level alpha
    # The textbook power of the treatment at each sweep value (engine.power.study_curve) and its
    # comparison with the simulated power; None / empty when no formula applies.
    analytic: Optional[object] = None
    comparisons: list = field(default_factory=list)

    def model_key(self, model: str) -> str:
        """The short name of a model in legends: M1, M2, ... in study order."""
        return f"M{self.models.index(model) + 1}" if model in self.models else model

    def parameters(self) -> list[str]:
        """Parameters in the order the fits report them, over all models."""
        if self.summary.empty:
            return []
        return [p for p in dict.fromkeys(self.summary["param"]) if p]

    def rows_of(self, model: str, param: str) -> pd.DataFrame:
        """Summary rows of one model and parameter, in sweep order, with numeric columns."""
        rows = self.summary[(self.summary["model"] == model) & (self.summary["param"] == param)].copy()
        for column in rows.columns:
            if column not in ("model", "param"):
                rows[column] = pd.to_numeric(rows[column], errors="coerce")
        return rows


class StudyPlotPanel(PlotPanel):
    """A Monte Carlo plot: ``draw(data, param)`` with the parameter chosen in the view."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._data: StudyPlotData | None = None
        self._param = ""

    def draw(self, data: StudyPlotData | None, param: str = "") -> None:  # type: ignore[override]
        self._data, self._param = data, param
        self._redraw()

    def _redraw(self) -> None:
        raise NotImplementedError

    def _x_positions(self, data: StudyPlotData, rows: pd.DataFrame, model_index: int) -> np.ndarray:
        """Sweep values, nudged apart per model so that error bars do not hide each other; without
        a sweep, the model's number (one point per model)."""
        if data.sweep_label is None:
            return np.full(len(rows), float(model_index + 1))
        x = rows["sweep"].to_numpy(dtype=float)
        values = np.unique(self._data.summary["sweep"].dropna().to_numpy(dtype=float))
        span = float(values.max() - values.min()) if values.size > 1 else 1.0
        return x + (model_index - (len(data.models) - 1) / 2) * 0.012 * span

    def _x_axis(self, data: StudyPlotData, plot: pg.PlotItem) -> None:
        if data.sweep_label is None:
            plot.setLabel("bottom", "model")
            plot.getAxis("bottom").setTicks([[(i + 1, data.model_key(m)) for i, m in enumerate(data.models)]])
            plot.setXRange(0.5, len(data.models) + 0.5)
        else:
            plot.setLabel("bottom", sweep_axis_label(data.sweep_label))

    def _series(self, plot: pg.PlotItem, data: StudyPlotData, param: str, value: str,
                mcse: Optional[str], legend_items: bool = False):
        """One line (with 2-MCSE error bars when ``mcse`` is given) per model; returns how many
        points were drawn, or with ``legend_items`` the (line, model key) pairs for a legend."""
        drawn, items = 0, []
        for index, model in enumerate(data.models):
            rows = data.rows_of(model, param)
            x = self._x_positions(data, rows, index)
            y = rows[value].to_numpy(dtype=float)
            shown = np.isfinite(y)
            if not shown.any():
                continue
            color = MODEL_COLORS[index % len(MODEL_COLORS)]
            if mcse is not None:
                half = ERROR_BAR_MCSE * rows[mcse].to_numpy(dtype=float)
                bars = shown & np.isfinite(half)
                if bars.any():
                    plot.addItem(pg.ErrorBarItem(x=x[bars], y=y[bars], top=half[bars], bottom=half[bars], beam=0,
                                                 pen=pg.mkPen(color, width=1.5)))
            line = plot.plot(x[shown], y[shown], pen=pg.mkPen(color, width=2) if shown.sum() > 1 else None,
                             symbol="o", symbolSize=8, symbolBrush=color, symbolPen=None, name=data.model_key(model))
            items.append((line, data.model_key(model)))
            drawn += int(shown.sum())
        return items if legend_items else drawn


class EstimateHistogramPlot(StudyPlotPanel):
    """The estimates of one parameter over the replications, with the truth and their mean."""

    title = "Estimates"
    export_name = "montecarlo-estimates"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("The model whose estimates are shown.")
        self.sweep_combo = QComboBox()
        self.sweep_combo.setToolTip("The sweep value whose replications are shown (the truth may differ between "
                                    "sweep values).")
        self.sweep_label = QLabel("Sweep value:")
        self.model_combo.activated.connect(lambda _: self._redraw())
        self.sweep_combo.activated.connect(lambda _: self._redraw())
        self.controls.addWidget(QLabel("Model:"))
        self.controls.addWidget(self.model_combo, 1)
        self.controls.addWidget(self.sweep_label)
        self.controls.addWidget(self.sweep_combo)

    def draw(self, data: StudyPlotData | None, param: str = "") -> None:  # type: ignore[override]
        chosen_model, chosen_sweep = self.model_combo.currentIndex(), self.sweep_combo.currentText()
        self.model_combo.clear()
        self.sweep_combo.clear()
        if data is not None:
            self.model_combo.addItems([f"{data.model_key(m)}: {m}" for m in data.models])
            if 0 <= chosen_model < len(data.models):
                self.model_combo.setCurrentIndex(chosen_model)
            if data.sweep_label is not None and not data.summary.empty:
                values = [f"{v:g}" for v in dict.fromkeys(pd.to_numeric(data.summary["sweep"]).dropna())]
                self.sweep_combo.addItems(values)
                if chosen_sweep in values:
                    self.sweep_combo.setCurrentText(chosen_sweep)
        with_sweep = data is not None and data.sweep_label is not None
        self.sweep_label.setVisible(with_sweep)
        self.sweep_combo.setVisible(with_sweep)
        super().draw(data, param)

    def _redraw(self) -> None:
        self.canvas.clear()
        data, param = self._data, self._param
        if data is None or data.records is None or data.records.empty:
            self.show_message("Run a study to see how the estimates spread around the truth.")
            return
        if not param:
            self.show_message("Choose a parameter.")
            return
        model = data.models[max(self.model_combo.currentIndex(), 0)]
        records = data.records
        chosen = (records["model"] == model) & (records["param"] == param) & ~records["failed"].astype(bool)
        rows = data.rows_of(model, param)
        if data.sweep_label is not None and self.sweep_combo.currentText():
            value = float(self.sweep_combo.currentText())
            chosen &= np.isclose(records["sweep"].to_numpy(dtype=float), value)
            rows = rows[np.isclose(rows["sweep"].to_numpy(dtype=float), value)]
        estimates = records.loc[chosen, "estimate"].to_numpy(dtype=float)
        estimates = estimates[np.isfinite(estimates)]
        if estimates.size == 0:
            self.show_message(f"{data.model_key(model)} has no estimates of {param} (yet): every fit failed, "
                              "or the model has no such parameter.")
            return
        self.show_canvas()
        truth = float(rows["truth"].iloc[0]) if len(rows) and math.isfinite(rows["truth"].iloc[0]) else None
        mean = float(rows["mean"].iloc[0]) if len(rows) and math.isfinite(rows["mean"].iloc[0]) else None
        title = f"{param}: {estimates.size:,} estimates by {data.model_key(model)}"
        if truth is not None:
            title += f"; truth {truth:g} (red)"
        if mean is not None:
            title += f", mean {mean:.4g} (dashed)"
        plot = new_plot(self.canvas, title, "estimate", "replications")
        bins = min(MAX_HISTOGRAM_BINS, max(5, int(math.sqrt(estimates.size)) + 1))
        low, high = float(estimates.min()), float(estimates.max())
        if truth is not None:
            low, high = min(low, truth), max(high, truth)
        if high <= low:
            low, high = low - 0.5, high + 0.5
        counts, edges = np.histogram(estimates, bins=bins, range=(low, high))
        plot.plot(edges, counts, stepMode="center", fillLevel=0, brush=pg.mkBrush(ESTIMATE_COLOR + "80"),
                  pen=pg.mkPen(ESTIMATE_COLOR, width=1))
        if truth is not None:
            plot.addItem(pg.InfiniteLine(pos=truth, angle=90, pen=pg.mkPen(TRUTH_COLOR, width=2.5)))
        if mean is not None:
            plot.addItem(pg.InfiniteLine(pos=mean, angle=90, pen=pg.mkPen(ESTIMATE_COLOR, width=2, style=DASHED)))


class SweepAccuracyPlot(StudyPlotPanel):
    """Bias, RMSE and coverage of one parameter against the sweep value (or per model)."""

    title = "Bias, RMSE, coverage"
    export_name = "montecarlo-accuracy"

    def _redraw(self) -> None:
        self.canvas.clear()
        data, param = self._data, self._param
        if data is None or data.summary.empty:
            self.show_message("Run a study to see bias, RMSE and coverage.")
            return
        if not param:
            self.show_message("Choose a parameter.")
            return
        self.show_canvas()
        bars = f"error bars: {ERROR_BAR_MCSE} Monte Carlo SEs"
        bias = new_plot(self.canvas, f"Bias of {param} ({bars})", "", "bias", row=1, col=0)
        bias.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(MUTED_COLOR, width=1, style=DASHED)))
        # Legend in the top line (one for the three plots): inside, it would hide the first sweep value.
        legend = pg.LegendItem(colCount=max(1, len(data.models)))
        self.canvas.addItem(legend, row=0, col=0)
        for item, name in self._series(bias, data, param, "bias", "mcse_bias", legend_items=True):
            legend.addItem(item, name)
        rmse = new_plot(self.canvas, f"RMSE of {param}", "", "RMSE", row=2, col=0)
        self._series(rmse, data, param, "rmse", None)
        coverage = new_plot(self.canvas, f"Coverage of the {percent(1 - data.alpha)} CI of {param} ({bars})", "",
                            "coverage", row=3, col=0)
        coverage.addItem(pg.InfiniteLine(pos=1 - data.alpha, angle=0,
                                         pen=pg.mkPen(TRUTH_COLOR, width=1.5, style=DASHED)))
        drawn = self._series(coverage, data, param, "coverage", "mcse_coverage")
        for plot in (bias, rmse, coverage):
            self._x_axis(data, plot)
        for plot in (rmse, coverage):
            plot.setXLink(bias)
        if not drawn:
            coverage.setTitle(f"Coverage of {param}: no intervals reported")


class PowerPlot(StudyPlotPanel):
    """Power of the test that the treatment effect is zero, against the sweep value (or per model)."""

    title = "Power"
    export_name = "montecarlo-power"

    def _redraw(self) -> None:
        self.canvas.clear()
        data = self._data
        if data is None or data.summary.empty:
            self.show_message("Run a study to see the power of the treatment test.")
            return
        param = data.treatment if data.treatment in data.parameters() else None
        if param is None:
            self.show_message("Power is plotted for the design's treatment, which no model estimates: add the "
                              "treatment to a model (the summary table has the power of every fixed effect).")
            return
        self.show_canvas()
        plot = new_plot(self.canvas, f"Power to detect {param} at the {percent(data.alpha)} level (error bars: {ERROR_BAR_MCSE} "
                        "Monte Carlo SEs; dashed: 80%)", "", "power")
        # Bottom right: power rises with the swept value, so that corner is usually empty.
        plot.addLegend(offset=(-10, -10), brush=pg.mkBrush(255, 255, 255, 210), pen=pg.mkPen(MUTED_COLOR))
        plot.addItem(pg.InfiniteLine(pos=TARGET_POWER, angle=0, pen=pg.mkPen(TRUTH_COLOR, width=1.5, style=DASHED)))
        plot.addItem(pg.InfiniteLine(pos=data.alpha, angle=0, pen=pg.mkPen(MUTED_COLOR, width=1, style=DASHED)))
        self._series(plot, data, param, "power", "mcse_power")
        self._analytic(plot, data, param)
        plot.setYRange(0, 1.05)
        self._x_axis(data, plot)

    def _analytic(self, plot: pg.PlotItem, data: StudyPlotData, param: str) -> None:
        """The formula's power as a black line, and a ring around each simulated point that differs
        from it by more than 2 Monte Carlo SEs."""
        curve = data.analytic
        if curve is None or not getattr(curve, "applies", False) or curve.term != param:
            return
        x = np.array([np.nan if v is None else float(v) for v in curve.sweep], dtype=float)
        y = np.array([np.nan if v is None else float(v) for v in curve.power], dtype=float)
        if data.sweep_label is None:  # one formula value, drawn across the models
            if np.isfinite(y[0]):
                plot.addItem(pg.InfiniteLine(pos=float(y[0]), angle=0, pen=pg.mkPen(ANALYTIC_COLOR, width=2),
                                             label=f"{curve.design} formula", labelOpts={"position": 0.1}))
        else:
            shown = np.isfinite(x) & np.isfinite(y)
            order = np.argsort(x[shown])
            plot.plot(x[shown][order], y[shown][order], pen=pg.mkPen(ANALYTIC_COLOR, width=2), symbol="d",
                      symbolSize=7, symbolBrush=ANALYTIC_COLOR, symbolPen=None, name=f"{curve.design} formula")
        marks = [c for c in data.comparisons if c.disagree and c.model in data.models]
        if marks:
            xs, ys = [], []
            for item in marks:
                index = data.models.index(item.model)
                rows = data.rows_of(item.model, param)
                positions = self._x_positions(data, rows, index)
                sweeps = rows["sweep"].to_numpy(dtype=float)
                hit = np.flatnonzero(np.isclose(sweeps, np.nan if item.sweep is None else float(item.sweep))
                                     | (np.isnan(sweeps) & (item.sweep is None)))
                if hit.size:
                    xs.append(float(positions[hit[0]]))
                    ys.append(float(item.simulated))
            plot.plot(xs, ys, pen=None, symbol="o", symbolSize=18, symbolBrush=None,
                      symbolPen=pg.mkPen(DISAGREE_COLOR, width=2.5),
                      name="differs from the formula by > 2 MC SEs")


def percent(rate: float) -> str:
    """0.95 -> '95%', 0.025 -> '2.5%'."""
    return f"{100 * rate:.10g}%"


def sweep_axis_label(label: str) -> str:
    """The x axis of a sweep, in words: 'units per parent at school_id', 'sd of dist_id'."""
    kind, _, target = label.partition(":")
    if not target:
        return f"units per parent at {label}"
    if kind == "sd":
        return f"random-intercept sd of {target}" if target != "Residual" else "residual sd"
    return f"true effect of {target}"
