"""The window runs what it shows: after Open project, New project, Load preset or an edit, every
tab (Monte Carlo included) uses the same design; opening does not mark a project modified; a
project with bad entries opens with a message naming them; `main.py PROJECT_FILE` opens it."""

import json

import pytest
from test_gui_support import main_window, run_job, wait_for_nesting_check  # noqa: F401  (fixture)

from PySide6.QtCore import Qt

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.presets import get_preset
from engine.project import DataSource, FitRecord, Project
from engine.simulate import simulate
from gui.tables.design_models import LevelTableModel
from gui.main_window import PROJECT_FILTER, MainWindow, isolated_settings

MODEL = "perform tutoring || dist_id: || school_id:, reml"


def seven_district_project(path, fits: bool = True) -> Project:
    """The tutoring design with 7 districts (the window starts with 5), simulated, with one fit."""
    design = get_preset("tutoring").with_units("dist_id", 7)
    spec = ModelSpec.parse(MODEL)
    records = []
    if fits:
        result = fit_mixed(simulate(design, seed=3).frame, spec, predict=False)
        records = [FitRecord(label="#1 Mixed REML: dist_id > school_id", result=result, run=1)]
    project = Project(design=design, seed=3, data_source=DataSource.simulation(design, 3), model=spec,
                      fits=records)
    project.save(path)
    return project


def monte_carlo_units(window) -> dict[str, str]:
    return {level.name: level.units.describe() for level in window.montecarlo_view.design.levels}


def test_open_project_gives_every_tab_the_opened_design_and_is_not_a_modification(qtbot, main_window, tmp_path):
    window = main_window
    path = tmp_path / "seven.hlmproj"
    project = seven_district_project(path)
    assert monte_carlo_units(window)["dist_id"] == "5"  # the start design
    run_job(qtbot, window, lambda: window.open_project(path))
    wait_for_nesting_check(qtbot, window)
    # The same design on the Design tab, in the project and in the study Monte Carlo would run.
    assert window.design_view.design == project.design
    assert window.session.project.design is window.design_view.design
    study = window.montecarlo_view.study()
    assert study.design == project.design and study.models == [project.model.to_stata()]
    plan = window.montecarlo_view.plan_label.text()
    assert "dist_id 7 × school_id 5 × teach_id 8 × student_id 20 × semester 2 (about 11,200 rows)" in plan
    assert f"fits {project.model.to_stata()}" in plan
    assert len(window.session.frame) == 11_200
    # Opened, data back, model shown: nothing was edited.
    assert not window.session.modified and "*" not in window.windowTitle()
    # An edit on the Design tab reaches Monte Carlo at once, and does mark the project modified.
    model = window.design_view.level_model
    assert model.setData(model.index(0, LevelTableModel.UNITS), "9", Qt.ItemDataRole.EditRole)
    assert monte_carlo_units(window)["dist_id"] == "9" and "dist_id 9 ×" in window.montecarlo_view.plan_label.text()
    assert window.session.project.design.levels[0].units.describe() == "9"
    assert window.session.modified and window.windowTitle().startswith("seven.hlmproj*")


def test_new_project_and_load_preset_reach_monte_carlo(qtbot, main_window, tmp_path):
    window = main_window
    path = tmp_path / "seven.hlmproj"
    seven_district_project(path, fits=False)
    run_job(qtbot, window, lambda: window.open_project(path))
    assert monte_carlo_units(window)["dist_id"] == "7"
    window.new_project()
    assert monte_carlo_units(window)["dist_id"] == "5"
    assert window.montecarlo_view.design == get_preset("tutoring")
    assert window.montecarlo_view.model_texts() == []  # the old project's model does not linger
    assert not window.session.modified
    window.design_view.preset_combo.setCurrentText("growth")
    window.design_view.load_preset("growth")
    growth = get_preset("growth")
    assert window.montecarlo_view.design == growth
    assert window.session.project.design == growth
    assert f"{growth.name!r}" in window.montecarlo_view.plan_label.text()
    window.montecarlo_view.set_sweep("units", "school_id", "10, 20")
    assert window.montecarlo_view.plan_label.text().endswith(
        "100 replications at each value of the sweep, which sets units per parent at school_id to 10, 20.")


def test_a_project_with_bad_entries_opens_with_a_message_and_the_rest(qtbot, main_window, tmp_path):
    window = main_window
    path = tmp_path / "damaged.hlmproj"
    seven_district_project(path)
    data = json.loads(path.read_text())
    broken = json.loads(json.dumps(data["fits"][0]))
    broken["result"]["model"] = "mixed perform tutoring || dist_id"
    data["fits"] = [None, data["fits"][0], broken]
    path.write_text(json.dumps(data))
    messages = []
    window.error_shown.connect(messages.append)
    run_job(qtbot, window, lambda: window.open_project(path))
    assert len(messages) == 1
    assert messages[0].startswith("damaged.hlmproj was opened without the parts it could not read: fit 1: "
                                  "expected a fit (a JSON object), found null; left out; fit 3 (")
    assert "no longer parses" in messages[0]
    assert window.error_bar.isVisible()
    assert window.results_view.history_list.count() == 1  # the readable fit
    assert window.design_view.design.levels[0].units.describe() == "7" and len(window.session.frame) == 11_200
    assert not window.session.modified


def test_open_project_lists_json_files_too():
    first_filter = PROJECT_FILTER.split(";;")[0]
    assert "*.hlmproj" in first_filter and "*.json" in first_filter


def test_main_with_a_project_file_opens_it_in_the_window(qtbot, tmp_path, monkeypatch):
    import gui.launch
    from main import main

    path = tmp_path / "seven.json"
    seven_district_project(path, fits=False)
    opened = []
    monkeypatch.setattr(gui.launch, "launch", lambda **kwargs: opened.append(kwargs) or 0)
    assert main([str(path)]) == 0
    assert opened == [{"project": str(path)}]
    assert gui.launch.project_argument(["fit", "data.csv"]) is None
    assert gui.launch.project_argument(["--self-test"]) is None
    # What launch does with it: the window shows the project.
    window = MainWindow(settings=isolated_settings(tmp_path / "settings.ini"))
    try:
        run_job(qtbot, window, lambda: gui.launch.open_window(window, str(path)))
        assert window.session.path == path and window.design_view.design.levels[0].units.describe() == "7"
        assert window.windowTitle().startswith("seven.json —")
    finally:
        window.session.set_modified(False)
        window.shutdown()
        window.close()
