"""Real-world data files: what the reader hands the fit is what the file means, or one clear refusal."""

import numpy as np
import pandas as pd
import pytest

from engine.data_io import read_data
from engine.errors import UserInputError


def _frame():
    return pd.DataFrame({"g": [1, 1, 2, 2], "x": [0.5, 1.5, -1.0, 2.0], "y": [1.0, 2.0, 3.0, 4.0]})


def test_workbook_with_data_on_two_sheets_is_refused_naming_them(tmp_path):
    # Two waves laid out alike: reading only the first sheet would fit half the data silently.
    path = tmp_path / "waves.xlsx"
    with pd.ExcelWriter(path) as writer:
        _frame().to_excel(writer, sheet_name="wave1", index=False)
        (_frame() + 10).to_excel(writer, sheet_name="wave2", index=False)
    with pytest.raises(UserInputError, match=r"2 sheets with the same columns \('wave1', 'wave2'\)"):
        read_data(path)


def test_workbook_with_a_codebook_sheet_reads_the_data_sheet(tmp_path):
    # A second sheet of another layout (notes, a codebook) is not data of the same kind.
    path = tmp_path / "with_codebook.xlsx"
    with pd.ExcelWriter(path) as writer:
        _frame().to_excel(writer, sheet_name="data", index=False)
        pd.DataFrame({"variable": ["g", "y"], "meaning": ["school", "score"]}).to_excel(
            writer, sheet_name="codebook", index=False)
    np.testing.assert_array_equal(read_data(path).frame["y"].to_numpy(), [1.0, 2.0, 3.0, 4.0])


def test_workbook_with_one_filled_sheet_and_empty_sheets_is_read(tmp_path):
    path = tmp_path / "one.xlsx"
    with pd.ExcelWriter(path) as writer:
        _frame().to_excel(writer, sheet_name="data", index=False)
        pd.DataFrame().to_excel(writer, sheet_name="empty", index=False)
    read = read_data(path).frame
    np.testing.assert_array_equal(read["y"].to_numpy(), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(read["g"].to_numpy(), [1, 1, 2, 2])


def test_csv_codes_007_and_7_are_refused_not_merged(tmp_path):
    # Both texts become the number 7: two schools would silently be one group.
    path = tmp_path / "ids.csv"
    path.write_text("school,y\n007,1.5\n007,2.5\n7,3.5\n7,4.5\n12,5.0\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"column 'school' holds both '007' and '7'"):
        read_data(path)


def test_csv_codes_refused_in_a_semicolon_file_with_quoted_fields(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text('school;y\n"7";1.5\n"07";2.5\n8;3.5\n', encoding="utf-8")
    with pytest.raises(UserInputError, match=r"column 'school' holds both '07' and '7'"):
        read_data(path)


def test_csv_consistently_zero_padded_codes_read_as_their_numbers(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("school,y\n007,1.5\n007,2.5\n012,3.5\n", encoding="utf-8")
    read = read_data(path).frame
    np.testing.assert_array_equal(read["school"].to_numpy(), [7, 7, 12])
