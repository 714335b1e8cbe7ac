"""Load the lme4 reference fits carried in tests/reference (copied from shared/reference)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

TESTS = Path(__file__).parent
REFERENCE = TESTS / "reference"
DATA = TESTS / "data"

# lme4's names for fixed effects -> ours (Stata's)
LME4_TERM = {"(Intercept)": "_cons"}


def load_case(name: str) -> dict:
    return json.loads((REFERENCE / f"{name}.json").read_text())


def load_data(case: dict) -> pd.DataFrame:
    return pd.read_csv(DATA / case["data"])


def relative_error(value: float, expected: float) -> float:
    return abs(value - expected) / abs(expected)
