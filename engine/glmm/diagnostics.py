"""Warnings particular to binary and count outcomes: separation and groups without variation."""

from __future__ import annotations

import numpy as np

from engine.glmm.family import Family
from engine.mixed.hierarchy import Hierarchy

LARGE_COEFFICIENT = 10.0  # |b| beyond this on the logit/probit scale means probabilities of 0 or 1


def data_warnings(family: Family, spec, y: np.ndarray, x: np.ndarray, names: list[str], hierarchy: Hierarchy,
                  beta: np.ndarray) -> tuple[list[str], list[str]]:
    """(warnings, notes): separation is a warning; groups whose outcome never varies are a note,
    and a warning when they are the majority of a level's groups."""
    warnings = _separation_warnings(y, x, names, beta) if family.name == "binomial" and family.trials is None else []
    notes = []
    for level, share, text in _constant_groups(family, spec, y, hierarchy):
        # with a few rows per group (two semesters per student) most groups are constant by chance
        few_rows = hierarchy.rows_per_group(level).mean() < 5
        (warnings if share >= 0.5 and not few_rows else notes).append(text)
    return warnings, notes


def _separation_warnings(y, x, names, beta) -> list[str]:
    out = []
    for j, name in enumerate(names):
        if name == "_cons":
            continue
        column = x[:, j]
        values = np.unique(column)
        if values.size == 2:
            for value in values:
                outcomes = y[column == value]
                if outcomes.size and (outcomes.min() == outcomes.max()):
                    out.append(
                        f"Quasi-separation: every row with {name} = {value:g} has {spec_outcome_text(outcomes[0])}; "
                        f"its coefficient ({beta[j]:.3g}) drifts towards infinity and its standard error is not "
                        f"meaningful. Drop or merge that category, or use a penalised (Firth) model.")
                    break
        if abs(beta[j]) > LARGE_COEFFICIENT and not any(name in w for w in out):
            out.append(
                f"Possible quasi-separation: the coefficient of {name} is {beta[j]:.3g} on the latent scale "
                f"(probabilities near 0 or 1); check whether {name} predicts the outcome perfectly.")
    return out


def spec_outcome_text(value: float) -> str:
    return f"outcome {value:g}"


def _constant_groups(family, spec, y, hierarchy) -> list[tuple[int, float, str]]:
    out = []
    for level in range(hierarchy.n_levels):
        codes = hierarchy.row_codes[level]
        count = hierarchy.group_counts[level]
        size = np.bincount(codes, weights=family.trials, minlength=count) if family.trials is not None else \
            np.bincount(codes, minlength=count)
        total = np.bincount(codes, weights=y, minlength=count)
        if family.name == "binomial":
            all_zero = int(np.sum(total == 0))
            all_one = int(np.sum(total == size))
            if all_zero + all_one == 0:
                continue
            share = (all_zero + all_one) / count
            out.append((level, share,
                f"At level {spec.levels[level].name}, {all_zero:,} of {count:,} groups have {spec.outcome} = 0 in every "
                f"row and {all_one:,} have {spec.outcome} = 1 in every row. They stay in the model (their "
                f"predicted effects are shrunk towards 0), but they carry little information about the variance"
                + (" at that level, which the Laplace approximation may then misjudge" if share >= 0.5 else "") + "."))
        else:
            all_zero = int(np.sum(total == 0))
            if all_zero:
                out.append((level, all_zero / count, f"At level {spec.levels[level].name}, {all_zero:,} of {count:,} groups have no events "
                           f"({spec.outcome} = 0 in every row)."))
    return out


def glmm_structure_warnings(hierarchy: Hierarchy, frame, family: Family) -> tuple[list[str], list[str]]:
    """(warnings, notes): the linear engine's nesting warnings, with a level of one row per group
    judged for this outcome. A count or a number of successes out of trials has no residual
    variance to confound such a level with: it is an observation-level effect that models
    overdispersion (lme4's (1 | obs)), and is identified. A single 0/1 value per group is not."""
    from engine.mixed.hierarchy import structure_warnings

    warnings = structure_warnings(hierarchy, frame)
    if not hierarchy.n_levels or hierarchy.rows_per_group(hierarchy.n_levels - 1).max() > 1:
        return warnings, []
    leaf = hierarchy.level_names[-1]
    warnings = [w for w in warnings if not w.startswith(f"Level {leaf} has one observation per group")]
    if family.name == "binomial" and family.trials is None:
        warnings.append(f"Level {leaf} has one observation per group: with one 0/1 outcome per group its variance "
                        f"is not identified (it only bends the link), so its estimate is not meaningful.")
        return warnings, []
    kind, law = ("counts", "Poisson") if family.name == "poisson" else ("successes", "binomial")
    return warnings, [f"Level {leaf} has one observation per group: an observation-level effect, which models "
                      f"overdispersion ({kind} more variable than the {law} distribution allows)."]
