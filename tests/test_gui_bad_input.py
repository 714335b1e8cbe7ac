"""Bad or odd input in the window: each mistake gets one clear message naming the field and the
value (the engine's words, as the command line prints them), never a traceback, and what was
typed stays in its field."""

import subprocess
import sys
from pathlib import Path

import pytest
from test_gui_support import main_window, run_job  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]


# ----- Power tab ----------------------------------------------------------------------------------
@pytest.mark.parametrize("field, text, message", [
    # float('inf') and float('nan') are numbers to Python: they reached int() and raised.
    ("units", "inf, 25", "crt2: unit count must be a finite number, got inf"),
    ("units", "nan, 25", "crt2: unit count must be a finite number, got nan"),
    ("covariates", "inf", "crt2: number of top-level covariates must be a finite number, got inf"),
    # Rounded or truncated before: a plan for 20 clusters was shown for 20.4 typed.
    ("units", "20.4, 25", "crt2: unit counts must be whole numbers >= 1, got 20.4"),
    ("covariates", "1.5", "the number of top-level covariates must be a whole number, got 1.5"),
    # Came out as 'Power for effect nan sd: nan'.
    ("effect", "nan", "crt2: effect must be a finite number, got nan"),
    ("effect", "inf", "crt2: effect must be a finite number, got inf"),
])
def test_power_tab_refuses_numbers_it_cannot_use(main_window, field, text, message):
    view = main_window.power_view
    failures = []
    view.failed.connect(failures.append)
    getattr(view, field).setText(text)
    view.compute()
    assert failures == [message]
    assert view.report.toPlainText() == f"error: {message}"
    assert view.plan is None
    assert getattr(view, field).text() == text


def test_power_command_refuses_an_effect_of_nan_with_the_same_words():
    """The check is the engine's: the command line prints the Power tab's message and exits 2."""
    run = subprocess.run([sys.executable, "main.py", "power", "crt2", "--clusters", "20", "--per-cluster", "25",
                          "--icc", "0.15", "--effect", "nan"], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2
    assert run.stderr.strip() == "error: crt2: effect must be a finite number, got nan"
    assert run.stdout == ""


# ----- Design tab ---------------------------------------------------------------------------------
def _type(field, text):
    field.setText(text)
    field.textEdited.emit(text)


def test_unreadable_residual_sd_does_not_block_a_binary_design(main_window):
    """The residual sd is disabled for a binary outcome; its unreadable text used to keep Simulate
    disabled with no way to fix it. It is kept as typed and counts again for a continuous outcome."""
    view = main_window.design_view
    _type(view.residual_field, "abc")
    assert view.error_label.text() == "residual_sd must be a number, got 'abc'"
    view.family_combo.setCurrentIndex(1)
    view.family_combo.activated.emit(1)
    assert not view.residual_field.isEnabled()
    assert view.simulate_button.isEnabled()
    assert view.error_label.text() == ""
    assert view.residual_field.text() == "abc"
    view.family_combo.setCurrentIndex(0)
    view.family_combo.activated.emit(0)
    assert not view.simulate_button.isEnabled()
    assert view.error_label.text() == "residual_sd must be a number, got 'abc'"
    assert view.field_problem(view.residual_field) == "residual_sd must be a number, got 'abc'"


def test_unreadable_field_of_an_unticked_box_does_not_block_simulate(main_window):
    view = main_window.design_view
    assert view.treatment_box.isChecked()
    _type(view.treatment_probability_field, "x")
    assert view.error_label.text() == "treatment: probability must be a number, got 'x'"
    view.treatment_box.setChecked(False)
    assert view.simulate_button.isEnabled()
    assert view.treatment_probability_field.text() == "x"
    view.treatment_box.setChecked(True)
    assert not view.simulate_button.isEnabled()
    assert view.error_label.text() == "treatment: probability must be a number, got 'x'"


# ----- Model tab ----------------------------------------------------------------------------------
def test_fit_shortcut_without_data_says_why(main_window):
    """Ctrl+R reaches Fit from any tab; without data it did nothing at all."""
    shown = []
    main_window.error_shown.connect(shown.append)
    main_window.fit_action.trigger()
    assert shown == ["there are no data to fit: simulate a design or open a data file first"]
    assert main_window.error_bar.text() == shown[0]


# ----- Projects -----------------------------------------------------------------------------------
def test_saving_with_unreadable_text_says_what_the_file_holds_instead(main_window, tmp_path):
    """A project holds numbers; the typed 'abc' cannot be saved, and saving used to say nothing."""
    from engine.project import Project

    view = main_window.design_view
    _type(view.residual_field, "abc")
    shown = []
    main_window.error_shown.connect(shown.append)
    assert main_window.save_project_to(tmp_path / "p.hlmproj")
    assert shown == ["saved p.hlmproj; 1 field(s) hold text that is not a number and were saved as their last "
                     "number: residual_sd must be a number, got 'abc'"]
    assert view.residual_field.text() == "abc"
    assert Project.load(tmp_path / "p.hlmproj").design.residual_sd == 6.0  # the tutoring preset's, as shown before


def test_interval_choice_survives_save_and_reopen(main_window, qtbot, tmp_path):
    """Profile intervals chosen on the Model tab came back as Wald after reopening."""
    from engine.intervals import IntervalRequest

    view = main_window.model_view
    view.interval_combo.setCurrentIndex(view.interval_combo.findData("bootstrap"))
    view.bootstrap_reps_spin.setValue(250)
    view.bootstrap_seed_spin.setValue(7)
    assert main_window.save_project_to(tmp_path / "p.hlmproj")
    view.set_interval_request(IntervalRequest())
    main_window.open_project(tmp_path / "p.hlmproj")
    assert view.interval_request() == IntervalRequest(method="bootstrap", reps=250, seed=7)


def test_a_project_with_unreadable_intervals_opens_without_them_and_says_so(main_window, tmp_path):
    import json

    path = tmp_path / "p.hlmproj"
    assert main_window.save_project_to(path)
    data = json.loads(path.read_text())
    data["intervals"] = {"method": "jackknife"}
    path.write_text(json.dumps(data))
    shown = []
    main_window.error_shown.connect(shown.append)
    main_window.open_project(path)
    assert shown[-1] == ("p.hlmproj was opened without the parts it could not read: the intervals: intervals must "
                         "be one of wald, profile, bootstrap, not 'jackknife'; left out")
    assert main_window.model_view.interval_request().method == "wald"


# ----- Data ---------------------------------------------------------------------------------------
ALL_MISSING = ("no rows left after dropping rows with missing values in the model's variables "
               "('y' is missing in every row)")


def test_an_outcome_missing_in_every_row_is_named_by_the_nesting_check_and_the_fit(main_window, qtbot, tmp_path):
    """The nesting check raised ValueError (zero-size array) on it; the fit's message named no column."""
    from engine.model_spec import Level, ModelSpec

    path = tmp_path / "empty_outcome.csv"
    path.write_text("y,x,school\n" + "".join(f",{i},s{i % 3}\n" for i in range(30)))
    run_job(qtbot, main_window, lambda: main_window.open_data(path))
    view = main_window.model_view
    view.set_spec(ModelSpec(outcome="y", fixed=["x"], levels=[Level("school")]))
    qtbot.waitUntil(lambda: not view.nesting_check_pending, timeout=10_000)
    assert view.nesting_status.text() == ALL_MISSING
    failures = []
    main_window.job_runner.job_failed.connect(lambda _job, failure: failures.append(failure))
    with qtbot.waitSignal(main_window.job_runner.busy_changed, timeout=60_000, check_params_cb=lambda busy: not busy):
        view.fit_button.click()
    assert [failure.message for failure in failures] == [ALL_MISSING]
    assert not failures[0].details  # bad input, not a programming error: no traceback in the log
    assert main_window.error_bar.text() == ALL_MISSING


def test_fit_command_names_the_outcome_missing_in_every_row(tmp_path):
    path = tmp_path / "empty_outcome.csv"
    path.write_text("y,x,school\n" + "".join(f",{i},s{i % 3}\n" for i in range(30)))
    run = subprocess.run([sys.executable, "main.py", "fit", str(path), "--model", "y x || school:"], cwd=REPO,
                         capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2
    assert run.stderr.strip() == f"error: {ALL_MISSING}"


def test_expected_rows_are_not_left_from_the_last_valid_design(main_window):
    """Typing 1e9 units showed 'Expected rows: 8,000' beside the message about 1.6 trillion rows."""
    from PySide6.QtCore import Qt

    view = main_window.design_view
    assert view.rows_label.text() == "Expected rows: 8,000"
    model = view.level_model
    assert model.setData(model.index(0, model.UNITS), "1e9", Qt.ItemDataRole.EditRole)
    assert view.error_label.text() == ("the design expects 1,600,000,000,000 rows; the limit is 100,000,000 "
                                       "(reduce units at a level such as dist_id)")
    assert view.rows_label.text() == "Expected rows: — (fix the design first)"
    assert view.summary_table.rowCount() == 0
    assert model.setData(model.index(0, model.UNITS), "10", Qt.ItemDataRole.EditRole)
    assert view.rows_label.text() == "Expected rows: 16,000"
    assert view.summary_table.rowCount() > 0


def test_switching_the_outcome_type_back_gives_back_the_linear_choices(main_window, qtbot):
    """A binary outcome forces ML, the mixed model and Wald intervals; switching back to continuous
    left them so, and the REML, the xtreg estimators and the profile intervals chosen were lost."""
    window = main_window
    run_job(qtbot, window, window.design_view.simulate_button.click)
    view = window.model_view
    view.method_buttons["REML"].setChecked(True)
    view.set_estimators(["mixed", "ols", "re"])
    view.interval_combo.setCurrentIndex(view.interval_combo.findData("profile"))
    for index, method in ((1, "ML"), (3, "ML"), (0, "REML")):  # binary (logit), count, continuous
        view.family_combo.setCurrentIndex(index)
        view.family_combo.activated.emit(index)
        assert view.spec.method == method
    assert view.estimators() == ["mixed", "ols", "re"]
    assert view.interval_request().method == "profile"
    assert view.current_error() == ""


@pytest.mark.parametrize("typed, message", [
    # Accepted by the form until Fit before; the fit's words now come at once.
    ("nosuch", "unknown column 'nosuch'"),
    ("c.tutoring#c.Semester", "unknown column 'Semester' (did you mean 'semester'?)"),
    # Marked at the outcome before, a field with nothing wrong in it.
    ("i.", "term 'i.': no variable after 'i.'"),
    ("c.tutoring##", "term 'c.tutoring##' has an empty part: every '#' needs a variable on each side"),
    ("perform", "the outcome 'perform' is also a fixed effect in the model: it cannot explain itself"),
])
def test_a_bad_typed_term_is_named_at_the_more_terms_field(main_window, qtbot, typed, message):
    window = main_window
    run_job(qtbot, window, window.design_view.simulate_button.click)
    view = window.model_view
    view.extra_terms_edit.setText(typed)
    view.extra_terms_edit.textEdited.emit(typed)
    assert view.current_error() == message
    assert view.error_label.text() == message
    assert view.spec is None and not view.fit_button.isEnabled()
    assert view.extra_terms_edit.property("invalid_reason") == message
    assert view.outcome_combo.property("invalid_reason") == ""
    assert view.extra_terms_edit.text() == typed


def test_a_name_clash_typed_and_undone_leaves_the_treatment_at_its_level(main_window):
    """Renaming student_id to school_id (a clash) and back moved the school-randomised treatment to
    the students, silently: the rename took the clashing name's references with it."""
    from PySide6.QtCore import Qt

    view = main_window.design_view
    view.load_preset("cluster_trial")
    model = view.level_model
    assert view.design.level_names == ["school_id", "student_id"] and view.design.treatment.level == "school_id"
    assert model.setData(model.index(1, model.NAME), "school_id", Qt.ItemDataRole.EditRole)
    assert view.error_label.text() == ("level school_id: name 'school_id' is used twice (or reserved); "
                                       "column names must differ")
    assert model.setData(model.index(1, model.NAME), "student_id", Qt.ItemDataRole.EditRole)
    assert view.error_label.text() == ""
    assert view.design.treatment.level == "school_id"
    # A rename without a clash still takes the treatment along.
    assert model.setData(model.index(0, model.NAME), "school", Qt.ItemDataRole.EditRole)
    assert view.design.treatment.level == "school"
    assert view.treatment_level_combo.currentText() == "school"


# ----- Monte Carlo and Power tabs use the Design tab's design --------------------------------------
def test_studies_refuse_a_design_whose_form_shows_a_problem(main_window, qtbot):
    """With 'abc' typed as the districts' units, Monte Carlo and the Power tab's 'From the design'
    ran on the last number (5) while the Design tab showed the problem."""
    from PySide6.QtCore import Qt

    design_view = main_window.design_view
    design_view.load_preset("cluster_trial")
    model = design_view.level_model
    assert model.setData(model.index(0, model.UNITS), "abc", Qt.ItemDataRole.EditRole)
    problem = ("units per parent: write a whole number (20), a range (15..35), ~ and an average (~20) or "
               "observed sizes (observed 12, 30, 25), got 'abc'")
    assert design_view.current_error() == problem
    power = main_window.power_view
    failures = []
    power.failed.connect(failures.append)
    power.use_design()
    assert failures == [f"fix the Design tab first: {problem}"]
    assert power.plan is None
    montecarlo = main_window.montecarlo_view
    montecarlo.set_models(["score treated || school_id:, reml"])
    assert montecarlo.run() is None
    assert montecarlo.status_label.text() == f"fix the Design tab first: {problem}"
    assert not main_window.montecarlo_runner.is_busy
    # Fixed: both use the number now shown.
    assert model.setData(model.index(0, model.UNITS), "30", Qt.ItemDataRole.EditRole)
    power.use_design()
    assert power.plan is not None and power.plan.units == [30, 25]
    assert montecarlo.study().design.levels[0].units.n == 30
    assert model.index(0, model.UNITS).data() == "30"


def test_an_invalid_design_is_refused_by_the_studies_in_the_engine_words(main_window):
    """No 'fix the Design tab first' prefix when the design itself is invalid: the words are the
    engine's, which the command line prints for the same design."""
    from PySide6.QtCore import Qt

    from engine.errors import UserInputError

    design_view = main_window.design_view
    model = design_view.level_model
    assert model.setData(model.index(0, model.SD), "-1", Qt.ItemDataRole.EditRole)
    with pytest.raises(UserInputError) as caught:
        design_view.design.validate()
    assert str(caught.value) == "level dist_id: sd must be >= 0, got -1"
    failures = []
    main_window.power_view.failed.connect(failures.append)
    main_window.power_view.use_design()
    assert failures == [str(caught.value)]
    montecarlo = main_window.montecarlo_view
    montecarlo.set_models(["perform tutoring || school_id:, reml"])
    assert montecarlo.run() is None
    assert montecarlo.status_label.text() == str(caught.value)


def test_centring_a_text_column_is_refused_in_the_form_with_the_fit_words(main_window, qtbot, tmp_path):
    """It was accepted until Fit, which then failed with these words."""
    path = tmp_path / "pupils.csv"
    path.write_text("y,x,school,label\n" + "".join(f"{(i * 37) % 11 / 3},{i % 7},s{i % 6},{'abc'[i % 3]}\n"
                                                  for i in range(60)))
    run_job(qtbot, main_window, lambda: main_window.open_data(path))
    view = main_window.model_view
    editor = view.centering_editor
    row = editor.add_row()
    editor.set_row(row, name="label_c", variable="label", kind="grand")
    message = "cannot centre 'label': it is not numeric (e.g. 'a')"
    assert view.current_error() == message
    assert view.spec is None and not view.fit_button.isEnabled()
    assert view.centering_editor.table.property("invalid_reason") == message
    assert view.outcome_combo.property("invalid_reason") == ""
    editor.set_row(row, variable="x")
    assert view.current_error() == ""
    assert [c.variable for c in view.spec.centering] == ["x"]
    assert view.centering_editor.table.property("invalid_reason") == ""


@pytest.mark.parametrize("typed, message", [
    # Marked at the field before, but Simulate stayed enabled and used the probability's share.
    ("abc", "treatment: treated must be a number, got 'abc'"),
    ("nan", "treatment: treated must be a number, got 'nan'"),
    # 'write a whole number' at the field before, and the same silent share; now the engine's words.
    ("2.5", "treatment treated: treated must be a whole number, got 2.5"),
])
def test_an_unreadable_treated_count_stops_simulate(main_window, typed, message):
    view = main_window.design_view
    view.load_preset("cluster_trial")
    field = view.treatment_treated_edit
    assert field.isEnabled()  # an exact allocation
    _type(field, typed)
    assert view.error_label.text() == message
    assert not view.simulate_button.isEnabled()
    assert view.field_problem(field) == message
    assert field.text() == typed
    _type(field, "12")
    assert view.error_label.text() == "" and view.simulate_button.isEnabled()
    assert view.design.treatment.treated == 12
    assert view.field_problem(field) == ""


def test_the_treated_count_counts_only_for_an_exact_allocation(main_window):
    """Back to an exact allocation, '2.5' in Treated was dropped for the probability's share in
    silence; leaving it, its problem stayed until the next edit."""
    view = main_window.design_view
    view.load_preset("cluster_trial")
    combo = view.treatment_allocation_combo

    def choose(allocation):
        index = combo.findData(allocation)
        combo.setCurrentIndex(index)
        combo.activated.emit(index)

    _type(view.treatment_treated_edit, "2.5")
    assert view.error_label.text() == "treatment treated: treated must be a whole number, got 2.5"
    choose("bernoulli")
    assert view.error_label.text() == "" and view.simulate_button.isEnabled()
    assert view.design.treatment.treated is None
    choose("fixed")
    assert view.error_label.text() == "treatment treated: treated must be a whole number, got 2.5"
    assert not view.simulate_button.isEnabled()
    assert view.treatment_treated_edit.text() == "2.5"
    _type(view.treatment_treated_edit, "15")
    choose("bernoulli")
    choose("fixed")
    assert view.design.treatment.treated == 15 and view.error_label.text() == ""


def test_a_random_slope_on_a_text_column_is_refused_in_the_form_with_the_fit_words(main_window, qtbot, tmp_path):
    """The slope list offers every candidate column; a text one was accepted until Fit."""
    from PySide6.QtCore import Qt

    path = tmp_path / "pupils.csv"
    path.write_text("y,x,school,colour\n" + "".join(f"{(i * 37) % 11 / 3},{i % 7},{i % 6},{'rgbk'[(i * 7) % 4]}\n"
                                                    for i in range(120)))
    run_job(qtbot, main_window, lambda: main_window.open_data(path))
    view = main_window.model_view
    view.set_spec(view.spec.replace(fixed=[], levels=[view.spec.levels[-1]]))  # y || school:
    assert view.spec.to_stata() == "mixed y || school:, reml"
    view.level_list.setCurrentRow(view.level_order().index("school"))
    slopes = [view.slope_list.item(i).text() for i in range(view.slope_list.count())]
    view.slope_list.item(slopes.index("colour")).setCheckState(Qt.CheckState.Checked)
    message = "random slope 'colour' at level school is not numeric (e.g. 'r')"
    assert view.current_error() == message
    assert view.spec is None and not view.fit_button.isEnabled()
    assert view.slope_list.property("invalid_reason") == message
    view.slope_list.item(slopes.index("colour")).setCheckState(Qt.CheckState.Unchecked)
    assert view.current_error() == "" and view.slope_list.property("invalid_reason") == ""


def test_unreadable_text_in_a_covariate_cell_its_distribution_does_not_use(main_window):
    """'abc' as a normal covariate's sd, then binary: the sd cell cannot be edited, yet its problem
    kept Simulate disabled. The text is kept for a normal distribution again."""
    from PySide6.QtCore import Qt

    view = main_window.design_view
    view.load_preset("two_level")
    model = view.covariate_model
    row = [c.name for c in view.design.covariates].index("ses")
    message = "covariate ses: sd must be a number, got 'abc'"
    assert model.setData(model.index(row, model.SD), "abc", Qt.ItemDataRole.EditRole)
    assert view.error_label.text() == message
    assert model.setData(model.index(row, model.DISTRIBUTION), "binary", Qt.ItemDataRole.EditRole)
    assert not model.flags(model.index(row, model.SD)) & Qt.ItemFlag.ItemIsEditable
    assert view.error_label.text() == "" and view.simulate_button.isEnabled()
    assert model.index(row, model.SD).data() == ""
    assert model.setData(model.index(row, model.DISTRIBUTION), "normal", Qt.ItemDataRole.EditRole)
    assert model.index(row, model.SD).data() == "abc"
    assert view.error_label.text() == message and not view.simulate_button.isEnabled()
