"""Monte Carlo studies with a small-sample df method: `montecarlo --dfmethod`, and that Kenward-Roger
repairs the z test's type-I error in a 10-school cluster trial (seeded, so deterministic)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import UserInputError
from engine.montecarlo import Study
from engine.montecarlo.models import load_model
from engine.montecarlo.replicate import run_replications
from engine.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
TRIAL = "score treated || school_id:, reml"


def crt10(effect: float = 1.5, students: int | None = None):
    design = get_preset("cluster_trial").with_units("school_id", 10)
    if students is not None:
        design = design.with_units("student_id", students)
    design.treatment.effect = effect
    return design


def test_kenward_roger_keeps_the_type_one_error_that_z_inflates_with_ten_schools():
    """200 replications of a null 10-school trial (5 treated): the z test rejects a true zero far more
    often than 5%, Kenward-Roger (about 8 df) near 5%; each replication's KR p is at least its z p
    (same REML fit, a t reference and an SE no smaller), so KR's rejections are a subset of z's."""
    study = Study(design=crt10(effect=0.0), models=[TRIAL, f"{TRIAL} dfmethod(kroger)"], reps=200, seed=1).validate()
    records = run_replications(study, 0, range(study.reps))
    treated = records[records["param"] == "treated"]
    z = treated[treated["model"] == TRIAL].set_index("rep")
    kroger = treated[treated["model"] != TRIAL].set_index("rep")
    assert len(z) == len(kroger) == 200 and not z["failed"].any() and not kroger["failed"].any()
    assert (kroger["p"] >= z["p"] - 1e-12).all()
    assert ((kroger["ci_high"] - kroger["ci_low"]) >= (z["ci_high"] - z["ci_low"]) - 1e-12).all()
    z_error, kroger_error = float((z["p"] < 0.05).mean()), float((kroger["p"] < 0.05).mean())
    # Binomial MC error at 200 replications is about 0.015: z's rate is > 5% by more than that, KR's is not.
    assert z_error >= 0.065
    assert kroger_error <= 0.05
    assert z_error - kroger_error >= 0.03
    # With truth 0, coverage is 1 - rejection rate, for both.
    assert math.isclose(float(((kroger["ci_low"] <= 0) & (0 <= kroger["ci_high"])).mean()), 1 - kroger_error)


def test_study_dfmethod_equals_the_model_texts_dfmethod():
    design = crt10(students=8)
    by_study = Study(design=design, models=[TRIAL], reps=3, seed=5, dfmethod="kroger").validate()
    by_text = Study(design=design, models=[f"{TRIAL} dfmethod(kroger)"], reps=3, seed=5).validate()
    plain = Study(design=design, models=[TRIAL], reps=3, seed=5).validate()
    a, b, c = (run_replications(s, 0, range(3)) for s in (by_study, by_text, plain))
    columns = ["param", "estimate", "se", "ci_low", "ci_high", "p"]
    assert a[columns].equals(b[columns])
    fixed = a["kind"] == "fixed"
    assert (a.loc[fixed, "p"] > c.loc[fixed, "p"]).all()  # t with ~8 df, not z


def test_an_estimator_string_gets_the_study_dfmethod():
    design = crt10(students=8)
    model = load_model("mixed || school_id:, reml", design, "satterthwaite")
    assert model.spec is not None and model.spec.dfmethod == "satterthwaite"
    assert load_model("ols", design, "kroger").spec is None  # not a mixed model: its own t tests


@pytest.mark.parametrize("models, dfmethod, message", [
    (["score treated || school_id:"], "kroger", "model 'score treated || school_id:': dfmethod(kroger) requires REML"),
    (["score treated || school_id:, ml dfmethod(satterthwaite)"], None, "requires REML"),
    ([f"{TRIAL} dfmethod(satterthwaite)"], "kroger", "says dfmethod(satterthwaite) but the study's df method is kroger"),
    ([TRIAL], "kenward", "dfmethod(kenward) is not known"),
    (["mixed || school_id:"], "satterthwaite", "model 'mixed || school_id:': dfmethod(satterthwaite) requires REML"),
])
def test_a_df_method_the_model_cannot_use_is_refused_naming_it(models, dfmethod, message):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("|", r"\|")):
        Study(design=crt10(), models=models, reps=2, seed=1, dfmethod=dfmethod).validate()


def test_study_json_keeps_the_dfmethod():
    study = Study(design=crt10(), models=[TRIAL], reps=2, seed=1, dfmethod="kr").validate()
    assert study.dfmethod == "kroger"
    again = Study.from_json(study.to_json()).validate()
    assert again.dfmethod == "kroger"
    assert Study.from_dict({k: v for k, v in study.to_dict().items() if k != "dfmethod"}).dfmethod is None


def test_cli_montecarlo_dfmethod(tmp_path):
    out = tmp_path / "summary.json"
    command = [sys.executable, "main.py", "montecarlo", "--preset", "cluster_trial", "--units", "school_id=6",
               "--units", "student_id=5", "--models", TRIAL, "--reps", "2", "--seed", "4", "--workers", "1",
               "--dfmethod", "kroger", "--json", str(out), "--quiet"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert summary["study"]["dfmethod"] == "kroger"
    ml_model = [part if part != TRIAL else "score treated || school_id:" for part in command[:-3]]
    refused = subprocess.run(ml_model, cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2
    assert "dfmethod(kroger) requires REML" in refused.stderr and "Traceback" not in refused.stderr


def test_records_carry_each_fixed_effects_df_and_its_interval_is_t_based():
    from engine.montecarlo.summary import critical_value

    study = Study(design=crt10(students=8), models=[TRIAL, f"{TRIAL} dfmethod(kroger)"], reps=3, seed=9).validate()
    records = run_replications(study, 0, range(3))
    fixed = records[records["kind"] == "fixed"]
    kroger = fixed[fixed["model"] != TRIAL]
    z = fixed[fixed["model"] == TRIAL]
    assert z["df"].isna().all() and kroger["df"].notna().all()
    assert records.loc[records["kind"] == "random", "df"].isna().all()
    treated = kroger[kroger["param"] == "treated"]
    assert treated["df"].to_numpy() == pytest.approx(8.0, rel=1e-6)  # balanced: 10 schools - 2
    for frame in (z, kroger):
        half = frame["se"] * [critical_value(0.05, df) for df in frame["df"]]
        assert (frame["estimate"] - half).to_numpy() == pytest.approx(frame["ci_low"].to_numpy(), rel=1e-9)
        assert (frame["estimate"] + half).to_numpy() == pytest.approx(frame["ci_high"].to_numpy(), rel=1e-9)
