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
    with pytest.raises(UserInputError, match=r"2 sheets \('wave1', 'wave2'\)"):
        read_data(path)


def test_workbook_with_one_filled_sheet_and_empty_sheets_is_read(tmp_path):
    path = tmp_path / "one.xlsx"
    with pd.ExcelWriter(path) as writer:
        _frame().to_excel(writer, sheet_name="data", index=False)
        pd.DataFrame().to_excel(writer, sheet_name="empty", index=False)
    read = read_data(path).frame
    np.testing.assert_array_equal(read["y"].to_numpy(), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(read["g"].to_numpy(), [1, 1, 2, 2])
