"""Outcome families and links of the GLMMs: Bernoulli (logit, probit) and Poisson (log).

Everything is written in terms of the linear predictor eta so that extreme values stay finite:
the log-density of each row, the mean, the Fisher weight w = (dmu/deta)^2 / Var(mu) and the
score s = dmu/deta (y - mu) / Var(mu), with which one IRLS step's weighted working response is
w * eta + s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from engine.errors import UserInputError

LINKS = {"binomial": ("logit", "probit"), "poisson": ("log",)}
LATENT_RESIDUAL_VARIANCE = {"logit": np.pi ** 2 / 3.0, "probit": 1.0}


@dataclass(frozen=True)
class Family:
    """A non-Gaussian outcome family with its link."""

    name: str  # 'binomial' or 'poisson'
    link: str  # 'logit', 'probit' or 'log'

    def __post_init__(self) -> None:
        if self.name not in LINKS:
            raise UserInputError(f"family {self.name!r} is not supported; use binomial or poisson")
        if self.link not in LINKS[self.name]:
            raise UserInputError(f"family {self.name} takes the link {' or '.join(LINKS[self.name])}, not {self.link!r}")

    def mean(self, eta: np.ndarray) -> np.ndarray:
        if self.link == "logit":
            return special.expit(eta)
        if self.link == "probit":
            return special.ndtr(eta)
        return np.exp(eta)

    def log_density(self, y: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """log p(y | eta) of each row, including constants (Stata's and lme4's full log-likelihood)."""
        if self.link == "logit":  # y eta - log(1 + e^eta), written to stay finite and fast
            return y * eta - np.maximum(eta, 0.0) - np.log1p(np.exp(-np.abs(eta)))
        if self.link == "probit":
            return y * special.log_ndtr(eta) + (1.0 - y) * special.log_ndtr(-eta)
        return y * eta - np.exp(eta) - special.gammaln(y + 1.0)

    def weights_and_scores(self, y: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fisher weights (dmu/deta)^2 / Var(mu) and scores dmu/deta (y - mu) / Var(mu) per row.

        For the canonical links (logit, log) these are the observed curvature and gradient of the
        log-density; for probit the expected curvature, as lme4's PIRLS and Laplace use.
        """
        if self.link == "logit":
            mu = special.expit(eta)
            return mu * (1.0 - mu), y - mu
        if self.link == "probit":
            log_phi = -0.5 * eta * eta - 0.5 * np.log(2.0 * np.pi)
            log_upper, log_lower = special.log_ndtr(eta), special.log_ndtr(-eta)
            weights = np.exp(2.0 * log_phi - log_upper - log_lower)
            # y - Phi over Phi (1 - Phi), written without cancellation for y = 0 and y = 1
            scores = y * np.exp(log_phi - log_upper) - (1.0 - y) * np.exp(log_phi - log_lower)
            return weights, scores
        mu = np.exp(eta)
        return mu, y - mu

    def newton_weights(self, y: np.ndarray, eta: np.ndarray, fisher: np.ndarray) -> np.ndarray:
        """The observed curvature -d2 log p / d eta2, which makes PIRLS a Newton method (quadratic
        convergence). Equal to the Fisher weights for the canonical links; for probit
        lambda (lambda + eta) when y = 1 and lambda0 (lambda0 - eta) when y = 0 (inverse Mills ratios)."""
        if self.link != "probit":
            return fisher
        log_phi = -0.5 * eta * eta - 0.5 * np.log(2.0 * np.pi)
        upper = np.exp(log_phi - special.log_ndtr(eta))
        lower = np.exp(log_phi - special.log_ndtr(-eta))
        return y * upper * (upper + eta) + (1.0 - y) * lower * (lower - eta)

    @property
    def latent_residual_variance(self) -> float | None:
        """Variance of the latent residual (pi^2/3 logit, 1 probit); None for Poisson."""
        return LATENT_RESIDUAL_VARIANCE.get(self.link)

    def check_outcome(self, y: np.ndarray, name: str) -> None:
        if self.name == "binomial":
            bad = ~np.isin(y, (0.0, 1.0))
            if bad.any():
                raise UserInputError(
                    f"the outcome {name!r} must be 0 or 1 for a {self.link} model; row {int(np.flatnonzero(bad)[0]) + 1} "
                    f"has {y[bad][0]:g}")
        else:
            bad = (y < 0) | (y != np.floor(y))
            if bad.any():
                raise UserInputError(
                    f"the outcome {name!r} must be a count (0, 1, 2, ...) for a Poisson model; row "
                    f"{int(np.flatnonzero(bad)[0]) + 1} has {y[bad][0]:g}")
