"""Shared helpers of the GUI tests (imported by the tests/test_gui_*.py modules; holds no tests).

Every window made here uses settings of its own (an .ini file in the test's tmp_path) and has
its worker threads stopped when the test ends.
"""

from __future__ import annotations

import os

# Before any QApplication exists (pytest-qt makes one for the session, lazily).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

JOB_TIMEOUT_MS = 60_000


@pytest.fixture
def main_window(qtbot, tmp_path):
    from gui.main_window import MainWindow, isolated_settings

    window = MainWindow(settings=isolated_settings(tmp_path / "settings.ini"))
    window.resize(1280, 820)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.session.set_modified(False)
    window.shutdown()
    window.close()
    # Delete the window now rather than at the end of the session: fewer live objects for the
    # garbage collector to walk in later tests.
    from PySide6.QtCore import QCoreApplication, QEvent

    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def run_job(qtbot, window, start, timeout: int = JOB_TIMEOUT_MS):
    """Call ``start`` (which starts a job on the window's runner) inside waitSignal, so a fast
    job cannot finish unseen, and return the job's result. A failed job fails the test with the
    message the user would see."""
    runner = window.job_runner
    results, failures = [], []

    def finished(_job, result):
        results.append(result)

    def failed(_job, failure):
        failures.append(failure.message)

    runner.job_finished.connect(finished)
    runner.job_failed.connect(failed)
    try:
        # busy_changed(False) comes when the job has ended, whichever way.
        with qtbot.waitSignal(runner.busy_changed, timeout=timeout, check_params_cb=lambda busy: not busy):
            start()
    finally:
        runner.job_finished.disconnect(finished)
        runner.job_failed.disconnect(failed)
    if failures:
        pytest.fail(f"job failed: {failures[0]}")
    assert results, "the job ended without a result (cancelled?)"
    return results[-1]


def wait_for_nesting_check(qtbot, window, timeout: int = 10_000):
    """Wait until the model tab's nesting check has answered for its current level order."""
    view = window.model_view

    def done():
        check = view.last_nesting_check
        from PySide6.QtCore import Qt

        order = [view.level_list.item(i).text() for i in range(view.level_list.count())
                 if view.level_list.item(i).checkState() == Qt.CheckState.Checked]
        return check is not None and check.level_names == order and not view.nesting_check_pending

    qtbot.waitUntil(done, timeout=timeout)
    return view.last_nesting_check
