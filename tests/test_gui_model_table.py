"""Results tab: select several fits of the history and put them side by side; export the table."""

from __future__ import annotations

import pandas as pd
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from PySide6.QtCore import QItemSelectionModel, Qt

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.project import FitRecord

MODELS = ["mathach || school:", "mathach ses || school:", "mathach meanses ses || school: ses, cov(exchangeable)"]


@pytest.fixture(scope="module")
def records():
    frame = pd.read_csv("tests/data/hsb.csv")
    return [FitRecord(label=f"#{k} mixed ML", result=fit_mixed(frame, ModelSpec.parse(text), predict=False), run=k)
            for k, text in enumerate(MODELS, start=1)]


def test_selected_fits_side_by_side_and_exported(qtbot, tmp_path, records):
    from gui.views.results_view import ResultsView

    view = ResultsView()
    qtbot.addWidget(view)
    view.set_history(records)
    assert not view.side_by_side_button.isEnabled()  # one fit selected: nothing to put beside it
    selection = view.history_list.selectionModel()
    for row in (0, 2):
        index = view.history_list.model().index(row, 0)
        selection.select(index, QItemSelectionModel.SelectionFlag.Select)
    assert view.side_by_side_button.isEnabled() and "2" in view.side_by_side_button.text()
    qtbot.mouseClick(view.side_by_side_button, Qt.MouseButton.LeftButton)
    dialog = view.model_table_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.addWidget(dialog)
    first, third = records[0].result, records[2].result
    shown = dialog.view.table_model().frame
    assert list(shown.columns)[1:] == dialog.table.titles and len(dialog.table.titles) == 2
    labels = list(shown.iloc[:, 0])
    ses = labels.index("ses")
    assert shown.iloc[ses, 1] == "" and shown.iloc[ses, 2].startswith(f"{third.coef('ses').coef:.3f}")
    assert shown.iloc[ses + 1, 2] == f"({third.coef('ses').se:.3f})"
    cons = labels.index("_cons")
    assert shown.iloc[cons, 1].startswith(f"{first.coef('_cons').coef:.3f}")
    exchangeable = labels.index("school: corr(ses _cons)")
    assert shown.iloc[exchangeable, 2] == f"{third.random_param('school', 'corr(ses _cons)').estimate:.3f}"
    # intervals instead of SEs
    dialog.ci_button.setChecked(True)
    shown = dialog.view.table_model().frame
    low, high = third.coef("ses").ci
    assert shown.iloc[ses + 1, 2] == f"[{low:.3f}, {high:.3f}]"
    # export: LaTeX and HTML laid out as shown, CSV at full precision
    tex = dialog.export_to(tmp_path / "side.tex").read_text()
    assert "\\toprule" in tex and f"[{low:.3f}, {high:.3f}]" in tex
    html = dialog.export_to(tmp_path / "side.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and f"{third.loglik:.3f}" in html
    back = pd.read_csv(dialog.export_to(tmp_path / "side.csv"))
    row = back[back.term == "ses"].iloc[0]
    assert float(row[f"{dialog.table.titles[1]} estimate"]) == third.coef("ses").coef
    dialog.close()
