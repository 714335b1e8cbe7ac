"""Garbage collection stays on the UI thread while jobs run (gui.main_thread_gc): a collection on a
worker thread that reached a Qt object deadlocked the window once."""

import gc
import time
import weakref

from gui.worker import Job, JobRunner


class _Node:
    pass


def test_jobs_run_without_automatic_collection_and_the_ui_thread_collects_their_cycles(qtbot):
    # A job an earlier test left running keeps automatic collection off until it ends (as it should):
    # start from the state with no job running.
    qtbot.waitUntil(gc.isenabled, timeout=30_000)
    runner = JobRunner("gc-test")
    seen = {}

    def run(context):
        seen["enabled"] = gc.isenabled()
        node = _Node()
        node.itself = node  # a cycle: only the cyclic collector frees it
        alive = weakref.ref(node)
        del node
        deadline = time.monotonic() + 10
        while alive() is not None and time.monotonic() < deadline:
            _ = [[] for _ in range(2000)]  # allocations push the counts past the threshold
            time.sleep(0.01)
        seen["collected"] = alive() is None
        seen["still_off"] = not gc.isenabled()
        return None

    try:
        with qtbot.waitSignal(runner.job_finished, timeout=20000):
            runner.start(Job("gc", run))
        assert seen == {"enabled": False, "collected": True, "still_off": True}
        qtbot.waitUntil(gc.isenabled, timeout=2000)  # switched back on once no job runs
    finally:
        runner.shutdown()
        gc.enable()
