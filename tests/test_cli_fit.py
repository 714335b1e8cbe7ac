"""`main.py fit`: the report, the JSON shape, and one-line messages with exit code 2 on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import main
from tests.reference_cases import DATA, load_case, relative_error

ROOT = Path(__file__).resolve().parents[1]
SEED = str(DATA / "seed_d5.csv")
NESTED = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:"


def test_fit_prints_stata_like_report_and_writes_json(tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main.main(["fit", SEED, "--model", NESTED, "--reml", "--json", str(out)]) == 0
    report = capsys.readouterr().out
    for piece in ("Mixed-effects REML regression", "Observations per Group", "Wald chi2(1)",
                  "Log restricted-likelihood", "sd(Residual)", "LR test vs. linear model: chi2(4)",
                  "Note: LR test is conservative"):
        assert piece in report
    result = json.loads(out.read_text())
    for key in ("method", "nobs", "loglik", "converged", "fixed", "random", "groups", "lr_test", "wald",
                "warnings", "fit_seconds"):
        assert key in result
    case = load_case("seed_d5_nested4_reml")
    assert result["method"] == "REML" and result["nobs"] == 8000
    assert relative_error(result["loglik"], case["loglik"]) < 1e-6
    tutoring = next(row for row in result["fixed"] if row["term"] == "tutoring")
    assert set(tutoring) >= {"term", "coef", "se", "z", "p", "ci"}
    assert relative_error(tutoring["coef"], case["fixed"]["tutoring"]["coef"]) < 1e-4
    assert [row["level"] for row in result["random"]] == ["dist_id", "school_id", "teach_id", "student_id", "Residual"]
    assert result["random"][0]["param"] == "sd(_cons)" and len(result["random"][0]["ci"]) == 2
    assert result["groups"][0] == {"level": "dist_id", "groups": 5, "min": 1600, "mean": 1600.0, "max": 1600}
    assert result["lr_test"]["df"] == 4 and result["lr_test"]["kind"] == "chi2"
    assert result["wald"]["df"] == 1


def test_one_variance_component_gets_chibar2(capsys):
    assert main.main(["fit", SEED, "--model", "perform tutoring || student_id:", "--ml"]) == 0
    assert "chibar2(01)" in capsys.readouterr().out


def test_variance_option_reports_variances(capsys):
    assert main.main(["fit", SEED, "--model", "perform tutoring || student_id:", "--variance"]) == 0
    out = capsys.readouterr().out
    assert "var(_cons)" in out and "var(Residual)" in out


def test_missing_values_are_dropped_and_counted(tmp_path, capsys):
    frame = pd.read_csv(SEED)
    frame.loc[[3, 10, 20], "tutoring"] = np.nan
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "r.json"
    assert main.main(["fit", str(path), "--model", "perform tutoring || student_id:", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["nobs"] == 7997 and result["dropped_rows"] == 3
    assert "3 rows with missing values" in capsys.readouterr().out


@pytest.mark.parametrize("edit, model, message", [
    (None, "perform tutorin || student_id:", "unknown column 'tutorin'"),
    (None, "perform tutoring || student:", "unknown column 'student'"),
    ("text_outcome", "perform tutoring || student_id:", "outcome 'perform' is not numeric"),
    ("missing_id", "perform tutoring || student_id:", "level id 'student_id' has 1 missing value"),
    ("collinear", "perform tutoring twice || student_id:", "singular"),
    ("empty", "perform tutoring || student_id:", "holds no data rows"),
])
def test_bad_input_gets_one_line_and_exit_code_2(tmp_path, capsys, edit, model, message):
    frame = pd.read_csv(SEED).head(200)
    if edit == "text_outcome":
        frame["perform"] = "high"
    elif edit == "missing_id":
        frame["student_id"] = frame["student_id"].astype(float)
        frame.loc[5, "student_id"] = np.nan
    elif edit == "collinear":
        frame["twice"] = 2 * frame["tutoring"]
    elif edit == "empty":
        frame = frame.head(0)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    assert main.main(["fit", str(path), "--model", model]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreadable_file_is_one_line_from_a_real_process(tmp_path):
    missing = tmp_path / "nowhere.csv"
    done = subprocess.run([sys.executable, "main.py", "fit", str(missing), "--model", "y x || g:"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "nowhere.csv" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("arguments, message", [
    (["--model", "perform tutoring || student_id:, reml", "--ml"], "--ml conflicts with 'reml' in the model"),
    (["--model", "perform tutoring || student_id:, ml", "--reml"], "--reml conflicts with 'ml' in the model"),
    (["--model", "perform tutoring || student_id:, ml reml"], "both ml and reml"),
    (["--model", "perform tutoring, reml || student_id:"], "option 'reml' is in the fixed part"),
    (["--model", "perform tutoring || student_id: tutoring, covariance(unstr"], "unclosed parenthesis"),
    (["--model", "perform tutoring || student_id:", "--model", "perform || student_id:"], "fit takes one --model"),
    (["--model", "perform tutoring || student_id: tutoring tutoring"], "slope 'tutoring' is given twice"),
    (["--model", "perform tutoring c.tutoring#c.tutoring || student_id:"], "'c.tutoring#c.tutoring' is collinear"),
])
def test_conflicting_or_misplaced_options_get_one_line_and_exit_code_2(capsys, arguments, message):
    assert main.main(["fit", SEED, *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_method_may_be_given_twice_when_it_agrees(tmp_path):
    out = tmp_path / "r.json"
    assert main.main(["fit", SEED, "--model", "perform tutoring || student_id:, reml", "--reml", "--quiet",
                      "--json", str(out)]) == 0
    assert json.loads(out.read_text())["method"] == "REML"


def test_lrtest_refuses_a_method_conflict_too(capsys):
    assert main.main(["lrtest", SEED, "--ml", "--model", "perform || student_id:, reml",
                      "--model", "perform tutoring || student_id:"]) == 2
    assert "--ml conflicts with 'reml'" in capsys.readouterr().err
