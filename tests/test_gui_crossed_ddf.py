"""The window fits a crossed model with a df method: the Model tab's Kenward-Roger choice reaches the
crossed fit, and the Fixed effects table shows the engine's df and adjusted SEs."""

import pytest
from test_gui_support import run_job

from engine.mixed import fit_mixed


def test_model_tab_fits_a_crossed_model_with_kenward_roger(qtbot, tmp_path):
    from gui.main_window import MainWindow, isolated_settings

    window = MainWindow(settings=isolated_settings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    try:
        window.design_view.load_preset("tutoring_moving")
        frame = run_job(qtbot, window, window.design_view.simulate_button.click).frame
        view = window.model_view
        names = [view.level_list.item(i).text() for i in range(view.level_list.count())]
        for name in ("teach_id", "student_id"):
            view.level_list.setCurrentRow(names.index(name))
            view.crossed_check.setChecked(True)
        view.set_method("REML")
        combo = view.dfmethod_combo
        combo.setCurrentIndex(combo.findData("kroger"))
        combo.activated.emit(combo.currentIndex())
        assert view.spec.has_crossed and view.spec.dfmethod == "kroger"
        assert "_all: R.teach_id" in view.stata_text.toPlainText()
        assert "dfmethod(kroger)" in view.stata_text.toPlainText()
        view.set_estimators(["mixed"])
        batch = run_job(qtbot, window, view.fit_button.click)
        assert batch.results[0].dfmethod == "kroger"
        fixed = window.results_view.fixed_table.table_model().frame
        assert list(fixed.columns[3:6]) == ["t", "df", "P>|t|"]
        expected = fit_mixed(frame, view.spec, predict=False)
        assert any("Crossed random factors" in note for note in expected.notes)
        cons = expected.coef("_cons")
        assert 3 < cons.df < 6  # five districts: about 4 df, not z
        for row in expected.fixed:
            shown = fixed[fixed["Term"] == row.term].iloc[0]
            assert shown["df"] == pytest.approx(row.df, rel=1e-9)
            assert shown["Std. Err."] == pytest.approx(row.se, rel=1e-9)  # the adjusted SE
    finally:
        window.session.set_modified(False)
        window.shutdown()
