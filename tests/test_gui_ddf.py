"""The window's df method: the Model tab's choice reaches the spec, the refusal is shown at the
field, and the Fixed effects table gets each coefficient's df from the engine."""

import pytest
from test_gui_support import main_window, run_job  # noqa: F401  (fixture)

from engine.mixed import fit_mixed


def test_df_method_choice_fits_and_fills_the_df_column(qtbot, main_window):
    window = main_window
    frame = run_job(qtbot, window, window.design_view.simulate_button.click).frame
    view = window.model_view
    view.set_method("REML")
    combo = view.dfmethod_combo
    combo.setCurrentIndex(combo.findData("kroger"))
    combo.activated.emit(combo.currentIndex())
    assert view.spec.dfmethod == "kroger" and "dfmethod(kroger)" in view.stata_text.toPlainText()
    run_job(qtbot, window, view.fit_button.click)
    fixed = window.results_view.fixed_table.table_model().frame
    assert list(fixed.columns[3:6]) == ["t", "df", "P>|t|"]
    expected = fit_mixed(frame, view.spec, predict=False)
    for row in expected.fixed:
        shown = fixed[fixed["Term"] == row.term].iloc[0]
        assert shown["df"] == pytest.approx(row.df, rel=1e-9)
        assert shown["Std. Err."] == pytest.approx(row.se, rel=1e-9)  # the adjusted SE
    view.set_method("ML")  # Kenward-Roger needs REML: refused at the field, Fit disabled
    assert view.spec is None and "requires REML" in view.current_error()
    assert "requires REML" in combo.toolTip() and not view.fit_button.isEnabled()
