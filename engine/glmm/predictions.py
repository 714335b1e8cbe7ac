"""Per-row predictions after a binary or count model (nested or crossed factors), as Stata's
``predict`` after ``melogit`` / ``mepoisson``: the linear predictor and the mean, with the
random effects at their predicted values (modes) and at zero.

Columns: ``row``, the level ids, ``in_sample``, ``xb`` (X b plus any offset: the fixed portion),
``re_<level>_<term>`` (each factor's predicted effect), ``eta`` (xb plus the random effects),
``fitted`` (the mean at eta: a probability, or a count or rate times exposure; Stata's ``mu``),
``fitted_fixed`` (the mean with every random effect at zero; Stata's ``mu, conditional(fixedonly)``)
and ``residual`` (y - fitted). Rows outside the estimation sample keep their ids and are empty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.errors import UserInputError
from engine.results import FitResult


def glmm_row_predictions(frame: pd.DataFrame, result: FitResult) -> pd.DataFrame:
    """Per-row predictions of a GLMM fit, aligned with ``frame``'s rows (see the module text).

    Parameters
    ----------
    frame : DataFrame
        The data the model was fitted to.
    result : FitResult
        A GLMM fit with predictions (``fit_mixed(..., predict=True)``).
    """
    from engine.glmm.family import Family
    from engine.glmm.fit import _offset
    from engine.mixed.prepare import prepare_model_data
    from engine.predictions import IN_SAMPLE, group_of_each_row, random_effect_column

    spec = result.spec
    if spec is None or result.estimator != "mixed":
        raise UserInputError("predictions need a mixed-model fit")
    if spec.levels and not result.level_effects:
        raise UserInputError("the fit was made without predictions; refit with predictions switched on")
    data = prepare_model_data(frame.reset_index(drop=True), spec)
    if len(data.y) != result.nobs:
        raise UserInputError(f"the data have {len(data.y)} usable rows but the fit used {result.nobs}: "
                             f"give the data the model was fitted to")
    if data.design.names != [row.term for row in result.fixed]:
        raise UserInputError("the data's fixed-effect columns differ from the fit's: was the fit made on other data?")
    trials = data.frame[spec.binomial].to_numpy(dtype=float) if spec.binomial else None
    family = Family(spec.family, spec.link, trials)
    beta = np.array([row.coef for row in result.fixed], dtype=float)
    xb = _offset(data.frame, spec) + data.design.matrix @ beta
    eta = xb.copy()
    effects: dict[str, np.ndarray] = {}
    levels = {level.name: level for level in spec.levels}
    for level_effects in result.level_effects:
        codes = group_of_each_row(data.frame, level_effects.group_ids)
        estimates = np.asarray(level_effects.estimates, dtype=float)
        for term in levels[level_effects.level].terms:  # Stata's order
            values = estimates[codes, level_effects.terms.index(term)]
            effects[random_effect_column(level_effects.level, term)] = values
            eta += values * (1.0 if term == "_cons" else data.frame[term].to_numpy(dtype=float))
    fitted = family.expected(eta)
    if result.fitted is not None:  # the fit's own fitted means must be these rows'
        saved = np.asarray(result.fitted, dtype=float)
        if saved.shape != fitted.shape or not np.allclose(saved, fitted, rtol=1e-7, atol=1e-10):
            raise UserInputError("the fit was made on other data: refit the model to see its predictions")
    positions = data.frame.index.to_numpy()
    n = len(frame)
    out = pd.DataFrame({"row": np.arange(1, n + 1)})
    for name in spec.level_names:
        out[name] = frame[name].to_numpy()
    in_sample = np.zeros(n, dtype=bool)
    in_sample[positions] = True
    out[IN_SAMPLE] = in_sample
    columns = [("xb", xb), *effects.items(), ("eta", eta), ("fitted", fitted),
               ("fitted_fixed", family.expected(xb)), ("residual", data.y - fitted)]
    for name, values in columns:
        column = np.full(n, np.nan)
        column[positions] = values
        out[name] = column
    return out

