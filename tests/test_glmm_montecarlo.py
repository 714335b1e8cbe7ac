"""Monte Carlo studies of binary models: estimates on the latent scale against the design's truth."""

import numpy as np
import pytest

from engine.design import UnitCount
from engine.montecarlo import Study, run_study
from engine.presets import get_preset


def small_binary_design():
    design = get_preset("tutoring_binary")
    for name, units in (("dist_id", 8), ("school_id", 3), ("teach_id", 4), ("student_id", 10)):
        design.level(name).units = UnitCount.fixed(units)
    design.level("student_id").sd = 0.0  # two rows per student cannot separate a student sd well
    return design


@pytest.fixture(scope="module")
def binary_study():
    study = Study(design=small_binary_design(), reps=30, seed=5,
                  models=["melogit pass tutoring || dist_id: || school_id: || teach_id:"])
    return run_study(study, workers=1)


def test_binary_study_recovers_the_latent_truth(binary_study):
    rows = {row.param: row for row in binary_study.summary}
    assert binary_study.completed == 30 and rows["tutoring"].failed == 0
    for param in ("tutoring", "_cons", "teach_id:sd(_cons)"):
        row = rows[param]
        assert row.truth == pytest.approx(small_binary_design().truth().fixed.get(param, row.truth))
        # Fixed effects are nearly unbiased at this size; allow 3 Monte Carlo SEs (plus a small
        # margin for the known downward bias of Laplace variance estimates).
        assert abs(row.bias) <= 3 * row.mcse_bias + (0.1 if ":sd(" in param else 0.0), (param, row)
    assert 0.7 <= rows["tutoring"].coverage <= 1.0


def test_binary_fits_report_their_zero_sds_to_the_summary(binary_study):
    records = binary_study.records
    sds = records[records["param"].str.contains(":sd\\(")]
    # A fit warned about a boundary exactly when it has some sd held at zero.
    per_fit = sds.groupby("rep").agg(any_zero=("at_zero", "any"), warned=("fit_boundary", "first"))
    assert (per_fit["any_zero"] == per_fit["warned"]).all()
    zero = sds[sds["at_zero"]]
    assert np.all(np.isnan(zero["se"]))  # an sd at zero gets no standard error
