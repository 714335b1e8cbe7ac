"""Hostile data files and options: each is read right or refused with one line naming the problem."""

import gzip
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

import main
from engine.centering import Centering, add_centered_columns
from engine.data_io import read_data
from engine.design_matrix import first_non_numeric
from engine.errors import UserInputError
from engine.hierarchy_check import check_dataset
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def grouped_frame(ids) -> pd.DataFrame:
    """Five rows per id; y depends on x and on the group, so the group variance is clearly positive."""
    rng = np.random.default_rng(4)
    rows = []
    for position, group in enumerate(ids):
        effect = (-1.0, 0.5, 2.0, -0.2)[position % 4]
        for _ in range(5):
            x = rng.normal()
            rows.append((group, 1.0 + 0.8 * x + effect + rng.normal(scale=0.5), x))
    return pd.DataFrame(rows, columns=["school", "y", "x"])


def write_rows(path, frame: pd.DataFrame) -> None:
    """Write ids exactly as given (pandas would write huge Python ints as they are, too)."""
    lines = [",".join(frame.columns)] + [",".join(str(v) for v in row) for row in frame.itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n")


# ----- not a text file ---------------------------------------------------------------------------
def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sheet.xml", "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize("content, kind", [
    (gzip.compress(b"id,y\n1,2\n2,3\n"), "gzip-compressed"),
    (_zip_bytes(), "a zip archive"),
    (b"id,y\n1,2\x00\x00\x07\n", "binary data"),
    ("id,y\n1,2\n".encode("utf-16"), "UTF-16"),
])
def test_a_binary_or_compressed_csv_is_not_a_text_csv_file(tmp_path, capsys, content, kind):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(UserInputError, match=f"data.csv: not a text CSV file: .*{kind}"):
        read_data(path)
    assert main.main(["fit", str(path), "--model", "y || id:"]) == 2
    assert "not a text CSV file" in one_line_error(capsys)


# ----- separators and header -------------------------------------------------------------------------
def test_a_semicolon_inside_a_comma_header_is_part_of_a_name(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id,score;math,y\n1,2.5,3\n2,-1,4\n")
    frame = read_data(path).frame
    assert list(frame.columns) == ["id", "score;math", "y"]
    assert frame["score;math"].tolist() == [2.5, -1.0] and frame["y"].tolist() == [3, 4]


def test_a_semicolon_file_with_decimal_commas_in_names_splits_on_semicolons(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id;a,b;y\n1;2;3\n2;5;6\n")
    frame = read_data(path).frame
    assert list(frame.columns) == ["id", "a,b", "y"] and frame["y"].tolist() == [3, 6]


def test_duplicate_column_names_are_refused_naming_them(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_text("id,x,y,x\n1,2,3,4\n2,5,6,7\n")
    with pytest.raises(UserInputError, match="column name.* used more than once: 'x'"):
        read_data(path)
    assert main.main(["check", str(path)]) == 2
    assert "'x'" in one_line_error(capsys)


def test_a_truncated_last_line_is_reported_not_fitted(tmp_path, capsys):
    full = grouped_frame([1, 2, 3, 4])
    path = tmp_path / "data.csv"
    text = full.to_csv(index=False)
    path.write_text(text[: text.rindex(",")])  # cut inside the last row: two of three fields
    with pytest.raises(UserInputError, match="last line has 2 of the header's 3 fields.*truncated"):
        read_data(path)
    assert main.main(["fit", str(path), "--model", "y x || school:"]) == 2
    assert "truncated" in one_line_error(capsys)


def test_a_complete_file_without_a_final_newline_is_read_whole(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id,y\n1,2\n2,3")
    assert read_data(path).frame["y"].tolist() == [2, 3]


# ----- ids are labels ---------------------------------------------------------------------------------
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


@pytest.mark.parametrize("ids", [
    [INT64_MAX, INT64_MAX - 1, INT64_MAX - 2, INT64_MAX - 3],          # the top of int64
    [INT64_MIN, INT64_MIN + 1, 7, INT64_MAX],                          # both ends at once
    [2**64 - 1, 2**64 - 2, 2**64 - 3, 2**63],                          # beyond int64 (uint64)
    [10**25 + 1, 10**25 + 2, 10**25 + 3, 10**25 + 4],                  # beyond any integer type
])
def test_huge_integer_ids_stay_distinct_in_check_and_fit(tmp_path, capsys, ids):
    frame = grouped_frame(ids)
    path = tmp_path / "data.csv"
    write_rows(path, frame)
    dataset = read_data(path)
    report = check_dataset(dataset, ["school"])
    (level,) = report.levels
    assert (level.name, level.groups) == ("school", 4)
    # The same data with small ids: the fit must be identical, group for group.
    small = frame.assign(school=frame["school"].map({value: number for number, value in enumerate(ids, 1)}))
    spec = ModelSpec.parse("y x || school:, reml")
    expected = fit_mixed(small, spec)
    got = fit_mixed(dataset.frame, spec)
    assert got.loglik == pytest.approx(expected.loglik, abs=1e-9)
    assert main.main(["check", str(path), "--levels", "school"]) == 0
    assert "school                   4         4" in capsys.readouterr().out


def test_long_ids_with_a_missing_value_are_not_merged_by_float_rounding(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("school,y\n9007199254740993,1\n9007199254740992,2\n,3\n")
    column = read_data(path).frame["school"]
    assert column.iloc[0] != column.iloc[1]
    assert column.nunique() == 2 and column.isna().sum() == 1


# ----- options -------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["simulate", "--preset", "tutoring", "--seed", "-1", "--describe"],
    ["compare", "--preset", "tutoring", "--seed", "-1"],
    ["montecarlo", "--preset", "tutoring", "--models", "perform tutoring || teach_id:", "--reps", "2",
     "--seed", "-1"],
])
def test_a_negative_seed_is_one_clear_line(capsys, argv):
    assert main.main(argv) == 2
    assert "--seed -1: a seed must be a whole number >= 0" in one_line_error(capsys)


def test_simulate_refuses_a_negative_seed_in_the_engine_too():
    from engine.presets import get_preset
    from engine.simulate import simulate

    with pytest.raises(UserInputError, match="seed must be a whole number >= 0, got -1"):
        simulate(get_preset("tutoring"), -1)


# ----- "not numeric" shows the offending value ------------------------------------------------------
def test_not_numeric_messages_show_the_offending_value():
    column = pd.Series(["12", "13", "n/a", "14"], dtype=object)
    assert first_non_numeric(column) == "n/a"
    frame = pd.DataFrame({"school": [1, 1, 2, 2], "ses": column, "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(UserInputError, match="cannot centre 'ses': it is not numeric \\(e.g. 'n/a'\\)"):
        add_centered_columns(frame, [Centering.parse_center_option("ses_c=ses:grand")])


def test_duplicate_column_names_in_a_spreadsheet_are_refused_too(tmp_path):
    pytest.importorskip("openpyxl")
    path = tmp_path / "data.xlsx"
    pd.DataFrame([[1, 2, 3], [4, 5, 6]], columns=["id", "ses", "id2"]).rename(columns={"id2": "ses"}).to_excel(
        path, index=False)
    with pytest.raises(UserInputError, match="used more than once: 'ses'"):
        read_data(path)
