"""Stata-style post-estimation commands (the window's command line) give the engine's own tables."""

import numpy as np
import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.lincom import lincom
from engine.margins import Setting, contrast, margins
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.postestimation_command import run_postestimation
from tests.reference_cases import DATA


@pytest.fixture(scope="module")
def hsb():
    data = pd.read_csv(DATA / "hsb.csv")
    data["band"] = np.digitize(data["ses"], [-0.5, 0.5])
    return data


@pytest.fixture(scope="module")
def fit(hsb):
    return fit_mixed(hsb, ModelSpec.parse("mathach i.sector##c.ses i.band || school:"), predict=False)


def _same(a, b):
    assert [row.label for row in a.rows] == [row.label for row in b.rows]
    for x, y in zip(a.rows, b.rows):
        assert (x.estimate, x.se, x.p, x.ci, x.p_adjusted) == (y.estimate, y.se, y.p, y.ci, y.p_adjusted)
    assert a.adjustment == b.adjustment


@pytest.mark.parametrize("command, direct", [
    ("lincom ses + 2*ses#sector", lambda d, f: lincom(f, ["ses + 2*ses#sector"])),
    ("margins sector", lambda d, f: margins(d, f, at=[Setting("sector")])),
    ("margins", lambda d, f: margins(d, f)),
    ("margins sector, dydx(ses)", lambda d, f: margins(d, f, at=[Setting("sector")], dydx="ses")),
    ("margins, at(ses=(-1 0 1) sector=1)",
     lambda d, f: margins(d, f, at=[Setting("ses", [-1.0, 0.0, 1.0]), Setting("sector", [1.0])])),
    ("margins band, at(ses=mean)", lambda d, f: margins(d, f, at=[Setting("band"), Setting("ses", ["mean"])])),
    ("contrast r.band, at(ses=0)", lambda d, f: contrast(d, f, "band", at=[Setting("ses", [0.0])])),
    ("contrast r.band, base(2)", lambda d, f: contrast(d, f, "band", base="2")),
    ("contrast pw.band, mcompare(holm)", lambda d, f: contrast(d, f, "band", pairwise=True, adjustment="holm")),
    ("pwcompare band, mcompare(bonferroni)",
     lambda d, f: contrast(d, f, "band", pairwise=True, adjustment="bonferroni")),
])
def test_commands_give_the_engines_tables(hsb, fit, command, direct):
    _same(run_postestimation(command, hsb, fit), direct(hsb, fit))


@pytest.mark.parametrize("command, message", [
    ("", "unknown command"), ("regress y x", "unknown command 'regress'"),
    ("margins sector, over(band)", "unknown option 'over'"), ("contrast band", "r.FACTOR"),
    ("contrast pw.band, mcompare(tukey)", "mcompare"), ("contrast pw.band, base(1)", "base()"),
    ("lincom ses, level(90)", "no options"), ("margins, at(ses=(1 2)", "cannot read"),
    ("contrast r.band r.sector", "one factor"), ("margins 2.band", "by name"),
])
def test_bad_commands_are_refused_with_a_message(hsb, fit, command, message):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_postestimation(command, hsb, fit)
