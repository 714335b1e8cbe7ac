"""Plot: how many districts does the seed need to estimate the district sd within +-0.5?

Runs a Monte Carlo sweep of the tutoring design over districts with the four-level REML model
and plots, for the district sd (true value 2), the RMSE of its estimates (with Monte Carlo error
bars) and the median half-width of its reported 95% interval against the number of districts, with
the target 0.5 drawn across. Prints the first district count where each falls below 0.5.
Rendered headless with pyqtgraph (Qt offscreen).

    python bench/plot_power_districts.py [--reps 50] [--districts 5 10 20 40 60 80]
                                         [--out docs/power-districts.png] [--json points.json] [--from-json points.json]
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
PARAM = "dist_id:sd(_cons)"
TARGET = 0.5
RMSE_COLOUR = (31, 119, 180)
WIDTH_COLOUR = (214, 39, 40)


def run(reps: int, districts: list[int], seed: int) -> dict:
    """Per district count: RMSE (and its Monte Carlo SE) and the mean 95% CI half-width of the district sd."""
    import numpy as np

    from engine.montecarlo import Study, Sweep, run_study
    from engine.presets import get_preset

    sweep = Sweep(kind="units", target="dist_id", values=[float(d) for d in districts])
    study = Study(get_preset("tutoring"), [MODEL], reps=reps, seed=seed, sweep=sweep, name="tutoring")

    def progress(done, total, _summary):
        print(f"\r{done}/{total} replications", end="", file=sys.stderr, flush=True)

    result = run_study(study, progress=progress)
    print(f"\n{result.completed} replications in {result.seconds:.1f} s on {result.workers} workers", file=sys.stderr)
    points = []
    for value in districts:
        rows = result.records[(result.records["param"] == PARAM) & (result.records["sweep"] == value)
                              & ~result.records["failed"]]
        errors = rows["estimate"].to_numpy() - 2.0
        squared = errors ** 2
        rmse = float(math.sqrt(squared.mean()))
        # delta method: SE of sqrt(mean of squares) = SD(squares) / (2 RMSE sqrt(n))
        rmse_se = float(squared.std(ddof=1) / (2 * rmse * math.sqrt(len(squared))))
        halves = ((rows["ci_high"] - rows["ci_low"]) / 2).to_numpy()
        reported = halves[np.isfinite(halves)]
        points.append({"districts": value, "fits": int(len(rows)), "rmse": rmse, "rmse_mcse": rmse_se,
                       # The median: with few districts a Wald interval on the log-sd scale can be
                       # astronomically wide, and a few such intervals would swamp a mean.
                       "median_half_width": float(np.median(reported)) if reported.size else None,
                       "with_interval": int(reported.size),
                       "at_zero": float(rows["at_zero"].mean())})
    return {"reps": reps, "seed": seed, "model": MODEL, "param": PARAM, "points": points,
            "seconds": result.seconds, "workers": result.workers}


def first_below(points: list[dict], key: str) -> float | None:
    return next((p["districts"] for p in points if p[key] is not None and p[key] < TARGET), None)


def plot(data: dict, out: Path) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    widget = pg.GraphicsLayoutWidget()
    widget.resize(900, 560)
    widget.addLabel(f"How many districts to estimate the district sd (true 2) within \u00b10.5?<br>tutoring design, "
                    f"four-level REML, {data['reps']} replications per point", row=0, col=0, size="11pt")
    item = widget.addPlot(row=1, col=0)
    item.showGrid(x=True, y=True, alpha=0.3)
    item.setLabel("bottom", "districts")
    item.setLabel("left", "district sd: error")
    item.addLegend(offset=(-10, 10))
    points = data["points"]
    x = np.array([p["districts"] for p in points], dtype=float)
    rmse = np.array([p["rmse"] for p in points])
    rmse_se = np.array([p["rmse_mcse"] for p in points])
    half = np.array([np.nan if p["median_half_width"] is None else p["median_half_width"] for p in points])
    item.addItem(pg.ErrorBarItem(x=x, y=rmse, height=2 * rmse_se, pen=pg.mkPen(RMSE_COLOUR, width=2), beam=0.6))
    item.plot(x, rmse, pen=pg.mkPen(RMSE_COLOUR, width=2), symbol="o", symbolSize=8, symbolBrush=RMSE_COLOUR,
              name="RMSE of the estimated district sd")
    item.plot(x, half, pen=pg.mkPen(WIDTH_COLOUR, width=2, style=pg.QtCore.Qt.PenStyle.DashLine), symbol="s",
              symbolSize=7, symbolBrush=WIDTH_COLOUR, name="median half-width of its 95% CI")
    item.addItem(pg.InfiniteLine(pos=TARGET, angle=0, pen=pg.mkPen((90, 90, 90), width=1.5,
                                                                   style=pg.QtCore.Qt.PenStyle.DotLine)))
    item.getAxis("bottom").setTicks([[(v, f"{v:g}") for v in x]])
    item.setYRange(0, min(float(np.nanmax(np.r_[rmse + rmse_se, half])) * 1.08, 4.0), padding=0)
    widget.show()
    app.processEvents()
    exporter = pyqtgraph.exporters.ImageExporter(widget.scene())
    exporter.parameters()["width"] = 900
    out.parent.mkdir(parents=True, exist_ok=True)
    exporter.export(str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--districts", type=int, nargs="+", default=[5, 10, 20, 40, 60, 80])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "power-districts.png")
    parser.add_argument("--json", type=Path, help="also save the points here")
    parser.add_argument("--from-json", type=Path, help="plot saved points instead of running the study")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    data = json.loads(args.from_json.read_text()) if args.from_json else run(args.reps, args.districts, args.seed)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    for p in data["points"]:
        half = "." if p["median_half_width"] is None else f"{p['median_half_width']:.3f}"
        print(f"{p['districts']:>4g} districts: RMSE {p['rmse']:.3f} ({p['rmse_mcse']:.3f}), median CI half-width {half}, "
              f"at zero {p['at_zero']:.0%}")
    print(f"RMSE below {TARGET} from {first_below(data['points'], 'rmse')} districts; median CI half-width below "
          f"{TARGET} from {first_below(data['points'], 'median_half_width')} districts")
    plot(data, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
