"""Binary and count outcomes for simulated designs: the linear predictor becomes a 0/1 or a count.

A design with ``family`` binomial (link logit or probit) or poisson (link log) builds the same
linear predictor as a linear design, without the residual: intercept (the baseline log-odds,
probit or log-rate), fixed effects and the levels' random effects on the latent scale. The
outcome is then drawn given it.
"""

from __future__ import annotations

import numpy as np

from engine.errors import UserInputError
from engine.glmm.family import LINKS, Family

DESIGN_FAMILIES = ("gaussian", "binomial", "poisson")


def check_design_family(family: str, link: str) -> None:
    if family not in DESIGN_FAMILIES:
        raise UserInputError(f"family must be one of {', '.join(DESIGN_FAMILIES)}, got {family!r}")
    if family == "gaussian":
        if link != "identity":
            raise UserInputError(f"a gaussian outcome has the identity link, not {link!r}")
        return
    if link not in LINKS[family]:
        raise UserInputError(f"family {family} takes the link {' or '.join(LINKS[family])}, not {link!r}")


def draw_outcome(rng: np.random.Generator, family: str, link: str, eta: np.ndarray) -> np.ndarray:
    """0/1 (binomial) or counts (poisson) given the linear predictor ``eta``."""
    mean = Family(family, link).mean(eta)
    if family == "binomial":
        return (rng.random(eta.size) < mean).astype(np.int8)
    return rng.poisson(mean).astype(np.int64)


def latent_residual_variance(family: str, link: str, residual_sd: float) -> float:
    """The residual variance on the latent scale: pi^2/3 (logit), 1 (probit), none for counts (0)."""
    if family == "gaussian":
        return residual_sd ** 2
    return Family(family, link).latent_residual_variance or 0.0
