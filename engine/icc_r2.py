"""Variance summaries of a mixed fit: intraclass correlations, R² and reliabilities.

* **ICC** (Stata's ``estat icc``): at level k (levels 1..K outermost first), the correlation of two
  observations that share their group at level k and hence at every level above it,
  (tau_1 + ... + tau_k) / (tau_1 + ... + tau_K + sigma²), with tau_l the intercept variance of
  level l. Where levels below k have the same groups as level k (a nesting order typed
  backwards), pairs sharing a level-k group share theirs too, so their variances count as well
  and those levels get the same ICC (the split between them is arbitrary; their sum is not). In a random-coefficient model this is the ICC at random-effects covariates equal to
  0 (slopes then add nothing), and a note says so, as Stata does. The standard error is by the
  delta method from the covariance of the estimated log standard deviations (the fit's
  ``link_covariance``); the 95% interval is computed on the logit scale and mapped back, so it
  stays inside (0, 1).
* **R²** (Nakagawa & Schielzeth 2013; Johnson 2014 for random slopes; R's
  ``performance::r2_nakagawa``): with var_f the sample variance (n - 1) of the fixed part X b,
  var_r the sum over levels of the mean over rows of z_i' Sigma_l z_i (z_i: the row's values of
  the level's random terms, 1 for ``_cons``; Sigma_l: the level's covariance matrix) and
  sigma² the residual variance, marginal = var_f / (var_f + var_r + sigma²) and conditional =
  (var_f + var_r) / (var_f + var_r + sigma²). (performance leaves out a random slope that is
  not also a fixed effect; here every random term counts, as Johnson defines it.)
* **Reliability** (HLM 8's "reliability estimate" of the random intercepts): the mean over a
  level's groups of tau / (tau + v_g), with v_g the sampling variance of group g's own mean.
  Two levels: v_g = sigma² / n_g. More levels (HLM 3's generalisation, exact for nested random
  intercepts): at the lowest level v_g = sigma² / n_g; above it, a group's mean is the
  precision-weighted mean of its children's, v_g = 1 / sum_c 1 / (tau_child + v_c). Random slopes
  are ignored in v_g; HLM uses each group's level-1 OLS variance instead, which is the same when
  the level-1 predictors are centred at their group means.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy import special

from engine.distributions import normal_quantile

from engine.results import FitResult, LevelICC, Reliability

Z_975 = float(normal_quantile(0.975))
SLOPES_ICC_NOTE = "ICC is conditional on zero values of random-effects covariates (the model has random slopes)."
SLOPES_RELIABILITY_NOTE = (
    "Reliabilities of the intercepts use tau / (tau + sigma^2 / n_j); with random slopes HLM uses each group's "
    "level-1 OLS variance, the same only when the level-1 predictors are centred at their group means.")


def attach_variance_summaries(result: FitResult, hierarchy, data) -> None:
    """Set ``result.icc``, ``result.r2`` and ``result.reliability`` of a mixed fit.

    Parameters
    ----------
    result : FitResult
        The fit, with its variance rows, fixed effects and ``link_covariance``.
    hierarchy : engine.mixed.hierarchy.Hierarchy
        The grouping of the fit's rows (for the group sizes of the reliabilities).
    data : engine.mixed.prepare.ModelData
        The fit's rows and fixed-effects design (for R²).
    """
    spec = result.spec
    if spec is None or not spec.levels:
        return
    result.icc = intraclass_correlations(result)
    if any(level.slopes for level in spec.levels):
        result.notes.append(SLOPES_ICC_NOTE)
    beta = np.array([row.coef for row in result.fixed], dtype=float)
    slopes = {name: data.frame[name].to_numpy(dtype=float) for level in spec.levels for name in level.slopes}
    result.r2 = nakagawa_r2(result, data.design.matrix @ beta, slopes)
    result.reliability = intercept_reliabilities(result, hierarchy.rows_per_group(len(spec.levels) - 1),
                                                 hierarchy.parents)
    if result.reliability and any(level.slopes for level in spec.levels):
        result.notes.append(SLOPES_RELIABILITY_NOTE)


def level_covariance(result: FitResult, level_name: str) -> tuple[list[str], np.ndarray]:
    """The covariance matrix of a level's random effects (terms in Stata's order) from the fit's
    variance rows; missing rows (e.g. covariances of independent effects) are zero."""
    level = next(lv for lv in result.spec.levels if lv.name == level_name)
    terms = level.terms
    rows = {row.param: row.estimate for row in result.random_variances if row.level == level_name}
    q = len(terms)
    if level.covariance == "identity" and q > 1:
        return terms, np.eye(q) * rows.get(f"var({' '.join(terms)})", 0.0)
    if level.covariance == "exchangeable" and q > 1:  # one variance, one common covariance
        label = " ".join(terms)
        variance, covariance = rows[f"var({label})"], rows[f"cov({label})"]
        return terms, covariance * np.ones((q, q)) + (variance - covariance) * np.eye(q)
    sigma = np.zeros((q, q))
    for i, a in enumerate(terms):
        sigma[i, i] = rows.get(f"var({a})", 0.0)
        for j, b in enumerate(terms[:i]):
            value = rows.get(f"cov({a},{b})", rows.get(f"cov({b},{a})", 0.0))
            sigma[i, j] = sigma[j, i] = value
    return terms, sigma


def residual_variance(result: FitResult) -> Optional[float]:
    """The residual variance; for a binary GLMM the latent one (pi^2/3 logit, 1 probit); None for
    counts, which have no residual variance on the linear-predictor scale."""
    if result.family is not None:
        from engine.glmm.family import Family

        return Family(result.family, result.link).latent_residual_variance
    return next(row.estimate for row in result.random_variances if row.param == "var(Residual)")


def intercept_variances(result: FitResult) -> list[float]:
    """Each level's random-intercept variance, outermost first (0 where a level has no intercept)."""
    out = []
    for level in result.spec.levels:
        terms, sigma = level_covariance(result, level.name)
        out.append(float(sigma[terms.index("_cons"), terms.index("_cons")]) if "_cons" in terms else 0.0)
    return out


def intraclass_correlations(result: FitResult) -> list[LevelICC]:
    """Stata's ``estat icc`` for every level of a nested mixed fit (see the module notes).

    Parameters
    ----------
    result : FitResult
        A mixed fit with variance rows; its ``link_covariance`` gives the standard errors.

    Returns
    -------
    list of LevelICC
        Outermost level first; ``se`` and ``ci`` are None when the variance parameters have no
        covariance (a singular information matrix) or the ICC is 0 or 1.
    """
    names = result.spec.level_names
    if result.spec.has_crossed:
        # Which pairs share which effects depends on how the factors cross in the data; Stata's
        # estat icc refuses crossed-effects models too.
        return []
    residual = residual_variance(result)
    if residual is None:
        return []  # a count outcome: no latent residual, no ICC (as Stata's estat icc)
    variances = np.array(intercept_variances(result) + [residual])
    total = float(variances.sum())
    link = result.link_covariance
    # A GLMM's latent residual is a constant: only the levels' variances need standard errors.
    needed = variances[:-1] if result.family is not None else variances
    if link is not None and not _every_variance_is_free(link.params, names, needed):
        link = None  # a variance without a standard error (not identified): the ICC's SE cannot be had
    rows = []
    for depth in range(len(names)):
        # Levels with the same groups as this one (an order typed backwards) are shared by the same pairs.
        last = _last_level_with_same_groups(result, depth)
        shared = float(variances[: last + 1].sum())
        icc = shared / total
        se = ci = None
        if link is not None:
            gradient = np.array([_icc_gradient(param, names, variances, last, total, shared) for param in link.params])
            se = float(math.sqrt(max(gradient @ np.asarray(link.cov, dtype=float) @ gradient, 0.0)))
            if 0 < icc < 1:
                logit = math.log(icc / (1 - icc))
                half = Z_975 * se / (icc * (1 - icc))
                ci = [_inverse_logit(logit - half), _inverse_logit(logit + half)]
        label = "|".join(reversed(names[: depth + 1]))
        rows.append(LevelICC(names[depth], label, icc, se, ci))
    return rows


def _every_variance_is_free(params: list[str], names: list[str], variances: np.ndarray) -> bool:
    """Whether every positive intercept variance (and the residual) has its log sd among ``params``
    (variances on the boundary are zero and held fixed; they do not move the ICC)."""
    free = {_intercept_index(param, names) for param in params} - {None}
    return all(index in free for index, value in enumerate(variances) if value > 0)


def _intercept_index(param: str, names: list[str]) -> Optional[int]:
    """Index of the variance a link parameter is the log sd of (levels, then the residual), or None."""
    level, _, name = param.partition(":")
    if level == "Residual":
        return len(names)
    if level in names and name.startswith("sd(") and "_cons" in name[3:-1].split():
        return names.index(level)
    return None


def _last_level_with_same_groups(result: FitResult, depth: int) -> int:
    """The innermost level below ``depth`` whose groups are the same as ``depth``'s (nested levels with
    as many groups have the same groups); ``depth`` itself when the next level splits them."""
    counts = {row.level: row.groups for row in result.groups}
    names = result.spec.level_names
    last = depth
    while last + 1 < len(names) and counts.get(names[last + 1]) is not None \
            and counts.get(names[last + 1]) == counts.get(names[depth]):
        last += 1
    return last


def _icc_gradient(param: str, names: list[str], variances: np.ndarray, depth: int, total: float,
                  shared: float) -> float:
    """d icc / d (link parameter): only the log sds of intercepts and of the residual move it."""
    index = _intercept_index(param, names)
    if index is None:
        return 0.0  # slopes and correlations: the ICC at covariates 0 does not depend on them
    inside = 1.0 if index <= depth else 0.0
    return 2.0 * variances[index] * (inside / total - shared / total ** 2)


def nakagawa_r2(result: FitResult, fixed_part: np.ndarray, slope_values: dict[str, np.ndarray]) -> dict[str, float]:
    """Marginal and conditional R² (Nakagawa & Schielzeth, Johnson's random-slope extension).

    Parameters
    ----------
    result : FitResult
        The fit (variance rows and levels).
    fixed_part : ndarray
        X b on the fit's rows.
    slope_values : dict
        Each random slope variable's values on the fit's rows.

    Returns
    -------
    dict
        ``{"marginal": ..., "conditional": ...}``.
    """
    n = fixed_part.size
    var_fixed = float(np.var(fixed_part, ddof=1)) if n > 1 else 0.0
    var_random = 0.0
    for level in result.spec.levels:
        terms, sigma = level_covariance(result, level.name)
        z = np.column_stack([np.ones(n) if t == "_cons" else slope_values[t] for t in terms])
        var_random += float(np.sum((z @ sigma) * z)) / n  # mean of z' Sigma z over the rows
    total = var_fixed + var_random + residual_variance(result)
    return {"marginal": var_fixed / total, "conditional": (var_fixed + var_random) / total}


def intercept_reliabilities(result: FitResult, leaf_sizes: np.ndarray,
                            parents: list[np.ndarray]) -> list[Reliability]:
    """HLM's reliability of each level's random intercepts (see the module notes).

    Parameters
    ----------
    result : FitResult
    leaf_sizes : ndarray
        Rows per group at the lowest level.
    parents : list of ndarray
        Per level, each group's parent index in the level above (groups ordered as the fit's).

    Returns
    -------
    list of Reliability
        Levels with a random intercept, outermost first.
    """
    taus = intercept_variances(result)
    sigma2 = residual_variance(result)
    n_levels = len(taus)
    sampling = sigma2 / np.asarray(leaf_sizes, dtype=float)  # v_g at the lowest level
    per_level: list[Optional[np.ndarray]] = [None] * n_levels
    per_level[-1] = sampling
    for level in range(n_levels - 1, 0, -1):
        precision = 1.0 / (taus[level] + per_level[level])
        n_parents = int(parents[level].max()) + 1 if parents[level].size else 0
        per_level[level - 1] = 1.0 / np.bincount(parents[level], weights=precision, minlength=n_parents)
    out = []
    for level, tau in zip(result.spec.levels, taus):
        if not level.intercept:
            continue
        v = per_level[result.spec.levels.index(level)]
        out.append(Reliability(level.name, "_cons", float(np.mean(tau / (tau + v))), int(v.size)))
    return out


def _inverse_logit(value: float) -> float:
    return float(special.expit(value))
