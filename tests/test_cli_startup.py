"""The command line imports only what its subcommand needs (behaviour behind a fast start-up)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from engine import distributions
from engine.cli import SUBCOMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
HSB = ROOT / "tests" / "data" / "hsb.csv"
# Packages a `fit` never needs: the window's, the Monte Carlo cluster's, the panel estimators',
# scipy.stats (half a second to import; p-values and quantiles come from engine.distributions)
# and pyarrow (no longer a dependency; pandas imports it at start-up where it is installed unless
# main.py keeps it out).
NOT_FOR_FIT = ("PySide6", "shiboken6", "pyqtgraph", "dask", "distributed", "statsmodels", "linearmodels",
               "scipy.stats", "pyarrow")


def modules_after(argv: list[str]) -> tuple[int, set[str], str]:
    """Run main.main(argv) in a fresh interpreter; its exit code, loaded module names and output."""
    script = ("import contextlib, io, json, sys\n"
              "import main\n"
              "out = io.StringIO()\n"
              "with contextlib.redirect_stdout(out):\n"
              f"    code = main.main({argv!r})\n"
              # a None entry is a module kept out (main.keep_pyarrow_out), not one loaded
              "modules = sorted(name for name, module in sys.modules.items() if module is not None)\n"
              "print(json.dumps({'code': code, 'modules': modules, 'out': out.getvalue()}))\n")
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                               env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout.strip().splitlines()[-1])
    return payload["code"], set(payload["modules"]), payload["out"]


def loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


def test_fit_imports_no_gui_cluster_or_panel_packages():
    code, modules, out = modules_after(["fit", str(HSB), "--model", "mathach ses || school:"])
    assert code == 0
    assert "_cons" in out and "school:" in out  # the fit ran and reported
    for package in NOT_FOR_FIT:
        assert loaded(modules, package) == [], f"`fit` imported {package}"


# What the window must not wait for before it shows: the fit's optimiser, the panel estimators,
# scipy and the Monte Carlo cluster (gui/jobs.py and the power tab load them once the window is shown).
NOT_FOR_WINDOW = ("scipy.stats", "scipy.optimize", "scipy.special", "statsmodels", "linearmodels", "dask",
                  "distributed", "pyarrow")


def test_window_shows_before_the_heavy_engine_modules_load(tmp_path):
    script = ("import json, os, sys\n"
              "import main\n"
              "code = main.main([])\n"
              "shown = sorted(name for name, module in sys.modules.items() if module is not None)\n"
              "from gui.jobs import preload_engine\n"
              "preload_engine()\n"
              "print(json.dumps({'code': code, 'shown': shown,\n"
              "                  'preloaded': sorted(n for n, m in sys.modules.items() if m is not None)}))\n")
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                               env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen",
                                    "HLM_QUIT_WHEN_SHOWN": "1", "HOME": str(tmp_path),
                                    "XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout.strip().splitlines()[-1])
    assert payload["code"] == 0
    shown, preloaded = set(payload["shown"]), set(payload["preloaded"])
    assert "gui.main_window" in shown
    for package in NOT_FOR_WINDOW:
        assert loaded(shown, package) == [], f"the window imported {package} before it showed"
    # what the jobs call is loaded by the preload, so no job imports it on the worker thread
    for module in ("engine.mixed.fit", "engine.panel", "engine.margins", "engine.postestimation_command",
                   "scipy.optimize", "scipy.sparse.linalg"):
        assert module in preloaded, module


def test_help_imports_no_subcommand_and_no_numeric_library():
    completed = subprocess.run([sys.executable, "-c",
                                "import sys, main\n"
                                "try:\n    main.main(['--help'])\nexcept SystemExit:\n    pass\n"
                                "print(sorted(m for m in sys.modules if m.startswith(('engine.cli.', 'numpy', 'pandas'))))"],
                               cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, timeout=120)
    listed = completed.stdout.strip().splitlines()[-1]
    assert listed == "[]", listed
    for name in SUBCOMMANDS:
        assert f"    {name}" in completed.stdout


def test_every_subcommand_module_is_listed_with_its_own_help():
    """SUBCOMMANDS is the one list: each module in engine/cli has a line there, with the same help."""
    modules = sorted(p.stem for p in (ROOT / "engine" / "cli").glob("*.py") if not p.stem.startswith("_"))
    assert sorted(name.replace("-", "_") for name in SUBCOMMANDS) == modules
    parser = build_parser(full=True)
    action = parser.subcommands
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    assert helps == SUBCOMMANDS


def test_a_named_subcommand_gets_its_real_parser():
    args = build_parser().parse_args(["fit", str(HSB), "--model", "mathach || school:", "--reml"])
    assert args.command == "fit" and args.method == "REML" and callable(args.func)


@pytest.mark.parametrize("x", [-3.0, -0.5, 0.0, 0.7, 1.959963984540054, 4.0, 9.0])
def test_distributions_match_scipy_stats(x):
    assert distributions.normal_sf(x) == pytest.approx(stats.norm.sf(x), rel=1e-14, abs=1e-300)
    for df in (1, 2.5, 7, 30):
        assert distributions.chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-12, abs=1e-300)
        assert distributions.t_sf(x, df) == pytest.approx(stats.t.sf(x, df), rel=1e-12, abs=1e-300)
        assert distributions.f_sf(x, df, 12.0) == pytest.approx(stats.f.sf(x, df, 12.0), rel=1e-12, abs=1e-300)


def test_quantiles_match_scipy_stats():
    p = np.array([0.001, 0.025, 0.5, 0.975, 0.999])
    np.testing.assert_allclose(distributions.normal_quantile(p), stats.norm.ppf(p), rtol=1e-13)
    for df in (1, 4.5, 40):
        np.testing.assert_allclose(distributions.t_quantile(p, df), stats.t.ppf(p, df), rtol=1e-11)
    assert float(distributions.normal_quantile(0.975)) == pytest.approx(1.959963984540054, abs=1e-15)


@pytest.mark.parametrize("df, noncentrality", [(3, -1.0), (5.5, 0.3), (10, 2.5), (38, 3.1), (200, 4.0)])
def test_noncentral_t_matches_scipy_stats(df, noncentrality):
    """The power calculations' noncentral t (two-sided power = sf(c) + cdf(-c), as scipy.stats.nct)."""
    x = np.array([-3.2, -2.0, 0.0, 1.96, 2.5, 6.0])
    np.testing.assert_allclose(distributions.noncentral_t_cdf(x, df, noncentrality),
                               stats.nct.cdf(x, df, noncentrality), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(1 - distributions.noncentral_t_cdf(x, df, noncentrality),
                               stats.nct.sf(x, df, noncentrality), rtol=1e-9, atol=1e-15)


def test_main_imports_without_site_packages_preloading_importlib_machinery():
    """main.py's import finder imported ModuleSpec inside find_spec: under a Python whose start-up had
    not yet imported importlib.machinery (python -S, or a plain interpreter outside the venv) every
    later import re-entered the finder, a RecursionError on 'python main.py --help'."""
    completed = subprocess.run([sys.executable, "-S", "-c", "import main, argparse, json; print('imported')"],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-500:]
    assert completed.stdout.strip().splitlines()[-1] == "imported"
