"""The job runner: results, user errors, cooperative cancellation, one job at a time, shutdown."""

import threading
import time

import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from engine.errors import UserInputError
from gui.worker import Job, JobRunner


@pytest.fixture
def runner(qtbot):
    runner = JobRunner("test-worker")
    yield runner
    assert runner.shutdown(10_000)


def wait_until_stopped(context, limit=10.0):
    """A job that runs until asked to stop, polling like the engine does."""
    started = time.monotonic()
    while not context.should_stop():
        if time.monotonic() - started > limit:
            return "never stopped"
        time.sleep(0.005)
    context.check()


def test_result_arrives_on_the_ui_thread(qtbot, runner):
    seen = {}

    def run(context):
        seen["thread"] = threading.current_thread()
        return 42

    with qtbot.waitSignal(runner.job_finished, timeout=5000) as blocker:
        runner.start(Job("answer", run))
    job, result = blocker.args
    assert result == 42 and job.label == "answer"
    assert seen["thread"] is not threading.main_thread()
    assert not runner.is_busy


def test_user_error_keeps_the_engine_message(qtbot, runner):
    def run(context):
        raise UserInputError("level school_id: sd must be >= 0, got -1")

    with qtbot.waitSignal(runner.job_failed, timeout=5000) as blocker:
        runner.start(Job("bad", run))
    failure = blocker.args[1]
    assert failure.message == "level school_id: sd must be >= 0, got -1"
    assert failure.is_user_error


def test_unexpected_error_is_reported_with_details(qtbot, runner):
    def run(context):
        return 1 / 0

    with qtbot.waitSignal(runner.job_failed, timeout=5000) as blocker:
        runner.start(Job("broken", run))
    failure = blocker.args[1]
    assert "ZeroDivisionError" in failure.message and "Traceback" in failure.details


def test_cancel_stops_a_running_job(qtbot, runner):
    with qtbot.waitSignal(runner.job_started, timeout=5000):
        runner.start(Job("endless", wait_until_stopped))
    with qtbot.waitSignal(runner.job_cancelled, timeout=5000):
        runner.cancel()
    assert not runner.is_busy
    with qtbot.waitSignal(runner.job_finished, timeout=5000) as blocker:
        runner.start(Job("after", lambda context: "still works"))
    assert blocker.args[1] == "still works"


def test_a_new_job_supersedes_the_running_one(qtbot, runner):
    finished = []
    runner.job_finished.connect(lambda job, result: finished.append(job.label))
    runner.start(Job("old", wait_until_stopped))
    with qtbot.waitSignal(runner.job_finished, timeout=5000):
        runner.start(Job("new", lambda context: "new result"))
    qtbot.wait(50)
    assert finished == ["new"]


def test_progress_reaches_the_ui_and_is_throttled(qtbot, runner):
    messages = []
    runner.progress_changed.connect(lambda job, message, fraction, detail: messages.append(message))

    def run(context):
        for step in range(1000):
            context.report(f"step {step}", step / 1000)
        context.report("last", 1.0, force=True)
        return None

    with qtbot.waitSignal(runner.job_finished, timeout=5000):
        runner.start(Job("chatty", run))
    assert messages[-1] == "last"
    assert len(messages) < 100


def test_shutdown_cancels_and_stops_the_thread(qtbot):
    runner = JobRunner("short-lived")
    runner.start(Job("endless", wait_until_stopped))
    qtbot.wait(20)
    started = time.monotonic()
    assert runner.shutdown(10_000)
    assert time.monotonic() - started < 5
    with pytest.raises(RuntimeError):
        runner.start(Job("too late", lambda context: None))
