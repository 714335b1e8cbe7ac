"""The hierarchy design: presets, validation messages, JSON, expected counts, variance shares, truth."""

import json

import pytest

from engine.design import (
    CovariateDesign, Design, LevelDesign, Occasions, RandomSlope, TreatmentDesign, Truth, UnitCount,
)
from engine.errors import UserInputError
from engine.presets import PRESETS, get_preset


def test_tutoring_preset_is_the_seed_design():
    design = get_preset("tutoring")
    assert design.level_names == ["dist_id", "school_id", "teach_id", "student_id"]
    assert [level.units.n for level in design.levels] == [5, 5, 8, 20]
    assert all(level.units.distribution == "fixed" for level in design.levels)
    assert [level.sd for level in design.levels] == [2, 3, 4, 5]
    assert (design.occasions.name, design.occasions.count, design.occasions.missing_prob) == ("semester", 2, 0)
    assert design.residual_sd == 6 and design.intercept == 0 and design.outcome == "perform"
    treatment = design.treatment
    assert (treatment.name, treatment.effect, treatment.probability, treatment.level) == \
        ("tutoring", 2, 0.2, "observation")
    assert design.expected_counts().rows == 8000


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid_and_fresh(name):
    first = get_preset(name).validate()
    first.levels[0].sd = 99.0
    assert get_preset(name).levels[0].sd != 99.0


def test_cluster_trial_and_growth_presets():
    assert get_preset("cluster_trial").treatment.level == "school_id"
    growth = get_preset("growth")
    time = next(c for c in growth.covariates if c.name == "time")
    assert (time.level, time.distribution) == ("observation", "time")
    student = growth.level("student_id")
    assert [(s.variable, s.sd) for s in student.slopes] == [("time", 0.5)]


def test_unknown_preset_lists_the_choices():
    with pytest.raises(UserInputError, match="tutoring, two_level, cluster_trial, growth"):
        get_preset("three_level")


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip(tmp_path, name):
    design = get_preset(name)
    path = tmp_path / "design.json"
    design.save(path)
    data = json.loads(path.read_text())
    assert data["format_version"] == 1
    assert Design.load(path) == design
    assert Design.from_dict(design.to_dict()) == design


def test_json_accepts_a_plain_number_of_units(tmp_path):
    data = get_preset("tutoring").to_dict()
    data["levels"][0]["units"] = 50
    path = tmp_path / "design.json"
    path.write_text(json.dumps(data))
    assert Design.load(path).levels[0].units == UnitCount.fixed(50)


def test_level_accepts_an_int_for_units():
    assert LevelDesign("school_id", 7).units == UnitCount.fixed(7)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"format_version": 2, "levels": []}', "format_version 2"),
    ('{"levels": [{"name": "a", "units": 0}]}', "level a: units must be >= 1, got 0"),
    ("[1, 2]", "expected a JSON object"),
    # Design-file errors name the field in words (not a constructor's TypeError or a bare
    # "could not convert string to float"); a level without units is refused, not given one unit.
    ('{"levels": [{"name": "a", "units": 3, "sd": "x"}]}', r"levels\[0\] \(a\): sd: expected a number, got 'x'"),
    ('{"levels": [{"name": "a", "sd": 1}]}', r"levels\[0\] \(a\): the field 'units' is missing \(units per parent"),
    ('{"levels": [{"units": 4}]}', r"levels\[0\]: the field 'name' is missing"),
    ('{"levels": [{"name": "a", "unit": 4}]}', r"levels\[0\] \(a\): unknown field 'unit'; the fields are name, units"),
    ('{"levels": [{"name": "a", "units": "ten"}]}', r"levels\[0\] \(a\): units: expected units per parent.*got 'ten'"),
    ('{"levels": [{"name": "a", "units": 2}], "covariates": [{"name": "x", "coef": "1,5"}]}',
     r"covariates\[0\] \(x\): coef: expected a number, got '1,5'"),
    ('{"levels": [{"name": "a", "units": 2, "slopes": [{"variable": "x"}]}]}',
     r"levels\[0\] \(a\): slopes\[0\] \(x\): the field 'sd' is missing"),
])
def test_load_rejects_bad_files_naming_them(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserInputError, match=message) as raised:
        Design.load(path)
    assert "bad.json" in str(raised.value)


def test_load_missing_file():
    with pytest.raises(UserInputError, match="cannot read design file"):
        Design.load("/nonexistent/design.json")


def _set(path, value):
    """A mutation of the tutoring design: set attribute path 'levels.1.sd' to value."""
    def mutate(design):
        *parents, last = path.split(".")
        target = design
        for part in parents:
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        setattr(target, last, value)
    return mutate


def _add_covariate(**fields):
    return lambda design: design.covariates.append(CovariateDesign(**fields))


def _add_slope(level, variable, sd=1.0, corr=0.0):
    return lambda design: design.level(level).slopes.append(RandomSlope(variable, sd, corr))


@pytest.mark.parametrize("mutate, message", [
    (_set("levels.1.sd", -1.0), "level school_id: sd must be >= 0, got -1"),
    (_set("levels.0.units.n", 0), "level dist_id: units must be >= 1, got 0"),
    (_set("levels.0.units.n", 2.5), "level dist_id: units must be a whole number"),
    (_set("levels.2.units", UnitCount.uniform(5, 3)), "level teach_id: units max must be >= 5, got 3"),
    (_set("levels.2.units", UnitCount.poisson(0.5)), "level teach_id: units mean must be >= 1"),
    (_set("levels.2.units", UnitCount(distribution="binomial")), "level teach_id: units distribution"),
    (_set("levels.2.sd", float("nan")), "level teach_id: sd must be a finite number"),
    (_set("levels.2.name", "school_id"), "name 'school_id' is used twice"),
    (_set("levels.2.name", "teach id"), "name must be a variable name"),
    (_set("residual_sd", -6.0), "residual_sd must be >= 0, got -6"),
    (_set("treatment.level", "class_id"), "treatment tutoring: level 'class_id' does not exist"),
    (_set("treatment.probability", 1.5), "treatment tutoring: probability must be <= 1, got 1.5"),
    (_set("treatment.name", "perform"), "name 'perform' is used twice"),
    (_set("occasions.count", 0), "occasions: count must be >= 1, got 0"),
    (_set("occasions.missing_prob", 1.0), "occasions: missing_prob must be < 1"),
    (_set("levels.0.units.n", 100_000), "expects 160,000,000 rows; the limit is 100,000,000"),
    (_set("levels", []), "at least one level"),
    (_add_covariate(name="ses", level="class_id"), "covariate ses: level 'class_id' does not exist"),
    (_add_covariate(name="ses", distribution="gamma"), "covariate ses: distribution must be one of"),
    (_add_covariate(name="ses", distribution="normal", sd=-1.0), "covariate ses: sd must be >= 0"),
    (_add_covariate(name="age", distribution="time", level="student_id"), "covariate age: distribution 'time'"),
    (_add_slope("student_id", "motivation"), "random slope on 'motivation': no treatment or covariate"),
    (_add_slope("student_id", "tutoring", sd=-1.0), "random slope on 'tutoring': sd must be >= 0"),
    (_add_slope("student_id", "tutoring", corr=1.2), "random slope on 'tutoring': corr must be <= 1"),
])
def test_validation_names_the_field(mutate, message):
    design = get_preset("tutoring")
    mutate(design)
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        design.validate()


def test_slope_on_a_variable_that_does_not_vary_within_the_level():
    design = get_preset("cluster_trial")
    design.level("school_id").slopes.append(RandomSlope("treated", 1.0))
    with pytest.raises(UserInputError, match="level school_id: random slope on 'treated': the variable must vary"):
        design.validate()


def test_jointly_impossible_slope_correlations():
    design = get_preset("tutoring")
    design.covariates.append(CovariateDesign("ses", level="observation"))
    student = design.level("student_id")
    student.slopes += [RandomSlope("tutoring", 1.0, corr=0.8), RandomSlope("ses", 1.0, corr=0.8)]
    with pytest.raises(UserInputError, match="level student_id: the slopes' correlations"):
        design.validate()
    student.slopes[1].corr = 0.5
    design.validate()


def test_expected_counts_fixed_random_and_missing():
    design = Design(
        levels=[LevelDesign("a", 10), LevelDesign("b", UnitCount.uniform(2, 6)),
                LevelDesign("c", UnitCount.poisson(3.5))],
        occasions=Occasions("wave", count=4, missing_prob=0.25),
    )
    counts = design.validate().expected_counts()
    assert counts.units == {"a": 10, "b": 40, "c": 140, "wave": 560}
    assert counts.rows == pytest.approx(420)


def test_variance_shares_and_iccs_of_the_seed():
    design = get_preset("tutoring")
    shares = design.variance_shares()
    total = 4 + 9 + 16 + 25 + 36
    assert shares == pytest.approx({"dist_id": 4 / total, "school_id": 9 / total, "teach_id": 16 / total,
                                    "student_id": 25 / total, "Residual": 36 / total})
    iccs = design.intraclass_correlations()
    assert iccs["dist_id"] == pytest.approx(4 / total)
    assert iccs["student_id"] == pytest.approx(54 / total)


def test_slope_variance_is_averaged_over_its_variable():
    # time = 0..4: E[t] = 2, E[t^2] = 6; slope sd 0.5, corr 0.4 with the intercept sd 3.
    design = get_preset("growth")
    design.level("student_id").slopes[0].corr = 0.4
    variances = design.level_variances()
    assert variances["student_id"] == pytest.approx(9 + 0.25 * 6 + 2 * 0.4 * 3 * 0.5 * 2)
    assert variances["school_id"] == pytest.approx(4)
    assert sum(design.variance_shares().values()) == pytest.approx(1)


def test_truth_names_parameters_as_fit_results_do():
    truth = get_preset("tutoring").truth()
    assert truth.fixed == {"tutoring": 2.0, "_cons": 0.0}
    assert truth.random == {"dist_id:sd(_cons)": 2.0, "school_id:sd(_cons)": 3.0, "teach_id:sd(_cons)": 4.0,
                            "student_id:sd(_cons)": 5.0, "Residual:sd(Residual)": 6.0}
    growth = get_preset("growth")
    growth.level("student_id").slopes[0].corr = -0.3
    truth = growth.truth()
    assert truth.fixed == {"time": 1.5, "_cons": 20.0}
    assert truth.random["student_id:sd(time)"] == 0.5
    assert truth.random["student_id:corr(time,_cons)"] == -0.3
    assert Truth.from_json(truth.to_json()) == truth
    assert Design.from_dict(truth.design) == growth


def test_with_units_returns_a_changed_copy():
    design = get_preset("tutoring")
    bigger = design.with_units("dist_id", 50)
    assert bigger.levels[0].units == UnitCount.fixed(50)
    assert design.levels[0].units.n == 5
    assert bigger.expected_counts().rows == 80_000
    with pytest.raises(UserInputError, match="no level 'class_id'"):
        design.with_units("class_id", 3)


def test_describe_lists_levels_counts_and_shares():
    text = get_preset("tutoring").with_units("dist_id", 50).describe()
    assert "Expected rows: 80,000" in text
    assert "40,000" in text  # students
    assert "0.044" in text  # district share 4/90


def test_cluster_randomised_treatment_at_a_level():
    design = Design(levels=[LevelDesign("school_id", 10, sd=1.0), LevelDesign("student_id", 20)],
                    treatment=TreatmentDesign("treated", effect=1.0, level="school_id"))
    assert design.validate().variable_levels() == {"treated": "school_id"}
