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


def test_unknown_estimator_is_named(tmp_path):
    data = Project(design=get_preset("tutoring")).to_dict()
    data["estimators"] = ["mixed", "bayes"]
    with pytest.raises(UserInputError, match="bayes"):
        Project.from_dict(data)


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
