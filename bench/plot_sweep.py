"""Plot: does more data help? The SE of each estimate as the number of districts grows.

Runs a Monte Carlo sweep of the tutoring design over districts (default 5, 10, 20, 40) with the
four-level REML model and plots, for the treatment effect and every variance component, the
empirical SD of the estimates (with Monte Carlo error bars) and the mean reported SE against
the number of districts (log scale). Rendered headless with pyqtgraph (Qt offscreen).

    python bench/plot_sweep.py [--reps 200] [--districts 5 10 20 40] [--out docs/montecarlo-sweep.png]
                               [--json summary.json] [--from-json summary.json]

``--json`` also saves the study's summary; ``--from-json`` re-plots a saved summary without
running the study.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml"
PANELS = [("tutoring", "treatment effect (tutoring)"), ("dist_id:sd(_cons)", "sd(district)"),
          ("school_id:sd(_cons)", "sd(school)"), ("teach_id:sd(_cons)", "sd(teacher)"),
          ("student_id:sd(_cons)", "sd(student)"), ("Residual:sd(Residual)", "sd(residual)")]
EMPIRICAL_COLOUR = (31, 119, 180)
REPORTED_COLOUR = (214, 39, 40)


def run_sweep(reps: int, districts: list[int], seed: int) -> dict:
    """Run the sweep; the JSON of ``montecarlo --json``."""
    from engine.montecarlo import Study, Sweep, run_study
    from engine.presets import get_preset

    sweep = Sweep(kind="units", target="dist_id", values=[float(d) for d in districts])
    study = Study(get_preset("tutoring"), [MODEL], reps=reps, seed=seed, sweep=sweep, name="tutoring")

    def progress(done, total, _summary):
        print(f"\r{done}/{total} replications", end="", file=sys.stderr, flush=True)

    result = run_study(study, progress=progress)
    print(f"\n{result.completed} replications in {result.seconds:.1f} s on {result.workers} workers", file=sys.stderr)
    return result.to_dict()


def plot(summary: dict, out: Path) -> None:
    """Six panels, one per parameter: empirical SD and mean SE against districts (log10 positions,
    labelled with the district counts)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    layout = pg.GraphicsLayoutWidget()
    layout.resize(1500, 900)
    reps = summary["reps"]
    layout.addLabel(f"Does more data help? Spread of the estimates (empirical SD, with Monte Carlo error bars) and "
                    f"mean reported SE as districts grow<br>tutoring design (5 schools x 8 teachers x 20 students "
                    f"x 2 semesters per district), four-level REML, {reps} replications per point",
                    row=0, col=0, colspan=3, size="11pt")
    rows = summary["rows"]
    for index, (param, title) in enumerate(PANELS):
        of_param = sorted((r for r in rows if r["param"] == param), key=lambda r: r["sweep"])
        x = np.log10([r["sweep"] for r in of_param])
        empirical = np.array([_value(r["emp_sd"]) for r in of_param])
        empirical_error = np.array([_value(r["mcse_emp_sd"]) for r in of_param])
        reported = np.array([_value(r["mean_se"]) for r in of_param])
        at_zero = [r["at_zero"] or 0.0 for r in of_param]
        plot_item = layout.addPlot(row=1 + index // 3, col=index % 3)
        subtitle = ""
        if any(at_zero):
            subtitle = "<br><span style='font-size:8pt'>estimated at zero: " + ", ".join(
                f"{r['sweep']}: {z:.0%}" for r, z in zip(of_param, at_zero)) + "</span>"
        plot_item.setTitle(title + subtitle, size="10pt")
        plot_item.showGrid(x=True, y=True, alpha=0.3)
        plot_item.setLabel("bottom", "districts")
        plot_item.setLabel("left", "SE")
        plot_item.getAxis("left").enableAutoSIPrefix(False)
        plot_item.getAxis("bottom").setTicks([[(float(v), f"{10 ** v:g}") for v in x]])
        if index == 0:
            plot_item.addLegend(offset=(-10, 10))
        plot_item.addItem(pg.ErrorBarItem(x=x, y=empirical, height=2 * empirical_error,
                                          pen=pg.mkPen(EMPIRICAL_COLOUR, width=2), beam=0.04))
        plot_item.plot(x, empirical, pen=pg.mkPen(EMPIRICAL_COLOUR, width=2), symbol="o", symbolSize=8,
                       symbolBrush=EMPIRICAL_COLOUR, name="empirical SD of the estimates")
        plot_item.plot(x, reported, pen=pg.mkPen(REPORTED_COLOUR, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                       symbol="s", symbolSize=7, symbolBrush=REPORTED_COLOUR, name="mean reported SE")
        top = np.nanmax(np.concatenate([empirical + empirical_error, reported]))
        plot_item.setYRange(0, top * 1.08, padding=0)
        plot_item.setXRange(x.min(), x.max(), padding=0.08)
    layout.show()
    app.processEvents()
    exporter = pyqtgraph.exporters.ImageExporter(layout.scene())
    exporter.parameters()["width"] = 1500
    out.parent.mkdir(parents=True, exist_ok=True)
    exporter.export(str(out))


def _value(number) -> float:
    return math.nan if number is None else float(number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--districts", type=int, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "montecarlo-sweep.png")
    parser.add_argument("--json", type=Path, help="also save the summary JSON here")
    parser.add_argument("--from-json", type=Path, help="plot a saved summary instead of running the study")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.from_json:
        summary = json.loads(args.from_json.read_text())
    else:
        summary = run_sweep(args.reps, args.districts, args.seed)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    plot(summary, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
