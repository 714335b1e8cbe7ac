"""Project files: round trip, versioning, relative data paths, user-facing errors."""

import json

import pytest

from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.presets import get_preset
from engine.project import (FORMAT_VERSION, LOADERS, ColumnRoles, DataSource, FitRecord, Project)
from engine.simulate import simulate

MODEL = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:"


@pytest.fixture(scope="module")
def fitted_project():
    design = get_preset("tutoring")
    data = simulate(design, seed=7)
    spec = ModelSpec.parse(MODEL, method="REML")
    result = fit_mixed(data.frame, spec)
    return Project(design=design, seed=7, data_source=DataSource.simulation(design, 7), model=spec,
                   estimators=["mixed", "re"], fits=[FitRecord(label="#1 mixed REML", result=result)])


def test_round_trip_keeps_everything_but_the_per_row_arrays(tmp_path, fitted_project):
    path = tmp_path / "study.hlmproj"
    fitted_project.save(path)
    loaded = Project.load(path)
    assert loaded.to_dict() == fitted_project.to_dict()
    assert loaded.model == fitted_project.model
    assert loaded.data_source.design == fitted_project.design
    result = loaded.fits[0].result
    assert result.coef("tutoring").coef == fitted_project.fits[0].result.coef("tutoring").coef
    assert result.fitted is None and result.level_effects == []  # transient, recomputed by a refit


def test_saved_file_has_a_format_version_and_every_version_has_a_loader(tmp_path, fitted_project):
    path = tmp_path / "study.hlmproj"
    fitted_project.save(path)
    data = json.loads(path.read_text())
    assert data["format_version"] == FORMAT_VERSION
    assert set(LOADERS) == set(range(1, FORMAT_VERSION + 1))


def test_newer_format_is_refused_with_a_readable_message(tmp_path):
    path = tmp_path / "future.hlmproj"
    path.write_text(json.dumps({"format_version": FORMAT_VERSION + 1, "design": {}}))
    with pytest.raises(UserInputError, match="format_version"):
        Project.load(path)


def test_not_json_and_missing_file_are_user_errors(tmp_path):
    bad = tmp_path / "bad.hlmproj"
    bad.write_text("{not json")
    with pytest.raises(UserInputError, match="not valid JSON"):
        Project.load(bad)
    with pytest.raises(UserInputError, match="cannot read project file"):
        Project.load(tmp_path / "missing.hlmproj")


def test_unknown_estimator_is_named_and_left_out(tmp_path):
    data = Project(design=get_preset("tutoring"), estimators=["mixed", "re"]).to_dict()
    data["estimators"] = ["mixed", "bayes"]
    project = Project.from_dict(data)
    assert project.load_problems == ["the estimators: unknown estimator 'bayes'; choose from mixed, ols, fe, re; "
                                     "left out"]
    assert project.estimators == ["mixed"]


def test_a_project_with_bad_entries_loads_the_rest_and_names_the_bad_parts(tmp_path, fitted_project):
    data = fitted_project.to_dict()
    good_fit = data["fits"][0]
    unparsable = json.loads(json.dumps(good_fit))
    unparsable["label"] = "#2 old"
    unparsable["result"]["model"] = "mixed perform tutoring || dist_id"  # no colon: no longer parses
    bad_method = json.loads(json.dumps(good_fit))
    bad_method["label"] = "#3 odd"
    bad_method["result"]["spec"]["method"] = "bayes"
    data["fits"] = [None, good_fit, unparsable, bad_method, "text"]
    data["model"] = {"outcome": "perform", "fixed": ["c.tutoring#"], "levels": []}
    data["seed"] = "seven"
    path = tmp_path / "damaged.hlmproj"
    path.write_text(json.dumps(data))
    project = Project.load(path)
    assert project.load_problems == [
        "the seed: expected a whole number, found 'seven'; left out",
        "the model: term 'c.tutoring#' has an empty part: every '#' needs a variable on each side; left out",
        "fit 1: expected a fit (a JSON object), found null; left out",
        "fit 3 ('#2 old'): its model 'mixed perform tutoring || dist_id' no longer parses (random-effects part "
        "'dist_id' needs a level id followed by ':', e.g. 'school_id:'); left out",
        "fit 4 ('#3 odd'): method must be REML or ML, not 'BAYES'; left out",
        "fit 5: expected a fit (a JSON object), found 'text'; left out"]
    # The rest is there: design, data source, estimators and the good fit.
    assert project.design == fitted_project.design and project.seed == 1 and project.model is None
    assert project.data_source.design == fitted_project.design and project.estimators == ["mixed", "re"]
    assert [record.label for record in project.fits] == ["#1 mixed REML"]
    assert project.fits[0].result.loglik == fitted_project.fits[0].result.loglik
    assert "load_problems" not in project.to_dict()  # never saved


def test_a_project_without_a_design_is_refused(tmp_path):
    path = tmp_path / "empty.hlmproj"
    path.write_text(json.dumps({"format_version": FORMAT_VERSION, "fits": []}))
    with pytest.raises(UserInputError, match="the design is missing"):
        Project.load(path)


def test_data_file_path_is_stored_relative_to_the_project(tmp_path):
    data_file = tmp_path / "data" / "hsb.csv"
    data_file.parent.mkdir()
    data_file.write_text("y,g\n1,1\n")
    roles = ColumnRoles(outcome="y", ids=["g"])
    project = Project(design=get_preset("two_level"), data_source=DataSource.file(data_file, roles))
    path = tmp_path / "p.hlmproj"
    project.save(path)
    assert json.loads(path.read_text())["data_source"]["path"] == "data/hsb.csv"
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "data").mkdir()
    (moved / "data" / "hsb.csv").write_text(data_file.read_text())
    (moved / "p.hlmproj").write_text(path.read_text())
    loaded = Project.load(moved / "p.hlmproj")
    assert loaded.data_source.path == str((moved / "data" / "hsb.csv").resolve())
    assert loaded.data_source.roles == roles


def test_describe_data_source():
    design = get_preset("tutoring")
    assert DataSource.simulation(design, 5).describe() == "simulated from tutoring, seed 5"
    assert DataSource.file("/tmp/x/hsb.csv").describe() == "hsb.csv"


def test_a_field_of_the_wrong_shape_is_named_not_replaced_by_defaults(tmp_path, fitted_project):
    data = fitted_project.to_dict()
    data["design"]["levels"][0]["units"] = "abc"  # used to become one unit per parent, silently
    path = tmp_path / "odd.hlmproj"
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError, match=r"levels\[0\] \(dist_id\): units: expected units per parent.*got 'abc'"):
        Project.load(path)
    data = fitted_project.to_dict()
    data["model"]["fixed"] = "tutoring"  # a string, not a list: never a list of letters
    project = Project.from_dict(data)
    assert project.load_problems == ["the model: expected a list, found 'tutoring'; left out"]
    assert project.model is None
