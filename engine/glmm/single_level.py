"""The single-level model of a binary or count outcome: Stata's ``logit``, ``probit`` and ``poisson``
(and ``melogit y x`` with no level), fitted by maximum likelihood.

The coefficients come from IRLS (engine.glmm.glm, the GLMM's own start and LR baseline); the
standard errors from the observed information X' W X with W the observed curvature of the
log-density (Stata's default ``vce(oim)``; for logit and Poisson it equals the expected one).
"""

from __future__ import annotations

import time

import numpy as np

from engine.glmm.family import Family
from engine.glmm.glm import fit_glm
from engine.mixed.inference import fixed_effect_rows, wald_test
from engine.results import FitResult

POOLED_COMMANDS = {("binomial", "logit"): "logit", ("binomial", "probit"): "probit", ("poisson", "log"): "poisson"}


def pooled_command(family: str, link: str) -> str:
    """Stata's single-level command for a family and link ('logit', 'probit', 'poisson'; 'glm' otherwise)."""
    return POOLED_COMMANDS.get((family, link), "glm")


def fit_single_level(data, spec, family: Family, offset: np.ndarray, started: float) -> FitResult:
    """Fit ``spec`` (no levels) to the prepared ``data``; see the module docstring.

    Parameters
    ----------
    data : the prepared model data (engine.mixed.prepare): outcome, design matrix, rows kept.
    spec : ModelSpec
        A binary or count model without levels.
    family : Family
        Its family and link (with the trials of a binomial count).
    offset : numpy.ndarray
        The offset per row (log exposure, or zeros).
    started : float
        ``time.perf_counter()`` when the fit began.

    Returns
    -------
    FitResult
        Estimator 'mixed', method 'ML', no random part; ``model`` is the Stata command
        (``logit pass tutoring``).
    """
    from engine.glmm.diagnostics import _separation_warnings
    from engine.glmm.fit import sample_notes

    y = data.y
    family.check_outcome(y, spec.outcome)
    x, names = data.design.matrix, data.design.names
    beta, loglik, converged = fit_glm(family, y, x, offset)
    eta = offset + x @ beta
    fisher, _ = family.weights_and_scores(y, eta)
    curvature = family.newton_weights(y, eta, fisher)
    information = x.T @ (x * curvature[:, None])
    warnings = []
    if family.name == "binomial" and family.trials is None:
        warnings += _separation_warnings(y, x, names, beta)
    try:
        cov_beta = np.linalg.inv(information)
        if not np.all(np.isfinite(cov_beta)) or np.any(np.diag(cov_beta) < 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        cov_beta = np.full((len(names), len(names)), np.nan)
        warnings.append("The information matrix is singular: standard errors are not reported (a predictor is "
                        "collinear with others or perfectly predicts the outcome).")
    if not converged:
        warnings.append("IRLS did not converge; treat the estimates with caution.")
    fixed = fixed_effect_rows(names, beta, cov_beta)
    command = " ".join([pooled_command(family.name, family.link), spec.outcome, *spec.fixed])
    options = [] if spec.constant else ["noconstant"]
    if spec.binomial:  # successes out of trials: Stata's glm, not logit / probit
        command = " ".join(["glm", spec.outcome, *spec.fixed])
        options.append(f"family(binomial {spec.binomial}) link({family.link})")
    if spec.offset:
        options.append(f"offset({spec.offset})")
    if spec.exposure:
        options.append(f"exposure({spec.exposure})")
    if spec.eform:  # odds ratios / incidence-rate ratios, as for the multilevel models
        options.append("irr" if family.name == "poisson" else "or")
    if options:
        command += ", " + " ".join(options)
    result = FitResult(
        estimator="mixed", method="ML", nobs=int(y.size), fixed=fixed, name=command, model=command,
        depvar=spec.outcome, loglik=loglik, converged=converged, warnings=warnings,
        wald=wald_test(names, beta, cov_beta) if np.all(np.isfinite(cov_beta)) else None,
        dropped_rows=data.dropped_rows, n_params=len(names), vcov=cov_beta.tolist(), spec=spec, dfmethod="z",
        family=family.name, link=family.link, nagq=spec.nagq)
    result.notes += sample_notes(data)
    if spec.eform:
        from engine.glmm.fit import exponentiated

        result.fixed_eform = [exponentiated(row) for row in fixed]
    result.fitted = family.expected(eta)
    result.fitted_fixed_only = result.fitted
    result.residuals = y - result.fitted
    result.fit_seconds = time.perf_counter() - started
    return result
