"""Monte Carlo under faults: wrong scheduler addresses, too many workers, Ctrl-C, SIGTERM and a killed
parent, and outputs checked before a study starts."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

import engine.montecarlo.runner as runner
import main
from engine.errors import UserInputError
from engine.montecarlo import Study, run_study
from engine.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
MODEL = "perform tutoring || teach_id:"
TINY_UNITS = ["--units", "dist_id=2", "--units", "school_id=2", "--units", "teach_id=2", "--units", "student_id=3"]


def tiny_study(reps: int = 2) -> Study:
    design = get_preset("tutoring")
    for level, n in (("dist_id", 2), ("school_id", 2), ("teach_id", 2), ("student_id", 3)):
        design = design.with_units(level, n)
    return Study(design, [MODEL], reps=reps, seed=1)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ----- scheduler addresses that are not a Dask scheduler ---------------------------------------------
@contextmanager
def local_service(behaviour: str):
    """A TCP service on 127.0.0.1 that talks first (a banner), or waits for a request (HTTP)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    stop = threading.Event()
    connections = []

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            connections.append(connection)
            if behaviour == "banner":
                connection.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
            elif behaviour == "garbage":
                connection.sendall(b"%%% this is no scheduler %%%\n" * 4)
            # "http": says nothing until it gets a request, as web servers do.

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in connections:
            connection.close()
        server.close()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.parametrize("behaviour, message", [
    ("banner", r"is not a Dask scheduler: the service there sent 'SSH-2.0-OpenSSH_'"),
    ("garbage", r"is not a Dask scheduler: the service there sent '%%% this is no s'"),
    ("http", r"is not a Dask scheduler: the service there did not greet within 1 s"),
])
def test_a_service_that_is_not_a_scheduler_fails_in_one_line(monkeypatch, capsys, behaviour, message):
    monkeypatch.setattr(runner, "SCHEDULER_PROBE_SECONDS", 1.0)
    with local_service(behaviour) as address:
        with pytest.raises(UserInputError, match=message):
            run_study(tiny_study(), scheduler=address)
        code = main.main(["montecarlo", "--preset", "tutoring", "--models", MODEL, "--reps", "2",
                          "--scheduler", address])
    assert code == 2
    assert re.search(message, one_line_error(capsys))


@pytest.mark.parametrize("make_address, message", [
    (lambda: f"tcp://127.0.0.1:{closed_port()}", "nothing listens on port .* \\(connection refused\\)"),
    (lambda: f"127.0.0.1:{closed_port()}", "nothing listens on port"),
    (lambda: "garbage text", "scheduler address 'garbage text': not a Dask address; write tcp://HOST:PORT"),
    (lambda: "tcp://127.0.0.1", "not a Dask address"),
    (lambda: "http://127.0.0.1:8787/status", "starts with tcp://, not http://"),
])
def test_bad_scheduler_addresses_fail_in_one_line(capsys, make_address, message):
    address = make_address()
    with pytest.raises(UserInputError, match=message):
        run_study(tiny_study(), scheduler=address)
    assert main.main(["montecarlo", "--preset", "tutoring", "--models", MODEL, "--reps", "2",
                      "--scheduler", address]) == 2
    assert re.search(message, one_line_error(capsys))


def test_a_real_scheduler_passes_the_probe():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None,
                                  protocol="tcp") as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        runner.probe_scheduler(cluster.scheduler_address)  # no error


# ----- workers and outputs ------------------------------------------------------------------------
def test_more_workers_than_cores_are_capped_with_a_note(tmp_path, capsys):
    summary = tmp_path / "summary.json"
    code = main.main(["montecarlo", "--preset", "tutoring", *TINY_UNITS, "--models", MODEL, "--reps", "2",
                      "--seed", "3", "--workers", "999", "--json", str(summary), "--quiet"])
    assert code == 0
    cores = runner.local_cores()
    assert f"note: --workers 999 is more than the {cores} core(s) here; using {cores}" in capsys.readouterr().err
    assert json.loads(summary.read_text())["workers"] == cores


@pytest.mark.parametrize("make_json, message", [
    (lambda d: d / "missing" / "summary.json", "--json .*: the folder .* does not exist"),
    (lambda d: d, "--json .*: is a folder"),
    (lambda d: d / "records.csv", "--records .* is also --json: give each output its own file"),
    (lambda d: d / "design.json", "--json .* is also the input --design"),
])
def test_the_json_destination_is_checked_before_the_study(tmp_path, capsys, make_json, message):
    get_preset("tutoring").save(tmp_path / "design.json")
    before = (tmp_path / "design.json").read_text()
    code = main.main(["montecarlo", "--design", str(tmp_path / "design.json"), "--models", MODEL, "--reps", "2",
                      "--json", str(make_json(tmp_path)), "--records", str(tmp_path / "records.csv")])
    assert code == 2
    err = one_line_error(capsys)  # nothing else: the study did not start
    assert re.search(message, err)
    assert (tmp_path / "design.json").read_text() == before


# ----- killing the parent ---------------------------------------------------------------------------
def start_study_on_a_terminal(tmp_path, reps: int = 400):
    """Run ``montecarlo`` in its own session with stderr on a pseudo-terminal (so it shows progress);
    return the process, the terminal's reading end and a function that waits for finished
    replications."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "montecarlo", "--preset", "tutoring", *TINY_UNITS, "--models",
         MODEL, "--reps", str(reps), "--seed", "1", "--workers", "2", "--json", str(tmp_path / "summary.json")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=slave,
        start_new_session=True)
    os.close(slave)
    seen = bytearray()

    def read_terminal(timeout: float) -> None:
        ready, _, _ = select.select([master], [], [], timeout)
        if ready:
            try:
                seen.extend(os.read(master, 65536))
            except OSError:  # the other end closed
                pass

    def wait_for_replications() -> int:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            read_terminal(0.2)
            done = [int(n) for n in re.findall(rb"(\d+)/\d+ replications", bytes(seen))]
            if done and max(done) > 0:
                return max(done)
        raise AssertionError(f"no replication finished: {bytes(seen)!r}")

    def finish() -> str:
        drain = threading.Thread(target=lambda: [read_terminal(0.1) for _ in range(600) if process.poll() is None],
                                 daemon=True)
        drain.start()
        process.wait(timeout=120)
        drain.join(timeout=10)
        read_terminal(0.5)
        os.close(master)
        return bytes(seen).decode(errors="replace")

    return process, wait_for_replications, finish


def workers_of(process) -> list[psutil.Process]:
    children = psutil.Process(process.pid).children(recursive=True)
    assert len(children) >= 2, children  # two workers (and multiprocessing's resource tracker)
    return children


def assert_all_gone(processes: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(processes, timeout=60)
    survivors = [(p.pid, " ".join(p.cmdline())) for p in alive]
    for process in alive:  # a failing test must not leave orphans behind either
        process.kill()
    assert survivors == []


def test_ctrl_c_stops_the_workers_and_writes_the_replications_done(tmp_path):
    process, wait_for_replications, finish = start_study_on_a_terminal(tmp_path)
    try:
        wait_for_replications()
        workers = workers_of(process)
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground group
        err = finish()
        out = process.stdout.read().decode()
    finally:
        process.kill()
    assert_all_gone(workers)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] and summary["stopped"]
    assert 0 < summary["completed"] < summary["total"] == 400
    assert re.search(rf"note: interrupted: the study stopped after {summary['completed']} of 400 replications", err)
    assert f"{summary['completed']} replications in" in out
    # The summary is of exactly the replications done: every row counts them (no failed fits here).
    assert {row["n"] + row["failed"] for row in summary["rows"]} == {summary["completed"]}


@pytest.mark.parametrize("signal_number, code", [(signal.SIGTERM, 128 + signal.SIGTERM),
                                                 (signal.SIGKILL, -signal.SIGKILL)])
def test_killing_the_parent_stops_its_workers(tmp_path, signal_number, code):
    process, wait_for_replications, finish = start_study_on_a_terminal(tmp_path)
    try:
        wait_for_replications()
        workers = workers_of(process)
        os.kill(process.pid, signal_number)  # the parent only, as `kill PID` does
        err = finish()
    finally:
        process.kill()
    assert_all_gone(workers)
    assert process.returncode == code, err
    assert not (tmp_path / "summary.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial file either


def test_a_dask_that_cannot_load_is_told_apart_from_one_not_installed(monkeypatch):
    # The packaged program takes OpenSSL from the system: without it, distributed is installed but
    # fails to import, which must not read as "not installed".
    import builtins

    from engine.errors import UserInputError
    from engine.montecarlo.runner import _dask_executor

    real_import = builtins.__import__

    def failing(missing_name):
        def fake_import(name, *args, **kwargs):
            if name == "distributed":
                raise ImportError(f"No module named {missing_name!r}" if missing_name == "distributed"
                                  else "libssl.so.3: cannot open shared object file", name=missing_name)
            return real_import(name, *args, **kwargs)
        return fake_import

    monkeypatch.setattr(builtins, "__import__", failing("distributed"))
    with pytest.raises(UserInputError, match="dask.distributed is not installed$"):
        _dask_executor("tcp://127.0.0.1:1")
    monkeypatch.setattr(builtins, "__import__", failing("_ssl"))
    with pytest.raises(UserInputError, match=r"cannot be loaded \(libssl\.so\.3: cannot open shared object file\)"):
        _dask_executor("tcp://127.0.0.1:1")
