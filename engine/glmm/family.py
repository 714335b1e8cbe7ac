"""Outcome families and links of the GLMMs: Bernoulli (logit, probit) and Poisson (log).

Everything is written in terms of the linear predictor eta so that extreme values stay finite:
the log-density of each row, the mean, the Fisher weight w = (dmu/deta)^2 / Var(mu) and the
score s = dmu/deta (y - mu) / Var(mu), with which one IRLS step's weighted working response is
w * eta + s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import UserInputError


def _special():
    """scipy.special, imported when first needed: design validation reads this module at window start."""
    from scipy import special

    return special

LINKS = {"binomial": ("logit", "probit"), "poisson": ("log",)}
LATENT_RESIDUAL_VARIANCE = {"logit": np.pi ** 2 / 3.0, "probit": 1.0}


@dataclass(frozen=True, eq=False)
class Family:
    """A non-Gaussian outcome family with its link; ``trials`` (per row) makes a binomial outcome a
    count of successes out of that many trials (Stata's binomial(), lme4's cbind(y, n - y))."""

    name: str  # 'binomial' or 'poisson'
    link: str  # 'logit', 'probit' or 'log'
    trials: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.name not in LINKS:
            raise UserInputError(f"family {self.name!r} is not supported; use binomial or poisson")
        if self.link not in LINKS[self.name]:
            raise UserInputError(f"family {self.name} takes the link {' or '.join(LINKS[self.name])}, not {self.link!r}")

    def mean(self, eta: np.ndarray) -> np.ndarray:
        if self.link == "logit":
            return _special().expit(eta)
        if self.link == "probit":
            return _special().ndtr(eta)
        return np.exp(eta)

    def expected(self, eta: np.ndarray) -> np.ndarray:
        """The outcome's expectation: the mean, times the trials of a binomial count."""
        return self.mean(eta) if self.trials is None else self.trials * self.mean(eta)

    def log_density(self, y: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """log p(y | eta) of each row, including constants (Stata's and lme4's full log-likelihood)."""
        n = 1.0 if self.trials is None else self.trials
        if self.link == "logit":  # y eta - n log(1 + e^eta), written to stay finite and fast
            out = y * eta - n * (np.maximum(eta, 0.0) + np.log1p(np.exp(-np.abs(eta))))
        elif self.link == "probit":
            out = y * _special().log_ndtr(eta) + (n - y) * _special().log_ndtr(-eta)
        else:
            return y * eta - np.exp(eta) - _special().gammaln(y + 1.0)
        if self.trials is not None:  # log C(n, y)
            out = out + _special().gammaln(n + 1.0) - _special().gammaln(y + 1.0) - _special().gammaln(n - y + 1.0)
        return out

    def weights_and_scores(self, y: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fisher weights (dmu/deta)^2 / Var(mu) and scores dmu/deta (y - mu) / Var(mu) per row.

        For the canonical links (logit, log) these are the observed curvature and gradient of the
        log-density; for probit the expected curvature, as lme4's PIRLS and Laplace use.
        """
        n = 1.0 if self.trials is None else self.trials
        if self.link == "logit":
            mu = _special().expit(eta)
            return n * mu * (1.0 - mu), y - n * mu
        if self.link == "probit":
            log_phi = -0.5 * eta * eta - 0.5 * np.log(2.0 * np.pi)
            log_upper, log_lower = _special().log_ndtr(eta), _special().log_ndtr(-eta)
            weights = n * np.exp(2.0 * log_phi - log_upper - log_lower)
            # (y - n Phi) phi / (Phi (1 - Phi)), written without cancellation at y = 0 and y = n
            scores = y * np.exp(log_phi - log_upper) - (n - y) * np.exp(log_phi - log_lower)
            return weights, scores
        mu = np.exp(eta)
        return mu, y - mu

    def newton_weights(self, y: np.ndarray, eta: np.ndarray, fisher: np.ndarray) -> np.ndarray:
        """The observed curvature -d2 log p / d eta2, which makes PIRLS a Newton method (quadratic
        convergence). Equal to the Fisher weights for the canonical links; for probit
        lambda (lambda + eta) when y = 1 and lambda0 (lambda0 - eta) when y = 0 (inverse Mills ratios)."""
        if self.link != "probit":
            return fisher
        n = 1.0 if self.trials is None else self.trials
        log_phi = -0.5 * eta * eta - 0.5 * np.log(2.0 * np.pi)
        upper = np.exp(log_phi - _special().log_ndtr(eta))
        lower = np.exp(log_phi - _special().log_ndtr(-eta))
        return y * upper * (upper + eta) + (n - y) * lower * (lower - eta)

    @property
    def latent_residual_variance(self) -> float | None:
        """Variance of the latent residual (pi^2/3 logit, 1 probit); None for Poisson."""
        return LATENT_RESIDUAL_VARIANCE.get(self.link)

    def check_outcome(self, y: np.ndarray, name: str) -> None:
        if self.name == "binomial" and self.trials is not None:
            n = self.trials
            bad = (n < 1) | (n != np.floor(n))
            if bad.any():
                raise UserInputError(f"binomial(): the number of trials must be a whole number >= 1; row "
                                     f"{int(np.flatnonzero(bad)[0]) + 1} has {n[bad][0]:g}")
            bad = (y < 0) | (y > n) | (y != np.floor(y))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise UserInputError(f"the outcome {name!r} must count successes between 0 and the trials; row "
                                     f"{row + 1} has {y[row]:g} of {n[row]:g}")
        elif self.name == "binomial":
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
