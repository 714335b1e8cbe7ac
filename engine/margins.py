"""Stata's ``margins`` (fixed part of the linear predictor) and contrasts of margins.

A *predictive margin* sets some predictors to chosen values in every row of the estimation
sample, leaves the others as observed, and averages the linear prediction x'b over the rows
(Stata's default ``asobserved``). Since x'b is linear in b, the margin is L'b with L the mean
of the modified design rows, and its standard error is sqrt(L' V L) (Stata's delta method, which
is exact here). ``dydx(x)`` is the average derivative of x'b in a continuous x (exact central
difference of the design rows: the design is at most quadratic in x unless x appears three or
more times in a term), and for a factor the change from its base level to each other level.
Evaluated at the levels of a factor or at values of a moderator, ``dydx`` gives simple slopes.

Contrasts (:func:`contrast`) compare the margins of a factor's levels, against its base level
(Stata's ``r.`` operator, ``margins r.f``) or pairwise (``margins f, pwcompare``), with a
multiple-comparison adjustment (none, Bonferroni, Holm).

Design rows at chosen values are rebuilt with the fit's own design builder on the sample
stacked with its modified copy, so factor levels and column names are exactly the fit's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from engine.errors import UserInputError
from engine.linear_inference import PostEstimation, adjust, coefficients, distribution_notes, estimate
from engine.wald_tests import continuous_variables, factor_level
from engine.results import FitResult

MEAN = "mean"


@dataclass
class Setting:
    """``--at VAR=v1,v2`` (values; the word ``mean`` for the sample mean) or ``--at FACTOR`` (all levels)."""

    variable: str
    values: Optional[list] = None  # None: every level of a factor

    @classmethod
    def parse(cls, text: str) -> "Setting":
        name, equals, values = text.partition("=")
        name = name.strip()
        if not name:
            raise UserInputError(f"--at {text!r}: write VAR=value[,value...] or FACTOR")
        if not equals:
            return cls(name, None)
        parsed = []
        for piece in values.replace(" ", ",").split(","):
            piece = piece.strip()
            if not piece:
                continue
            if piece.lower() == MEAN:
                parsed.append(MEAN)
                continue
            parsed.append(float(piece) if _is_number(piece) else piece)  # text: a level of a text factor
        if not parsed:
            raise UserInputError(f"--at {text!r}: no values after '='")
        return cls(name, parsed)


class _Sample:
    """The fit's estimation sample and how its design rows respond to changed predictors."""

    def __init__(self, frame: pd.DataFrame, result: FitResult):
        from engine.design_matrix import term_variables
        from engine.mixed.prepare import prepare_model_data

        if result.spec is None:
            raise UserInputError("margins need a fit made from a model specification")
        self.result = result
        self.spec = result.spec
        data = prepare_model_data(frame.reset_index(drop=True), self.spec)
        if len(data.y) != result.nobs:
            raise UserInputError(f"the data have {len(data.y)} usable rows but the fit used {result.nobs}: "
                                 f"give the data the model was fitted to")
        self.names, self.beta, self.cov = coefficients(result)
        if data.design.names != self.names:
            raise UserInputError("the data's fixed-effect columns differ from the fit's")
        if result.fitted is not None and result.residuals is not None and not np.allclose(
                np.asarray(result.fitted) + np.asarray(result.residuals), data.y, rtol=1e-8, atol=1e-8):
            raise UserInputError("the fit was made on other data: refit the model on these data")
        self.frame = data.frame.reset_index(drop=True)
        self.variables = term_variables(self.spec.fixed)
        self.factor_levels = self._factor_levels()
        # Mean design rows need each distinct combination of the predictors once, with its count
        # (simulated designs often have few): the same means, built on far fewer rows.
        if self.variables:
            counts = self.frame.groupby(self.variables, sort=False, observed=True, dropna=False).size()
            self.distinct = counts.index.to_frame(index=False)
            for name in self.variables:  # keep each column's type (groupby keys may lose it)
                self.distinct[name] = self.distinct[name].astype(self.frame[name].dtype)
            self.counts = counts.to_numpy(dtype=float)
        else:
            self.distinct = self.frame.iloc[:1][[]]
            self.counts = np.array([float(len(self.frame))])

    def _factor_levels(self) -> dict[str, list]:
        """Variables that enter as factors and their levels in the sample."""
        factors = factor_variables(self.names, self.variables, continuous_variables(self.spec.fixed))
        return {v: _levels_in_order(self.frame[v]) for v in self.variables if v in factors}

    def check_variable(self, variable: str, what: str) -> None:
        if variable not in self.variables:
            raise UserInputError(f"{what} {variable!r} is not a predictor of the fixed effects "
                                 f"({', '.join(self.variables) or 'none'})")

    def base_level(self, factor: str):
        """The level with no coefficient of its own (Stata's base)."""
        levels = self.factor_levels[factor]
        named = {factor_level(piece, factor, self.variables) for name in self.names for piece in name.split("#")}
        named.discard(None)
        missing = [level for level in levels if not any(_same_level(text, level) for text in named)]
        return missing[0] if missing else levels[0]

    def mean_row(self, settings: dict) -> np.ndarray:
        """Mean design row over the sample with ``settings`` {variable: value} applied to every row
        (a value may also be an array with one value per row of ``distinct``)."""
        return self.counts @ self.design_rows(settings) / self.counts.sum()

    def design_rows(self, settings: dict) -> np.ndarray:
        """The design rows of ``distinct`` (weighted by ``counts``) with ``settings`` applied."""
        from engine.design_matrix import build_fixed_design

        if not self.variables:
            return np.ones((1, 1)) if self.names == ["_cons"] else np.zeros((1, len(self.names)))
        base = self.distinct
        modified = base.copy()
        for variable, value in settings.items():
            if variable in self.factor_levels:  # keep the column's type (a categorical keeps its order)
                modified[variable] = pd.Series([value] * len(modified), dtype=base[variable].dtype)
            else:
                modified[variable] = np.broadcast_to(np.asarray(value, dtype=float), len(modified)).copy()
        # Built on the sample's rows stacked with the modified ones: the factors' levels, the
        # columns and their names are exactly the fit's.
        stacked = pd.concat([base, modified], ignore_index=True)
        design = build_fixed_design(stacked, self.spec.fixed, constant=self.spec.constant)
        if design.names != self.names:
            raise UserInputError("the design at the chosen values has other columns than the fit's")
        return np.asarray(design.matrix[len(base):], dtype=float)

    def measure(self, settings: dict, scale: str) -> tuple[float, np.ndarray]:
        """The margin at ``settings`` and its gradient in the coefficients: on the linear predictor
        (``xb``) the mean design row L with L'b; on the response scale (``mu``) the mean of
        g^-1(x_i'b) over the rows with the delta-method gradient mean(dmu/deta_i x_i)."""
        if scale == "xb":
            row = self.mean_row(settings)
            return float(row @ self.beta), row
        rows = self.design_rows(settings)
        mean, slope = inverse_link(self.result.link, rows @ self.beta)
        share = self.counts / self.counts.sum()
        return float(share @ mean), (share * slope) @ rows

    def resolve(self, setting: Setting) -> list:
        """The concrete values of one ``--at`` setting."""
        variable = setting.variable
        self.check_variable(variable, "--at")
        if variable in self.factor_levels:
            levels = self.factor_levels[variable]
            if setting.values is None:
                return list(levels)
            out = []
            for value in setting.values:
                match = [level for level in levels if value != MEAN and _same_level(value, level)]
                if not match:
                    raise UserInputError(f"--at {variable}: {value} is not a level of the factor {variable} "
                                         f"(levels {', '.join(_level_text(v) for v in levels)})")
                out.append(match[0])
            return out
        if setting.values is None:
            raise UserInputError(f"--at {variable}: give values (VAR=v1,v2 or VAR=mean); {variable} is continuous")
        mean = float(self.frame[variable].mean())
        text = [value for value in setting.values if value != MEAN and not _is_number(value)]
        if text:
            raise UserInputError(f"--at {variable}: {text[0]!r} is not a number; {variable} is continuous")
        return [mean if value == MEAN else float(value) for value in setting.values]


def factor_variables(names: list[str], variables: list[str], continuous: set[str] | None = None) -> set[str]:
    """The ``variables`` that enter the coefficients ``names`` as factors (a column named LEVEL.VAR).

    ``continuous``, the variables the model uses as continuous, tells a text factor's level ``c``
    (column ``c.g``) from a continuous part ``c.g``; without it ``c.`` is taken as continuous.
    """
    factors = set()
    for name in names:
        for piece in name.split("#"):
            for variable in variables:
                level = factor_level(piece, variable, variables)
                text_level_c = continuous is not None and variable not in continuous
                if level is not None and (level.lower() != "c" or text_level_c):
                    factors.add(variable)
    return factors


def predictor_kinds(result: FitResult) -> tuple[list[str], list[str]]:
    """The fit's fixed-effect predictors split into (continuous, factors), in the model's order."""
    from engine.design_matrix import term_variables

    if result.spec is None:
        return [], []
    variables = term_variables(result.spec.fixed)
    factors = factor_variables([row.term for row in result.fixed], variables, continuous_variables(result.spec.fixed))
    return [v for v in variables if v not in factors], [v for v in variables if v in factors]


def margins(frame: pd.DataFrame, result: FitResult, at: Sequence[Setting] = (), dydx: Optional[str] = None,
            scale: str = "xb") -> PostEstimation:
    """Predictive margins, or average marginal effects ``dydx``, at every combination of ``at`` values.

    Parameters
    ----------
    frame : DataFrame
        The data the model was fitted to.
    result : FitResult
        The fit.
    at : sequence of Setting
        Predictors to set (all combinations are evaluated); empty: the overall margin.
    dydx : str, optional
        A predictor: report its average marginal effect instead of the predicted mean.
    scale : str
        'xb', the linear predictor (log-odds, log count for GLMMs), or 'mu', the mean of the
        predicted probabilities or counts (GLMMs; Stata's ``predict(mu fixedonly)``); both with the
        random effects at zero.

    Returns
    -------
    PostEstimation
        One row per combination (and per non-base level when ``dydx`` is a factor).
    """
    scale = check_scale(result, scale)
    sample = _Sample(frame, result)
    grid = _grid(sample, at)
    rows = []
    words = scale_words(result, scale)
    if dydx is None:
        for settings in grid:
            rows.append(_with_settings(_estimate(result, *sample.measure(settings, scale),
                                                 _at_label(settings) or "_cons"), settings))
        title = f"Predictive margins ({words}, fixed portion)"
    else:
        sample.check_variable(dydx, "dydx")
        if dydx in {s.variable for s in at} and dydx in sample.factor_levels:
            raise UserInputError(f"dydx({dydx}) of a factor cannot be evaluated at set levels of the same factor")
        for settings in grid:
            for label, value, gradient in _derivatives(sample, dydx, settings, scale):
                rows.append(_with_settings(
                    _estimate(result, value, gradient, ", ".join(p for p in (label, _at_label(settings)) if p)),
                    settings))
        title = f"Average marginal effects of {dydx} on the {words} (fixed portion)"
    notes = ["Other predictors as observed (Stata's asobserved); random effects at zero."]
    notes += scale_notes(result, scale)
    notes += _derived_column_notes(sample, [s.variable for s in at] + ([dydx] if dydx else []))
    notes += distribution_notes(result)
    return PostEstimation("margins", title, result.model, result.depvar, rows, notes=notes)


def contrast(frame: pd.DataFrame, result: FitResult, factor: str, *, pairwise: bool = False,
             base=None, at: Sequence[Setting] = (), adjustment: str = "none", scale: str = "xb") -> PostEstimation:
    """Contrasts of a factor's predictive margins: each level against the base, or all pairs.

    Parameters
    ----------
    frame, result : the data and the fit.
    factor : str
        A predictor entered as a factor (``i.f``).
    pairwise : bool
        All pairs of levels instead of each level against the base.
    base : optional
        The reference level (default: the fit's base level).
    at : sequence of Setting
        Other predictors to set (contrasts at every combination).
    adjustment : str
        'none', 'bonferroni' or 'holm', over all rows of the table.
    scale : str
        'xb' (linear predictor) or 'mu' (mean predicted probability or count of a GLMM), as in
        :func:`margins`.
    """
    scale = check_scale(result, scale)
    sample = _Sample(frame, result)
    sample.check_variable(factor, "contrast")
    if factor not in sample.factor_levels:
        raise UserInputError(f"contrast: {factor!r} is continuous in the model; write i.{factor} to use it as a factor")
    if any(s.variable == factor for s in at):
        raise UserInputError(f"contrast: {factor} cannot also be set with --at")
    levels = sample.factor_levels[factor]
    if base is None:
        reference = sample.base_level(factor)
    else:
        matching = [level for level in levels if _same_level(base, level)]
        if not matching:
            raise UserInputError(f"contrast: base {base} is not a level of {factor} "
                                 f"(levels {', '.join(_level_text(v) for v in levels)})")
        reference = matching[0]
    pairs = (list(itertools.combinations(levels, 2)) if pairwise
             else [(reference, level) for level in levels if level != reference])
    rows = []
    for settings in _grid(sample, at):
        means = {level: sample.measure({**settings, factor: level}, scale) for level in levels}
        for first, second in pairs:
            label = f"{_level_text(second)} vs {_level_text(first)}"
            suffix = _at_label(settings)
            (value_1, gradient_1), (value_2, gradient_2) = means[first], means[second]
            rows.append(_with_settings(_estimate(result, value_2 - value_1, gradient_2 - gradient_1,
                                                 f"{label}, {suffix}" if suffix else label), settings))
    notes = adjust(rows, adjustment)
    kind = "pairwise comparisons" if pairwise else f"contrasts with the base level {_level_text(reference)}"
    notes.append(f"Margins of the {scale_words(result, scale)}: other predictors as observed (Stata's asobserved); "
                 f"random effects at zero.")
    notes += scale_notes(result, scale)
    notes += _derived_column_notes(sample, [factor] + [s.variable for s in at])
    notes += distribution_notes(result)
    return PostEstimation("contrast", f"Contrasts of predictive margins of {factor}: {kind}", result.model,
                          result.depvar, rows, adjustment=adjustment.lower(), notes=notes)


def interaction_margins(frame: pd.DataFrame, result: FitResult, covariate: str, factor: Optional[str] = None,
                        points: int = 20) -> PostEstimation:
    """Predictive margins over an even grid of a continuous ``covariate`` (its sample range), for
    each level of ``factor`` if given: the lines of an interaction plot (Stata's marginsplot).

    Rows carry their settings in ``at`` ({covariate: value, factor: level}).
    """
    sample = _Sample(frame, result)
    sample.check_variable(covariate, "covariate")
    if covariate in sample.factor_levels:
        raise UserInputError(f"{covariate!r} is a factor in the model; choose a continuous predictor for the axis")
    if factor is not None:
        sample.check_variable(factor, "by")
        if factor not in sample.factor_levels:
            raise UserInputError(f"{factor!r} is continuous in the model; lines are drawn for the levels of a factor")
    values = sample.frame[covariate].to_numpy(dtype=float)
    grid = np.linspace(float(values.min()), float(values.max()), max(2, points))
    at = [Setting(covariate, [float(v) for v in grid])] + ([Setting(factor, None)] if factor else [])
    return margins(frame, result, at=at)


def _with_settings(row, settings: dict):
    row.at = {name: (value.item() if hasattr(value, "item") else value) for name, value in settings.items()}
    return row


def _derived_column_notes(sample: _Sample, variables: list[str]) -> list[str]:
    """Columns made from a set predictor by centring keep their observed values: say so."""
    notes = []
    for variable in dict.fromkeys(variables):
        derived = [c.name for c in sample.spec.centering if c.variable == variable]
        if derived:
            notes.append(f"{', '.join(derived)} (made from {variable} by centring) keep their observed values "
                         f"when {variable} is set.")
    return notes


def _grid(sample: _Sample, at: Sequence[Setting]) -> list[dict]:
    names = [s.variable for s in at]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(f"--at {repeated[0]} is given twice; list its values once (VAR=v1,v2)")
    values = [sample.resolve(s) for s in at]
    return [dict(zip(names, combination)) for combination in itertools.product(*values)]


def _derivatives(sample: _Sample, variable: str, settings: dict, scale: str = "xb"):
    """(label, value, gradient) triples: the average derivative (continuous) or the change from the
    base level (factor), on ``scale``."""
    if variable in sample.factor_levels:
        base = sample.base_level(variable)
        base_value, base_gradient = sample.measure({**settings, variable: base}, scale)
        out = []
        for level in sample.factor_levels[variable]:
            if level != base:
                value, gradient = sample.measure({**settings, variable: level}, scale)
                out.append((f"{_level_text(level)} vs {_level_text(base)}", value - base_value,
                            gradient - base_gradient))
        return out
    values = sample.distinct[variable].to_numpy(dtype=float)  # per distinct row, as mean_row takes them
    if variable in settings:
        values = np.full(values.size, float(settings[variable]))
    observed = sample.frame[variable].to_numpy(dtype=float)
    step = 1e-4 * max(float(np.std(observed)), float(np.mean(np.abs(observed))), 1.0)
    rest = {k: v for k, v in settings.items() if k != variable}
    up_value, up_gradient = sample.measure({**rest, variable: values + step}, scale)
    down_value, down_gradient = sample.measure({**rest, variable: values - step}, scale)
    return [("", (up_value - down_value) / (2 * step), (up_gradient - down_gradient) / (2 * step))]


def _at_label(settings: dict) -> str:
    return ", ".join(f"{name}={_level_text(value)}" for name, value in settings.items())


def _level_text(value) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _same_level(written, level) -> bool:
    """Whether ``written`` (a number or text, e.g. from a column name or the command line) names ``level``."""
    if _is_number(written) and _is_number(level):
        return float(written) == float(level)
    return str(written) == str(level)


def _levels_in_order(column: pd.Series) -> list:
    """A factor's levels present in the sample: a categorical's own order, else sorted."""
    present = pd.unique(column.dropna())
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [level for level in column.cat.categories if level in set(present)]
    return sorted(present)


SCALES = ("xb", "mu")
_LINK_SCALES = {"logit": "log-odds", "probit": "probit index", "log": "log of the expected count"}


def check_scale(result: FitResult, scale: str) -> str:
    """``scale`` checked against the fit: 'mu' needs a binary or count model (GLMM)."""
    scale = (scale or "xb").strip().lower()
    if scale not in SCALES:
        raise UserInputError(f"predict {scale!r}: use xb (the linear predictor) or mu (predicted probability or count)")
    if scale == "mu" and getattr(result, "family", None) is None:
        raise UserInputError("predict mu applies to binary and count models; a linear model's margins "
                             "are already on the outcome's scale (xb)")
    if scale == "mu" and getattr(result, "link", None) not in _LINK_SCALES:
        raise UserInputError(f"predict mu: the link {getattr(result, 'link', None)!r} is not supported")
    return scale


def scale_words(result: FitResult, scale: str) -> str:
    """What a margin measures, for titles: 'linear prediction' (with the GLMM's scale named) or the
    predicted probability or count."""
    link = getattr(result, "link", None) if getattr(result, "family", None) is not None else None
    if scale == "mu":
        return "predicted probability" if result.family == "binomial" else "predicted count"
    if link is None:
        return "linear prediction"
    return f"linear prediction: {_LINK_SCALES.get(link, link)}"


def scale_notes(result: FitResult, scale: str) -> list[str]:
    """Notes saying a GLMM's margins are not probabilities or counts, and that an offset is left out."""
    if getattr(result, "family", None) is None:
        return []
    notes = []
    spec = result.spec
    if scale == "xb":
        what = "probabilities" if result.family == "binomial" else "expected counts"
        notes.append(f"On the {_LINK_SCALES.get(result.link, result.link)} scale, not {what}; predict(mu) "
                     f"(command line: --predict mu) averages the predicted {what} instead.")
    else:
        notes.append("Mean over the rows of each row's predicted "
                     + ("probability" if result.family == "binomial" else "count")
                     + " with random effects at zero (Stata's predict(mu fixedonly)); not the "
                       "population-averaged mean, and not g^-1 of the mean linear prediction (emmeans' "
                       "type = 'response'); delta-method standard errors.")
    if scale == "mu" and spec is not None and getattr(spec, "binomial", None):
        notes.append(f"Probabilities per trial, not expected successes out of {spec.binomial} trials "
                     f"(Stata's mu after binomial({spec.binomial})).")
    offset = spec.exposure or spec.offset if spec is not None else None
    if offset:
        unit = f"per unit of {spec.exposure}" if spec.exposure else f"at {spec.offset} = 0"
        notes.append(f"The {'exposure' if spec.exposure else 'offset'} {offset} is left out (Stata's nooffset): "
                     f"margins are {unit}.")
    return notes


def inverse_link(link: str, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean g^-1(eta) and its derivative dmu/deta for the logit, probit and log links."""
    from scipy import special

    eta = np.asarray(eta, dtype=float)
    if link == "logit":
        mean = special.expit(eta)
        return mean, mean * (1.0 - mean)
    if link == "probit":
        return special.ndtr(eta), np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi)
    mean = np.exp(eta)
    return mean, mean


def _estimate(result: FitResult, value: float, gradient: np.ndarray, label: str):
    """A row from a margin and its gradient: exact L'b on the linear predictor; on the response
    scale the delta method (weights = gradient, constant = value - gradient'b, so the identity
    estimate = weights'b + constant of the row holds at the estimates)."""
    beta = coefficients(result)[1]
    constant = value - float(gradient @ beta)
    if abs(constant) <= 1e-12 * max(1.0, abs(value)):
        return estimate(result, gradient, label)
    return estimate(result, gradient, label, constant=constant)
