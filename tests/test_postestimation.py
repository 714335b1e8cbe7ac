"""lincom, contrast and margins against hand computation from the coefficients and their covariance."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import main
from engine.errors import UserInputError
from engine.lincom import lincom
from engine.linear_inference import PostEstimation
from engine.margins import Setting, contrast, margins
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.panel import fit_ols
from tests.reference_cases import DATA

Z = stats.norm.ppf(0.975)
INTERACTION = "mathach i.sector##c.ses || school:"
BANDS = "mathach i.band c.ses || school:"


@pytest.fixture(scope="module")
def hsb():
    data = pd.read_csv(DATA / "hsb.csv")
    data["band"] = np.digitize(data["ses"], [-0.5, 0.5])  # 0, 1, 2: a three-level factor
    return data


@pytest.fixture(scope="module")
def interaction_fit(hsb):
    return fit_mixed(hsb, ModelSpec.parse(INTERACTION, method="REML"), predict=False)


@pytest.fixture(scope="module")
def bands_fit(hsb):
    return fit_mixed(hsb, ModelSpec.parse(BANDS), predict=False)


def _by_hand(fit, weights: dict, constant=0.0):
    names = [row.term for row in fit.fixed]
    b = np.array([row.coef for row in fit.fixed])
    v = np.array(fit.vcov)
    L = np.array([weights.get(name, 0.0) for name in names])
    value, se = L @ b + constant, np.sqrt(L @ v @ L)
    return value, se


def _check(row, value, se, critical=Z):
    assert row.estimate == pytest.approx(value, rel=1e-10, abs=1e-12)
    assert row.se == pytest.approx(se, rel=1e-8)
    assert row.stat == pytest.approx(value / se, rel=1e-8)
    assert row.p == pytest.approx(2 * stats.norm.sf(abs(value / se)), rel=1e-6, abs=1e-300)
    assert row.ci == pytest.approx([value - critical * se, value + critical * se], rel=1e-8)


def test_lincom_of_named_coefficients(interaction_fit):
    assert [row.term for row in interaction_fit.fixed] == ["1.sector", "ses", "1.sector#c.ses", "_cons"]
    table = lincom(interaction_fit, ["ses + 2*c.ses#sector", "_b[ses] - _b[1.sector]", "(1.sector + 2*_cons)/2 - 3",
                                     "-ses"])
    _check(table.rows[0], *_by_hand(interaction_fit, {"ses": 1, "1.sector#c.ses": 2}))
    _check(table.rows[1], *_by_hand(interaction_fit, {"ses": 1, "1.sector": -1}))
    _check(table.rows[2], *_by_hand(interaction_fit, {"1.sector": 0.5, "_cons": 1}, constant=-3))
    _check(table.rows[3], *_by_hand(interaction_fit, {"ses": -1}))
    assert table.rows[0].weights == {"ses": 1.0, "1.sector#c.ses": 2.0}
    assert table.notes[0] == "(1) ses + 2*1.sector#c.ses = 0"
    assert table.notes[2] == "(3) 0.5*1.sector + _cons - 3 = 0"
    assert PostEstimation.from_dict(json.loads(table.to_json())) == table


@pytest.mark.parametrize("expression, message", [
    ("ses * _cons", "not linear"), ("1 / ses", "not linear"), ("ses / 0", "division by zero"),
    ("nope + ses", "no coefficient 'nope'"), ("ses +", "ends too early"), ("(ses", "ends too early"), ("(ses 2)", "missing ')'"),
    ("3", "names no coefficient"), ("ses $ 2", "cannot read"),
])
def test_lincom_refuses_what_it_cannot_read(interaction_fit, expression, message):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lincom(interaction_fit, [expression])


def test_lincom_refuses_an_ambiguous_factor(bands_fit):
    with pytest.raises(UserInputError, match="ambiguous"):
        lincom(bands_fit, ["i.band"])
    _check(lincom(bands_fit, ["2.band - 1.band"]).rows[0], *_by_hand(bands_fit, {"2.band": 1, "1.band": -1}))


def test_lincom_after_ols_uses_t_with_the_residual_df(hsb):
    fit = fit_ols(hsb, "mathach", ["ses", "i.sector"])
    (row,) = lincom(fit, ["ses + 1.sector"]).rows
    value, se = _by_hand(fit, {"ses": 1, "1.sector": 1})
    df = len(hsb) - 3
    assert row.df == df
    assert row.p == pytest.approx(2 * stats.t.sf(abs(value / se), df), rel=1e-8)
    _check_t = stats.t.ppf(0.975, df)
    assert row.ci == pytest.approx([value - _check_t * se, value + _check_t * se], rel=1e-10)


def test_margins_over_a_factor_average_the_design_rows(hsb, interaction_fit):
    table = margins(hsb, interaction_fit, at=[Setting.parse("sector")])
    mean_ses = hsb["ses"].mean()
    assert [row.label for row in table.rows] == ["sector=0", "sector=1"]
    _check(table.rows[0], *_by_hand(interaction_fit, {"ses": mean_ses, "_cons": 1}))
    _check(table.rows[1], *_by_hand(interaction_fit, {"1.sector": 1, "ses": mean_ses, "1.sector#c.ses": mean_ses,
                                                      "_cons": 1}))
    grid = margins(hsb, interaction_fit, at=[Setting.parse("sector=1"), Setting.parse("ses=-1,mean")])
    assert [row.label for row in grid.rows] == ["sector=1, ses=-1", f"sector=1, ses={mean_ses:g}"]
    _check(grid.rows[0], *_by_hand(interaction_fit, {"1.sector": 1, "ses": -1, "1.sector#c.ses": -1, "_cons": 1}))


def test_margins_of_other_factors_are_as_observed(hsb, bands_fit):
    (row,) = margins(hsb, bands_fit, at=[Setting.parse("ses=0.25")]).rows
    shares = hsb["band"].value_counts(normalize=True)
    _check(row, *_by_hand(bands_fit, {"1.band": shares[1], "2.band": shares[2], "ses": 0.25, "_cons": 1}))


def test_simple_slopes_and_marginal_effects(hsb, interaction_fit):
    slopes = margins(hsb, interaction_fit, at=[Setting.parse("sector")], dydx="ses")
    _check(slopes.rows[0], *_by_hand(interaction_fit, {"ses": 1}))
    _check(slopes.rows[1], *_by_hand(interaction_fit, {"ses": 1, "1.sector#c.ses": 1}))
    effect = margins(hsb, interaction_fit, at=[Setting.parse("ses=-1,2")], dydx="sector")
    assert [row.label for row in effect.rows] == ["1 vs 0, ses=-1", "1 vs 0, ses=2"]
    _check(effect.rows[0], *_by_hand(interaction_fit, {"1.sector": 1, "1.sector#c.ses": -1}))
    _check(effect.rows[1], *_by_hand(interaction_fit, {"1.sector": 1, "1.sector#c.ses": 2}))


def test_average_marginal_effect_through_a_continuous_interaction(hsb):
    fit = fit_mixed(hsb, ModelSpec.parse("mathach c.ses##c.meanses || school:"), predict=False)
    assert [row.term for row in fit.fixed] == ["ses", "meanses", "c.ses#c.meanses", "_cons"]
    (row,) = margins(hsb, fit, dydx="ses").rows
    _check(row, *_by_hand(fit, {"ses": 1, "c.ses#c.meanses": hsb["meanses"].mean()}))
    (at_one,) = margins(hsb, fit, at=[Setting.parse("meanses=0.5")], dydx="ses").rows
    _check(at_one, *_by_hand(fit, {"ses": 1, "c.ses#c.meanses": 0.5}))
    (slope,) = margins(hsb, fit, at=[Setting.parse("ses=1")], dydx="meanses").rows
    _check(slope, *_by_hand(fit, {"meanses": 1, "c.ses#c.meanses": 1.0}))


def test_average_marginal_effect_of_a_quadratic(hsb):
    fit = fit_mixed(hsb, ModelSpec.parse("mathach c.ses##c.ses || school:"), predict=False)
    assert [row.term for row in fit.fixed] == ["ses", "c.ses#c.ses", "_cons"]
    (row,) = margins(hsb, fit, dydx="ses").rows
    _check(row, *_by_hand(fit, {"ses": 1, "c.ses#c.ses": 2 * hsb["ses"].mean()}))
    (at_one,) = margins(hsb, fit, at=[Setting.parse("ses=1")], dydx="ses").rows
    _check(at_one, *_by_hand(fit, {"ses": 1, "c.ses#c.ses": 2.0}))


def test_contrasts_against_the_base_and_pairwise_with_adjustments(hsb, bands_fit):
    base = contrast(hsb, bands_fit, "band")
    assert [row.label for row in base.rows] == ["1 vs 0", "2 vs 0"]
    _check(base.rows[1], *_by_hand(bands_fit, {"2.band": 1}))
    assert base.rows[0].p_adjusted is None
    other_base = contrast(hsb, bands_fit, "band", base="2")
    assert [row.label for row in other_base.rows] == ["0 vs 2", "1 vs 2"]
    _check(other_base.rows[1], *_by_hand(bands_fit, {"1.band": 1, "2.band": -1}))

    pairs = contrast(hsb, bands_fit, "band", pairwise=True, adjustment="bonferroni")
    assert [row.label for row in pairs.rows] == ["1 vs 0", "2 vs 0", "2 vs 1"]
    value, se = _by_hand(bands_fit, {"2.band": 1, "1.band": -1})
    row = pairs.rows[2]
    assert row.estimate == pytest.approx(value, rel=1e-10) and row.se == pytest.approx(se, rel=1e-8)
    assert row.p_adjusted == pytest.approx(min(1.0, 3 * row.p), rel=1e-10)
    wide = stats.norm.ppf(1 - 0.05 / 6)
    assert row.ci == pytest.approx([value - wide * se, value + wide * se], rel=1e-8)
    assert pairs.adjustment == "bonferroni" and "Bonferroni" in pairs.notes[0]

    holm = contrast(hsb, bands_fit, "band", pairwise=True, adjustment="holm")
    p = np.array([row.p for row in holm.rows])
    order = np.argsort(p)
    expected = np.empty(3)
    running = 0.0
    for rank, index in enumerate(order):  # Holm's step-down, by hand
        running = max(running, min(1.0, (3 - rank) * p[index]))
        expected[index] = running
    assert [row.p_adjusted for row in holm.rows] == pytest.approx(expected, rel=1e-10)
    _check(holm.rows[0], *_by_hand(bands_fit, {"1.band": 1}))  # Holm leaves the intervals unadjusted


def test_contrast_at_values_of_a_moderator(hsb, interaction_fit):
    table = contrast(hsb, interaction_fit, "sector", at=[Setting.parse("ses=-1,1")])
    assert [row.label for row in table.rows] == ["1 vs 0, ses=-1", "1 vs 0, ses=1"]
    _check(table.rows[1], *_by_hand(interaction_fit, {"1.sector": 1, "1.sector#c.ses": 1}))


@pytest.mark.parametrize("call, message", [
    (lambda d, f: contrast(d, f, "ses"), "continuous"),
    (lambda d, f: contrast(d, f, "sector", base="7"), "base 7 is not a level"),
    (lambda d, f: margins(d, f, at=[Setting.parse("sector=3")]), "3.0 is not a level|3 is not a level"),
    (lambda d, f: margins(d, f, at=[Setting.parse("ses")]), "give values"),
    (lambda d, f: margins(d, f, at=[Setting.parse("meanses=1")]), "not a predictor"),
    (lambda d, f: margins(d, f, dydx="female"), "not a predictor"),
    (lambda d, f: margins(d, f, at=[Setting.parse("ses=1"), Setting.parse("ses=2")]), "given twice"),
    (lambda d, f: margins(d.iloc[::2], f), "usable rows"),
])
def test_bad_requests_are_refused_with_a_message(hsb, interaction_fit, call, message):
    with pytest.raises(UserInputError, match=message):
        call(hsb, interaction_fit)


def test_command_line_prints_and_writes_json(tmp_path, capsys, interaction_fit, hsb):
    data = str(DATA / "hsb.csv")
    out = tmp_path / "lincom.json"
    assert main.main(["lincom", data, "--reml", "--model", INTERACTION, "ses + ses#sector", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Linear combinations of coefficients" in printed and "(1) ses + 1.sector#c.ses = 0" in printed
    row = json.loads(out.read_text())["rows"][0]
    value, se = _by_hand(interaction_fit, {"ses": 1, "1.sector#c.ses": 1})
    assert row["estimate"] == pytest.approx(value, rel=1e-10) and row["se"] == pytest.approx(se, rel=1e-8)

    assert main.main(["margins", data, "--reml", "--model", INTERACTION, "--at", "sector", "--dydx", "ses",
                      "--json", "-", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["command"] == "margins" and [r["label"] for r in payload["rows"]] == ["sector=0", "sector=1"]
    assert payload["rows"][1]["estimate"] == pytest.approx(_by_hand(interaction_fit, {"ses": 1, "1.sector#c.ses": 1})[0],
                                                           rel=1e-8)

    assert main.main(["contrast", data, "--reml", "--model", INTERACTION, "sector", "--at", "ses=0", "--adjust", "holm"]) == 0
    printed = capsys.readouterr().out
    assert "1 vs 0, ses=0" in printed and "P adj." in printed and "Holm" in printed

    assert main.main(["lincom", data, "--model", INTERACTION, "ses * ses"]) == 2
    assert "not linear" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main.main(["contrast", data, "--model", INTERACTION, "sector", "--adjust", "tukey"])
    assert stopped.value.code == 2


def test_a_categorical_factor_keeps_its_order_and_type(hsb):
    data = hsb.assign(group=pd.Categorical(np.select([hsb["ses"] < -0.5, hsb["ses"] > 0.5], ["low", "high"], "mid"),
                                           categories=["low", "mid", "high"]))
    fit = fit_mixed(data, ModelSpec.parse("mathach i.group || school:"), predict=False)
    assert [row.term for row in fit.fixed] == ["mid.group", "high.group", "_cons"]
    table = margins(data, fit, at=[Setting.parse("group")])
    assert [row.label for row in table.rows] == ["group=low", "group=mid", "group=high"]
    _check(table.rows[2], *_by_hand(fit, {"high.group": 1, "_cons": 1}))
    against_high = contrast(data, fit, "group", base="high")
    assert [row.label for row in against_high.rows] == ["low vs high", "mid vs high"]
    _check(against_high.rows[1], *_by_hand(fit, {"mid.group": 1, "high.group": -1}))


def test_interaction_margins_give_lines_over_the_covariates_range(hsb, interaction_fit):
    from engine.margins import interaction_margins

    table = interaction_margins(hsb, interaction_fit, "ses", "sector", points=5)
    grid = np.linspace(hsb["ses"].min(), hsb["ses"].max(), 5)
    assert [row.at for row in table.rows] == [{"ses": pytest.approx(x), "sector": level}
                                              for x in grid for level in (0, 1)]
    last = table.rows[-1]
    _check(last, *_by_hand(interaction_fit, {"1.sector": 1, "ses": grid[-1], "1.sector#c.ses": grid[-1], "_cons": 1}))
    with pytest.raises(UserInputError, match="factor in the model"):
        interaction_margins(hsb, interaction_fit, "sector", None)
    with pytest.raises(UserInputError, match="continuous in the model"):
        interaction_margins(hsb, interaction_fit, "ses", "ses")


def test_a_fit_with_row_specific_df_gets_z_with_a_note(interaction_fit):
    import copy

    fit = copy.deepcopy(interaction_fit)
    for df, row in zip([150.0, 7000.0, 7000.0, 155.0], fit.fixed):  # as a Satterthwaite fit would carry them
        row.t_df = df
    table = lincom(fit, ["ses + 1.sector"])
    assert table.rows[0].df is None and table.rows[0].p == pytest.approx(2 * stats.norm.sf(abs(table.rows[0].stat)))
    assert any("are not applied to combinations" in note for note in table.notes)
    assert not any("not applied" in note for note in lincom(interaction_fit, ["ses"]).notes)


def _has_df_methods():
    try:
        import engine.mixed.ddf  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_df_methods(), reason="needs the small-sample df methods (engine.mixed.ddf)")
def test_lincom_and_margins_use_the_fits_df_method(hsb):
    fit = fit_mixed(hsb, ModelSpec.parse("mathach i.sector##c.ses || school:, reml dfmethod(satterthwaite)"))
    names = [row.term for row in fit.fixed]
    ses = fit.fixed[names.index("ses")]
    (row,) = lincom(fit, ["ses"]).rows
    assert row.df == pytest.approx(ses.df, rel=1e-12) and row.p == pytest.approx(ses.p, rel=1e-10)
    assert row.ci == pytest.approx(ses.ci, rel=1e-10)
    weights = np.array([1.0 if n in ("ses", "1.sector#c.ses") else 0.0 for n in names])
    (combined,) = lincom(fit, ["ses + ses#sector"]).rows
    df = fit.inference.method.contrast_df(weights)
    assert combined.df == pytest.approx(df, rel=1e-12) and df != pytest.approx(ses.df)
    value, se = _by_hand(fit, {"ses": 1, "1.sector#c.ses": 1})
    assert combined.p == pytest.approx(2 * stats.t.sf(abs(value / se), df), rel=1e-8)
    assert combined.ci == pytest.approx([value - stats.t.ppf(0.975, df) * se, value + stats.t.ppf(0.975, df) * se],
                                        rel=1e-10)
    slopes = margins(hsb, fit, at=[Setting.parse("sector")], dydx="ses")
    assert slopes.rows[1].df == pytest.approx(df, rel=1e-8)
