"""Outputs are written whole or not at all, never onto an input, and long writes show progress."""

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import engine.data_io as data_io
import main
from engine.atomic_write import PARTIAL_MARKER, write_text_atomically
from engine.data_io import read_data, truth_sidecar_path, write_data
from engine.errors import UserInputError
from engine.presets import get_preset
from engine.project import Project
from engine.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if PARTIAL_MARKER in p.name)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def simulated():
    return simulate(get_preset("tutoring").with_units("dist_id", 2), seed=5)


# ----- interrupted writes --------------------------------------------------------------------------
@pytest.mark.parametrize("extension", [".csv", ".parquet"])
@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_data_write_keeps_the_previous_file(tmp_path, monkeypatch, simulated, extension,
                                                           interruption):
    path = tmp_path / f"data{extension}"
    old = pd.DataFrame({"a": [1, 2, 3]})
    write_data(old, path)
    monkeypatch.setattr(data_io, "_WRITE_PIECE_ROWS", 100)  # many pieces: interrupt in the middle

    def interrupt_halfway(fraction):
        if fraction >= 0.5:
            raise interruption()

    with pytest.raises(interruption):
        write_data(simulated.frame, path, truth=simulated.truth, progress=interrupt_halfway)
    pd.testing.assert_frame_equal(read_data(path).frame, old)
    assert leftovers(tmp_path) == []
    assert not truth_sidecar_path(path).exists()


def test_progress_reaches_the_end_and_the_file_is_whole(tmp_path, monkeypatch, simulated):
    monkeypatch.setattr(data_io, "_WRITE_PIECE_ROWS", 300)
    seen = []
    path = tmp_path / "data.csv"
    write_data(simulated.frame, path, truth=simulated.truth, progress=seen.append)
    pieces = -(-len(simulated.frame) // 300)
    assert len(seen) == pieces + 1 and seen == sorted(seen) and seen[-1] == 1.0
    back = read_data(path)
    pd.testing.assert_frame_equal(back.frame, simulated.frame, check_dtype=False)
    assert back.truth == simulated.truth
    assert leftovers(tmp_path) == []


def test_an_interrupted_text_write_keeps_the_previous_project(tmp_path, monkeypatch):
    path = tmp_path / "study.hlmproj"
    Project(design=get_preset("tutoring"), seed=3).save(path)
    before = path.read_text()

    real_write_text = Path.write_text

    def write_half_then_interrupt(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", write_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        Project(design=get_preset("growth"), seed=4).save(path)
    monkeypatch.undo()
    assert path.read_text() == before and Project.load(path).seed == 3
    assert leftovers(tmp_path) == []


def test_an_atomic_write_keeps_the_files_permissions(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    write_text_atomically(path, '{"a": 1}')
    assert path.stat().st_mode & 0o777 == 0o644 and json.loads(path.read_text()) == {"a": 1}


SLOW_SIMULATE = """
import sys, time
import engine.data_io as data_io
data_io._WRITE_PIECE_ROWS = 50
real_write_csv = data_io._write_csv
def slow_write_csv(frame, path, progress):
    def slowly(fraction):
        time.sleep(0.05)
        progress(fraction)
    real_write_csv(frame, path, slowly)
data_io._write_csv = slow_write_csv
import main
sys.exit(main.main(sys.argv[1:]))
"""


def test_a_killed_simulate_leaves_no_file_under_the_final_name(tmp_path):
    out = tmp_path / "big.csv"
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_SIMULATE, "simulate", "--preset", "tutoring", "--units", "dist_id=2",
         "--seed", "1", "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not leftovers(tmp_path) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert leftovers(tmp_path), "the write never started"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert not out.exists() and not truth_sidecar_path(out).exists()
    assert leftovers(tmp_path) == []


def test_simulate_shows_progress_only_on_a_terminal(tmp_path, monkeypatch, capsys):
    out = tmp_path / "data.csv"
    assert main.main(["simulate", "--preset", "tutoring", "--seed", "2", "--out", str(out)]) == 0
    assert "writing" not in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main.main(["simulate", "--preset", "tutoring", "--seed", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "simulating about 8,000 rows" in err and f"\rwriting {out}: 100%" in err
    assert len(read_data(out).frame) == 8000


# ----- outputs that would destroy an input ------------------------------------------------------------
def test_fit_refuses_to_write_its_json_over_the_data(tmp_path, capsys):
    path = tmp_path / "data.csv"
    simulate(get_preset("tutoring").with_units("dist_id", 2), seed=1).frame.to_csv(path, index=False)
    before = path.read_bytes()
    assert main.main(["fit", str(path), "--model", "perform tutoring || school_id:", "--json", str(path)]) == 2
    assert "--json" in one_line_error(capsys)
    assert path.read_bytes() == before
    # The same file by another spelling is caught too.
    other_spelling = tmp_path / "sub" / ".." / "data.csv"
    (tmp_path / "sub").mkdir()
    assert main.main(["check", str(path), "--json", str(other_spelling)]) == 2
    assert "would destroy it" in one_line_error(capsys)
    assert path.read_bytes() == before


@pytest.mark.parametrize("make_argv, message", [
    (lambda d: ["--out", f"{d}/x.csv", "--save-design", f"{d}/x.csv"], "--save-design .* is also --out"),
    (lambda d: ["--out", f"{d}/x.csv", "--save-design", f"{d}/x.csv.truth.json"], "--out's truth file .* is also --save-design"),
    (lambda d: ["--design", f"{d}/design.json", "--save-design", f"{d}/design.json"], "is also the input --design"),
    (lambda d: ["--design", f"{d}/design.json", "--out", f"{d}/design.json"], "unknown format"),
])
def test_simulate_refuses_outputs_onto_inputs_or_each_other(tmp_path, capsys, make_argv, message):
    get_preset("tutoring").save(tmp_path / "design.json")
    before = (tmp_path / "design.json").read_text()
    assert main.main(["simulate", *make_argv(tmp_path)]) == 2
    assert re.search(message, one_line_error(capsys))
    assert (tmp_path / "design.json").read_text() == before
    assert not (tmp_path / "x.csv").exists()


def test_outputs_are_checked_before_the_work(tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text("id,y\n1,2\n2,3\n3,4\n")
    assert main.main(["fit", str(data), "--model", "y || id:", "--json", str(tmp_path / "no" / "r.json")]) == 2
    assert "--json" in one_line_error(capsys)
    assert main.main(["fit", str(data), "--model", "y || id:", "--json", str(tmp_path)]) == 2
    assert "is a folder" in one_line_error(capsys)


# ----- Stata names ------------------------------------------------------------------------------------
def test_dta_output_refuses_names_stata_would_truncate(tmp_path):
    long_name = "mean_socioeconomic_status_of_the_school"  # 39 characters
    frame = pd.DataFrame({"school": [1, 2], long_name: [0.5, 0.25]})
    with pytest.raises(UserInputError, match=f"column '{long_name}' has 39 characters and Stata allows 32"):
        write_data(frame, tmp_path / "data.dta")
    with pytest.raises(UserInputError, match="column 'two words' is not a Stata variable name"):
        write_data(pd.DataFrame({"two words": [1]}), tmp_path / "data.dta")
    assert list(tmp_path.iterdir()) == []
    exact = pd.DataFrame({"a" * 32: [1.5, 2.5]})  # 32 characters is allowed, and kept whole
    write_data(exact, tmp_path / "ok.dta")
    assert list(read_data(tmp_path / "ok.dta").frame.columns) == ["a" * 32]


def test_a_named_pipe_is_written_into_not_replaced(tmp_path):
    """A device or a pipe (/dev/null, /dev/stdout, a FIFO) is written in place: renaming a finished
    temporary file over it would replace the device itself with a plain file (as root) or fail with
    'permission denied' (otherwise)."""
    import stat
    import threading

    pipe = tmp_path / "results.json"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()), daemon=True)
    reader.start()
    write_text_atomically(pipe, '{"loglik": -1.5}')
    reader.join(timeout=10)
    assert received == ['{"loglik": -1.5}']
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert not [p for p in os.listdir(tmp_path) if PARTIAL_MARKER in p]


def test_fit_json_to_dev_null_leaves_the_device(tmp_path):
    import stat

    if not stat.S_ISCHR(os.stat(os.devnull).st_mode):
        pytest.skip(f"{os.devnull} is not a character device here")
    assert main.main(["fit", "tests/data/hsb.csv", "--model", "mathach ses || school:", "--json", os.devnull,
                      "--quiet"]) in (0, None)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
