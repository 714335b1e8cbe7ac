"""Start the desktop window, or run the self-test of a packaged build (``--self-test``)."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from pathlib import Path

SELF_TEST_TIMEOUT_MS = 120_000
NO_DISPLAY_HELP = """\
HLM Explorer cannot open its window: this machine has no display (DISPLAY and WAYLAND_DISPLAY are not set).
Ways to proceed:
  * run it under a virtual display:    xvfb-run python main.py
  * check the installation headless:   python main.py --self-test
  * use the command line instead:      python main.py --help   (simulate, fit, compare, ...)
  * or choose a Qt platform yourself:  QT_QPA_PLATFORM=offscreen python main.py"""


PROJECT_FILE_SUFFIXES = (".hlmproj", ".json")  # engine.project.PROJECT_SUFFIX, and plain JSON


def project_argument(argv: list[str]) -> str | None:
    """The project file of ``main.py PROJECT_FILE`` (one argument naming a project or JSON file), else None."""
    if len(argv) != 1 or argv[0].startswith("-"):
        return None
    candidate = argv[0]
    if Path(candidate).suffix.lower() in PROJECT_FILE_SUFFIXES:
        return candidate
    return None


def has_display() -> bool:
    """False on Linux without an X or Wayland display and no Qt platform chosen explicitly."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def launch(self_test: bool = False, project: str | None = None) -> int:
    """Open the window (with ``project`` opened in it) and run until it closes; returns the exit code.

    With ``self_test`` the window is created offscreen, the ``tutoring`` preset is simulated and
    fitted through the worker thread, and the result tables are checked: 0 if all went well.
    """
    if self_test:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before the QApplication exists
    elif not has_display():
        print(NO_DISPLAY_HELP, file=sys.stderr)
        return 1
    else:
        from gui.platform_check import check_xcb_libraries

        problem = check_xcb_libraries()  # before Qt, which would abort with a misleading message
        if problem:
            print(problem, file=sys.stderr)
            return 2

    from PySide6.QtWidgets import QApplication

    from engine import __version__
    from gui.exception_handler import configure_logging, install_exception_hook

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("HLM Explorer")
    app.setOrganizationName("HLM Explorer")
    app.setApplicationVersion(__version__)
    icon = Path(__file__).resolve().parents[1] / "resources" / "icon.png"
    if icon.is_file():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    if self_test:
        return run_self_test(app)

    log_path = configure_logging()
    install_exception_hook(log_path)
    if os.environ.get("HLM_QUIT_WHEN_SHOWN") == "1":  # bench/bench_startup.py: time to a visible window
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, app.closeAllWindows)  # runs once the event loop has shown the window
    from gui.main_window import MainWindow

    window = open_window(MainWindow(), project)
    freeze_startup_objects()
    preload_after_shown(window)
    return app.exec()


def preload_after_shown(window) -> None:
    """Once the event loop has shown ``window``, import the heavy engine modules (the mixed fit,
    the panel estimators: about a second) on the UI thread, so the window appears first."""
    from PySide6.QtCore import QTimer

    def preload() -> None:
        if window.isVisible():  # not when the window was closed at once (HLM_QUIT_WHEN_SHOWN)
            from gui.jobs import preload_engine

            preload_engine()
            gc.freeze()  # the modules just loaded live as long as the program

    QTimer.singleShot(0, preload)


def open_window(window, project: str | None = None):
    """Show the window and open ``project`` in it (a file that cannot be read is reported in the window)."""
    window.show()
    if project is not None:
        window.open_project(project)
    return window


def freeze_startup_objects() -> None:
    """Exempt what start-up created (modules, classes, the widgets) from garbage collection.

    A full collection walks every tracked object; with Qt, pandas and the engine loaded that
    is about 100 ms, during which no thread runs Python: the window would stall at random
    moments of a fit. Objects made later are still collected.
    """
    gc.collect()
    gc.freeze()


def run_self_test(app) -> int:
    """Simulate and fit the tutoring preset in the real window, offscreen; print what failed."""
    from PySide6.QtCore import QEventLoop, QTimer

    from gui.main_window import MainWindow, isolated_settings

    with tempfile.TemporaryDirectory(prefix="hlm-self-test-") as folder:
        window = MainWindow(settings=isolated_settings(Path(folder) / "settings.ini"))
        window.show()
        freeze_startup_objects()
        failures: list[str] = []

        def wait_for_job(start) -> bool:
            loop = QEventLoop()
            outcome = {}
            runner = window.job_runner

            def finished(*_):
                outcome["ok"] = True
                loop.quit()

            def failed(_job, failure):
                outcome["error"] = failure.message
                loop.quit()

            runner.job_finished.connect(finished)
            runner.job_failed.connect(failed)
            runner.job_cancelled.connect(lambda _job: (outcome.setdefault("error", "cancelled"), loop.quit()))
            QTimer.singleShot(SELF_TEST_TIMEOUT_MS, lambda: (outcome.setdefault("error", "timed out"), loop.quit()))
            if start() is None:
                return False
            loop.exec()
            runner.job_finished.disconnect(finished)
            runner.job_failed.disconnect(failed)
            if "error" in outcome:
                failures.append(outcome["error"])
                return False
            return True

        try:
            if wait_for_job(lambda: window.simulate(window.design_view.design.copy(), window.design_view.seed())):
                rows = window.data_view.model.rowCount()
                if rows <= 0:
                    failures.append("the data table is empty after simulating")
                spec = window.model_view.spec
                if spec is None:
                    failures.append(f"no model was built from the data: {window.model_view.current_error()}")
                elif wait_for_job(lambda: window.fit(spec, ["mixed"])):
                    view = window.results_view
                    for name, table in (("fixed effects", view.fixed_table), ("random effects", view.random_table),
                                        ("groups", view.groups_table)):
                        if table.table_model().rowCount() == 0:
                            failures.append(f"the {name} table is empty after fitting")
                    if "Mixed-effects" not in view.report_text.toPlainText():
                        failures.append("the report is missing after fitting")
        finally:
            window.session.set_modified(False)
            window.close()
            window.shutdown()
            app.processEvents()

    if failures:
        print("HLM Explorer self-test FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print(f"HLM Explorer self-test passed: simulated {rows:,} rows and fitted the tutoring model.")
    return 0
