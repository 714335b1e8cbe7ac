"""Turn a simulation ``Design`` into the textbook trial it is, for analytic power.

Textbook levels count from the individuals up: level 1 is the rows (one observation each); a
design level whose units hold one row each is the same as level 1 and merges into it. Variances
come from the design: each level's intercept variance, covariates' explained variance (their R²
at the level where they vary), and a random slope on the treatment at the site level (omega).
"""

from __future__ import annotations

import math

from engine.design import OBSERVATION, Design
from engine.errors import UserInputError
from engine.power.analytic import TrialPlan


def plan_from_design(design: Design, alpha: float = 0.05, target: float = 0.8) -> tuple[TrialPlan, list[str]]:
    """The textbook plan matching ``design`` and notes on what was assumed.

    Raises UserInputError, naming the reason, when no textbook formula fits (e.g. the seed's
    student-semester treatment in five levels): simulate power with ``montecarlo`` instead.
    """
    design.validate()
    moving = [level.name for level in design.levels if level.move_prob > 0]
    if moving:
        raise UserInputError(f"{', '.join(moving)}: units move between occasions, so the levels are crossed, not "
                             f"nested; the textbook formulas assume nesting: use montecarlo to simulate power")
    if design.crossed:
        names = ", ".join(factor.name for factor in design.crossed)
        raise UserInputError(f"{names}: crossed with the levels, not nested; the textbook formulas assume "
                             f"nesting: use montecarlo to simulate power")
    treatment = design.treatment
    if treatment is None:
        raise UserInputError("the design has no treatment: analytic power is for the treatment effect")
    notes: list[str] = []
    names = list(design.level_names)
    counts = []
    for level in design.levels:
        units = level.units
        if units.distribution != "fixed":
            notes.append(f"{level.name}: {units.describe()} units per parent; the formulas assume balance and use "
                         f"the average, {units.expected():g}")
        counts.append(units.expected())
    rows_per_unit = 1.0
    if design.occasions is not None:
        rows_per_unit = design.occasions.count * (1 - design.occasions.missing_prob)
        if design.occasions.missing_prob:
            notes.append(f"occasions missing with probability {design.occasions.missing_prob:g}: the formulas use "
                         f"the expected {rows_per_unit:g} rows per {names[-1]}")
    # Levels from the top; the bottom design level merges into level 1 when it holds one row per unit.
    variances = {level.name: level.sd ** 2 for level in design.levels}
    level1_variance = design.residual_sd ** 2
    textbook = names[:]
    units = counts[:]
    if rows_per_unit == 1.0:
        bottom = textbook.pop()
        level1_variance += variances.pop(bottom)
        level1_name = bottom
    else:
        units.append(rows_per_unit)
        level1_name = OBSERVATION
    if not textbook:
        raise UserInputError("the design has one row per unit at every level: there are no clusters to plan for")

    # Random slopes: a slope on the treatment is effect heterogeneity; other slopes add variance.
    omega, slope_notes = 0.0, []
    moments = design._variable_moments()
    for level in design.levels:
        for slope in level.slopes:
            if slope.variable == treatment.name:
                if level.name != textbook[0]:
                    raise UserInputError(
                        f"a random slope on the treatment at {level.name} has no textbook formula (only at the "
                        f"top level of a multisite trial)")
                omega = slope.sd ** 2 / level.sd ** 2 if level.sd > 0 else math.inf
                if slope.corr:
                    slope_notes.append("the treatment slope's correlation with the intercept is ignored")
            else:
                mean, mean_square = moments[slope.variable]
                extra = slope.sd ** 2 * mean_square + 2 * slope.corr * level.sd * slope.sd * mean
                key = level.name if level.name in variances else None
                if key is None:
                    level1_variance += extra
                else:
                    variances[key] += extra
    if math.isinf(omega):
        raise UserInputError("the treatment slope varies at a level without intercept variance: omega is undefined")
    notes += slope_notes

    # Covariates explain variance at the level where they vary.
    explained = {name: 0.0 for name in textbook}
    explained_level1 = 0.0
    covariates_top = 0
    for covariate in design.covariates:
        mean, mean_square = moments[covariate.name]
        variance = covariate.coef ** 2 * (mean_square - mean ** 2)
        where = covariate.level if covariate.level in explained else None
        if where is None:
            explained_level1 += variance
        else:
            explained[where] += variance
            if where == textbook[0]:
                covariates_top += 1
    if sum(variances[name] for name in textbook) + level1_variance <= 0:
        raise UserInputError("the design has no random variation: power is 1 for any effect")
    # PowerUp!'s convention: ICCs and effect sizes relative to the outcome's total variance within
    # arms (covariates included); R² the share of each level's variance the covariates explain.
    level_totals = {name: variances[name] + explained[name] for name in textbook}
    level1_total = level1_variance + explained_level1
    total = sum(level_totals.values()) + level1_total
    icc = [level_totals[name] / total for name in textbook]
    r2 = [explained[name] / level_totals[name] if level_totals[name] > 0 else 0.0 for name in textbook]
    r2.append(explained_level1 / level1_total if level1_total > 0 else 0.0)
    effect = treatment.effect / math.sqrt(total)

    depth = design.variable_depth(treatment.level)
    treated_level = textbook.index(treatment.level) if treatment.level in textbook else len(textbook)
    blocked = treatment.allocation == "fixed" and treatment.block is not None
    if treatment.allocation == "fixed":
        share = design.treated_share()
    else:
        share = treatment.probability
        notes.append(f"treatment drawn with probability {share:g} per unit; the formulas assume exactly that share "
                     f"is treated (a fixed allocation)")
    n_levels = len(textbook) + 1
    if not blocked and treated_level == 0:
        if n_levels > 4:
            raise UserInputError(f"a cluster-randomised trial with {n_levels} levels has no textbook formula "
                                 f"(2 to 4 levels); use montecarlo")
        design_name = f"crt{n_levels}"
        treatment_level = None
        if omega:
            raise UserInputError("a random treatment slope at the randomised level is not identified in a CRT")
    elif blocked and treatment.block == textbook[0] and n_levels in (2, 3) and treated_level >= 1:
        design_name = f"msrt{n_levels}"
        treatment_level = None
        if n_levels == 3:
            treatment_level = 2 if treated_level == 1 else 1
    else:
        where = "individuals" if depth >= len(design.levels) else treatment.level
        blocks = f"within {treatment.block}" if blocked else "without blocks"
        raise UserInputError(
            f"no textbook formula for a treatment on {where} {blocks} in {n_levels} levels (formulas cover "
            f"cluster-randomised trials with the top level randomised and multisite trials blocked by the top "
            f"level); use montecarlo to simulate power")
    plan_units = [int(round(units[0]))] + [max(1, int(round(u))) for u in units[1:]]
    if any(abs(a - b) > 1e-9 for a, b in zip(plan_units, units)):
        notes.append("unit counts rounded to whole numbers")
    plan = TrialPlan(design_name, plan_units, icc, effect=effect, treated_share=share, r2=r2,
                     covariates_top=covariates_top, omega=omega, treatment_level=treatment_level,
                     alpha=alpha, target=target)
    notes.append(f"effect {treatment.effect:g} = {effect:.4f} sd of the outcome within arms "
                 f"(levels {', '.join(textbook)} and {level1_name} as level 1)")
    return plan, notes
