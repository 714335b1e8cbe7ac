"""Data files: what is written is read back with the same numbers and the truth; clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import main
from engine.data_io import read_data, truth_sidecar_path, write_data
from engine.design import Design
from engine.errors import UserInputError
from engine.presets import get_preset
from engine.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]


def _assert_same_numbers(read: pd.DataFrame, written: pd.DataFrame) -> None:
    """Same columns in the same order, and every value equal (dtypes may widen)."""
    assert list(read.columns) == list(written.columns)
    assert len(read) == len(written)
    for name in written.columns:
        np.testing.assert_array_equal(read[name].to_numpy(), written[name].to_numpy(), err_msg=name)


@pytest.mark.parametrize("extension", ["csv", "dta", "sav", "parquet"])
def test_round_trip_with_truth(tmp_path, extension):
    data = simulate(get_preset("growth"), seed=3)
    path = tmp_path / f"growth.{extension}"
    written = write_data(data.frame, path, data.truth)
    assert written[0] == path
    dataset = read_data(path)
    _assert_same_numbers(dataset.frame, data.frame)
    assert dataset.truth == data.truth
    assert dataset.truth.seed == 3
    assert dataset.source == str(path)
    if extension == "parquet":
        assert written == [path]  # the truth is inside the file
    else:
        assert written == [path, truth_sidecar_path(path)]


@pytest.mark.parametrize("extension", ["csv", "dta", "parquet"])
def test_simulate_command_output_reads_back_with_the_same_numbers(tmp_path, capsys, extension):
    out = tmp_path / f"data.{extension}"
    code = main.main(["simulate", "--preset", "tutoring", "--units", "dist_id=3", "--seed", "7", "--out", str(out)])
    assert code == 0
    assert "simulated 4,800 rows" in capsys.readouterr().out
    expected = simulate(get_preset("tutoring").with_units("dist_id", 3), seed=7)
    dataset = read_data(out)
    _assert_same_numbers(dataset.frame, expected.frame)
    assert dataset.truth == expected.truth
    assert dataset.truth.random["dist_id:sd(_cons)"] == 2.0


def test_stata_labels_round_trip(tmp_path):
    frame = pd.DataFrame({"school_id": np.array([1, 1, 2], dtype=np.int32), "sector": np.array([0, 1, 1], np.int8),
                          "score": [1.5, 2.25, -3.0]})
    path = tmp_path / "labelled.dta"
    write_data(frame, path, value_labels={"sector": {0: "public", 1: "catholic"}},
               variable_labels={"score": "Math achievement"})
    dataset = read_data(path)
    _assert_same_numbers(dataset.frame, frame)
    assert dataset.value_labels == {"sector": {0: "public", 1: "catholic"}}
    assert dataset.variable_labels == {"score": "Math achievement"}
    assert dataset.truth is None
    assert dataset.frame["school_id"].dtype.kind == "i"


def test_spss_integers_stay_integers(tmp_path):
    frame = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.0, 2.0]})
    path = tmp_path / "small.sav"
    write_data(frame, path)
    read = read_data(path).frame
    assert read["id"].dtype.kind == "i"
    _assert_same_numbers(read, frame)


@pytest.mark.parametrize("separator, extension", [("\t", "txt"), (";", "csv"), (" ", "txt")])
def test_text_separators(tmp_path, separator, extension):
    path = tmp_path / f"data.{extension}"
    path.write_text(separator.join(["id", "y"]) + "\n" + separator.join(["1", "2.5"]) + "\n"
                    + separator.join(["2", "-1"]) + "\n")
    frame = read_data(path).frame
    assert list(frame.columns) == ["id", "y"]
    assert frame["y"].tolist() == [2.5, -1.0]


def test_latin1_text(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,r\u00e9gion\n1,2\n".encode("latin-1"))
    assert list(read_data(path).frame.columns) == ["id", "r\u00e9gion"]


def test_excel(tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "y": [0.25, 3.5]})
    path = tmp_path / "data.xlsx"
    frame.to_excel(path, index=False)
    _assert_same_numbers(read_data(path).frame, frame)


def test_stale_truth_sidecar_is_removed(tmp_path):
    data = simulate(get_preset("cluster_trial"), seed=1)
    path = tmp_path / "data.csv"
    write_data(data.frame, path, data.truth)
    assert truth_sidecar_path(path).exists()
    write_data(data.frame.head(10), path)  # other data, no truth
    assert not truth_sidecar_path(path).exists()
    assert read_data(path).truth is None


def _write_bytes(content: bytes, name: str):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(content)
        return path
    return make


@pytest.mark.parametrize("make, message", [
    (lambda tmp_path: tmp_path / "missing.csv", "missing.csv: no such file"),
    (_write_bytes(b"a,b\n1,2\n", "data.foo"), "data.foo: unknown file type '.foo'"),
    (_write_bytes(b"", "empty.csv"), "empty.csv: the file is empty"),
    (_write_bytes(b"a,b\n", "header.csv"), "header.csv: the file holds no data rows"),
    (_write_bytes(b"not a parquet file", "bad.parquet"), "cannot read .*bad.parquet"),
    (_write_bytes(b"not a stata file", "bad.dta"), "cannot read .*bad.dta"),
    (_write_bytes(b"a,b\n1,2\n", "data.csv"), None),
])
def test_read_errors_are_one_line_naming_the_file(tmp_path, make, message):
    path = make(tmp_path)
    if message is None:  # a good file next to a corrupt truth sidecar
        truth_sidecar_path(path).write_text("{broken")
        message = "data.csv.truth.json: not a readable truth file"
    with pytest.raises(UserInputError, match=message) as raised:
        read_data(path)
    assert "\n" not in str(raised.value)


def test_write_errors(tmp_path):
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(UserInputError, match="cannot write .xlsx"):
        write_data(frame, tmp_path / "out.xlsx")
    with pytest.raises(UserInputError, match="does not exist"):
        write_data(frame, tmp_path / "no" / "out.csv")


def test_describe_and_save_design(tmp_path, capsys):
    design_path = tmp_path / "design.json"
    code = main.main(["simulate", "--preset", "growth", "--units", "school_id=10", "--describe",
                      "--save-design", str(design_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Expected rows: 1,125" in printed  # 10 x 25 students x 5 waves x 0.9
    assert "ICC" in printed
    saved = Design.load(design_path)
    assert saved.levels[0].units.n == 10
    assert json.loads(design_path.read_text())["format_version"] == 1
    out = tmp_path / "from_file.parquet"
    assert main.main(["simulate", "--design", str(design_path), "--seed", "1", "--out", str(out)]) == 0
    assert len(read_data(out).frame) == len(simulate(saved, 1).frame)


@pytest.mark.parametrize("argv, message", [
    (["--preset", "nope", "--describe"], "unknown preset 'nope'; choose one of tutoring"),
    (["--units", "class_id=3", "--describe"], "no level 'class_id'"),
    (["--units", "dist_id", "--describe"], "write LEVEL=N"),
    (["--units", "dist_id=0", "--describe"], "level dist_id: units must be >= 1, got 0"),
    (["--out", "data.xlsx"], "unknown format '.xlsx'"),
    ([], "nothing to do"),
])
def test_simulate_command_errors(capsys, argv, message):
    assert main.main(["simulate", *argv]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert error.count("\n") == 1


def test_simulate_command_in_a_subprocess(tmp_path):
    out = tmp_path / "seed.csv"
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "simulate", "--preset", "tutoring", "--seed", "7",
                           "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns[:7]) == ["dist_id", "school_id", "teach_id", "student_id", "semester", "tutoring",
                                       "perform"]
    assert len(frame) == 8000
    failed = subprocess.run([sys.executable, str(ROOT / "main.py"), "simulate", "--design", "missing.json",
                             "--describe"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: cannot read design file missing.json")


def test_reads_a_parquet_file_that_pyarrow_wrote_with_its_truth():
    """Files written before Parquet went through fastparquet (pyarrow, schema metadata) still read:
    tests/data/tutoring_pyarrow.parquet was written by the pyarrow writer from this simulation."""
    expected = simulate(get_preset("tutoring").with_units("dist_id", 2), seed=11)
    dataset = read_data(ROOT / "tests" / "data" / "tutoring_pyarrow.parquet")
    _assert_same_numbers(dataset.frame, expected.frame)
    assert (dataset.truth.fixed, dataset.truth.random, dataset.truth.seed) == \
        (expected.truth.fixed, expected.truth.random, 11)
    # The design it carries predates later design fields; read back, it is the same design.
    from engine.design import Design

    assert Design.from_dict(dataset.truth.design).to_dict() == expected.truth.design


def test_parquet_written_in_pieces_keeps_rows_types_text_and_truth(tmp_path, monkeypatch):
    import engine.data_io as data_io

    monkeypatch.setattr(data_io, "_WRITE_PIECE_ROWS", 4)  # 10 rows: three row groups, two appended
    data = simulate(get_preset("growth"), seed=5)
    frame = pd.DataFrame({"id": np.arange(10, dtype="int32"), "y": np.linspace(-1.5, 2.25, 10) / 3,
                          "name": [f"s{i % 3}" for i in range(10)],
                          "group": pd.Categorical(["a", "b"] * 5)})
    fractions = []
    path = tmp_path / "pieces.parquet"
    write_data(frame, path, data.truth, progress=fractions.append)
    dataset = read_data(path)
    _assert_same_numbers(dataset.frame, frame)
    assert dataset.frame["id"].dtype == np.int32
    assert dataset.frame["name"].tolist() == frame["name"].tolist()
    assert pd.api.types.is_string_dtype(dataset.frame["name"])
    assert list(dataset.frame["group"].cat.categories) == ["a", "b"]
    assert dataset.truth == data.truth
    assert fractions == [0.4, 0.8, 1.0, 1.0]


def test_csv_written_in_pieces_has_one_header_and_exact_floats(tmp_path, monkeypatch):
    import engine.data_io as data_io

    monkeypatch.setattr(data_io, "_WRITE_PIECE_ROWS", 3)
    frame = pd.DataFrame({"x": np.arange(7), "y": np.random.default_rng(1).normal(size=7), "t": list("abcdefg")})
    path = tmp_path / "pieces.csv"
    write_data(frame, path)
    assert path.read_text(encoding="utf-8").count("x,y,t") == 1
    back = read_data(path).frame
    np.testing.assert_array_equal(back["y"].to_numpy(), frame["y"].to_numpy())  # round-trip precision
    assert back["t"].tolist() == list("abcdefg")
