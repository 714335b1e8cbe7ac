"""Stata-like text reports of fit results (the seed's user reads Stata's `mixed` output)."""

from __future__ import annotations

import math
import textwrap

from engine.results import FitResult, RandomParam

RULE = "-" * 78


def _num(value: float | None, width: int = 10) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return " " * (width - 1) + "."
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e6 or magnitude < 1e-4):
        text = f"{value:.3e}"
    else:
        text = f"{value:.{max(0, 7 - len(str(int(magnitude))))}f}"
    return text.rjust(width)


def _p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "     ."
    return f"{value:6.3f}"


def format_fit_report(result: FitResult, variances: bool = False) -> str:
    """The whole report: header, group table, coefficients, random effects, tests, warnings."""
    lines: list[str] = []
    for centering in (result.spec.centering if result.spec else []):
        lines.append(f"Centring: {centering.describe()}")
    if result.estimator == "mixed":
        lines += _mixed_header(result)
    else:
        lines += _panel_header(result)
    lines += _coefficient_table(result)
    if result.estimator == "mixed" and result.random:
        lines += _random_table(result, variances)
        lines += _lr_footer(result)
    if result.estimator in ("fe", "re"):
        lines += _panel_footer(result)
    notes = list(result.notes)
    if result.estimator == "mixed" and result.method == "REML":
        notes.append("REML fit: its log restricted-likelihood cannot compare models whose fixed effects "
                     "differ; fit both by ML (--ml) for that.")
    for note in notes:
        lines += textwrap.wrap(f"Note: {note}", 78, subsequent_indent="      ")
    for warning in result.warnings:
        lines += textwrap.wrap(f"Warning: {warning}", 78, subsequent_indent="         ")
    return "\n".join(lines) + "\n"


def format_iteration_log(result: FitResult) -> str:
    label = "log restricted-likelihood" if result.method == "REML" else "log likelihood"
    return "\n".join(f"Iteration {i}:   {label} = {value:.8g}" for i, value in enumerate(result.iterations))


def _mixed_header(result: FitResult) -> list[str]:
    kind = "REML" if result.method == "REML" else "ML"
    label = "Log restricted-likelihood" if result.method == "REML" else "Log likelihood"
    lines = []
    if result.iterations:
        lines += [format_iteration_log(result), ""]
    title = f"Mixed-effects {kind} regression" if result.groups else f"Linear regression ({kind})"
    lines.append(f"{title:<50}Number of obs     = {result.nobs:>10,}")
    if len(result.groups) == 1:
        g = result.groups[0]
        lines.append(f"Group variable: {g.level:<33} Number of groups  = {g.groups:>10,}")
        lines.append("")
        lines.append(f"{'':<50}Obs per group:")
        lines.append(f"{'':<50}              min = {g.min:>10,}")
        lines.append(f"{'':<50}              avg = {g.mean:>10.1f}")
        lines.append(f"{'':<50}              max = {g.max:>10,}")
    elif result.groups:
        lines += ["", "-" * 59,
                  f"{'':16}|     No. of       Observations per Group",
                  f"{' Group Variable':<16}|     Groups    Minimum    Average    Maximum",
                  "-" * 16 + "+" + "-" * 42]
        for g in result.groups:
            lines.append(f"{g.level[:15]:>15} | {g.groups:>10,} {g.min:>10,} {g.mean:>10.1f} {g.max:>10,}")
        lines.append("-" * 59)
    lines.append("")
    lines += _df_method_lines(result)
    if result.wald is not None and result.wald.kind == "F":
        head = f"F({int(result.wald.df)}, {result.wald.df2:.2f})"
        lines.append(f"{'':<50}{head:<18}= {result.wald.stat:>10.2f}")
        lines.append(f"{label} = {result.loglik:<24.8g}{'':<{25 - len(label)}}Prob > F          = {result.wald.p:>10.4f}")
    elif result.wald is not None:
        lines.append(f"{'':<50}Wald chi2({int(result.wald.df)}){'':<{7 - len(str(int(result.wald.df)))}}= {result.wald.stat:>10.2f}")
        lines.append(f"{label} = {result.loglik:<24.8g}{'':<{25 - len(label)}}Prob > chi2       = {result.wald.p:>10.4f}")
    else:
        lines.append(f"{label} = {result.loglik:.8g}")
    lines.append("")
    return lines


DF_METHOD_NAMES = {"z": "z (large sample; Stata's default)", "residual": "Residual", "repeated": "Repeated",
                   "anova": "ANOVA", "satterthwaite": "Satterthwaite", "kroger": "Kenward-Roger"}


def _df_method_lines(result: FitResult) -> list[str]:
    """Which reference distribution the tests use, and (t tests) the range of the df, as Stata prints."""
    if result.dfmethod is None:
        return []
    name = DF_METHOD_NAMES.get(result.dfmethod, result.dfmethod)
    dfs = [row.df for row in result.fixed if row.df is not None]
    if not dfs:
        return [f"DF method: {name}", ""]
    return [f"{'DF method: ' + name:<50}DF:           min = {min(dfs):>10.2f}",
            f"{'':<50}              avg = {sum(dfs) / len(dfs):>10.2f}",
            f"{'':<50}              max = {max(dfs):>10.2f}", ""]


def format_joint_tests(result: FitResult) -> str:
    """Stata's `test` output for each joint test on the result, one block per test."""
    blocks = []
    for test in result.tests:
        lines = [f"Test of {' '.join(test.terms)}: every coefficient is 0"]
        lines += [f" ( {i})  {column} = 0" for i, column in enumerate(test.columns, start=1)]
        lines.append("")
        if test.F is not None:
            method = DF_METHOD_NAMES.get(test.dfmethod, test.dfmethod)
            lines.append(f"       F({test.df1}, {test.df2:.2f}) = {test.F:10.2f}      ({method} df)")
            lines.append(f"{'Prob > F':>15} = {test.p:10.4f}")
        else:
            lines.append(f"{'chi2(' + str(test.df1) + ')':>15} = {test.chi2:10.2f}")
            lines.append(f"{'Prob > chi2':>15} = {test.p:10.4f}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _panel_header(result: FitResult) -> list[str]:
    titles = {"ols": "Linear regression (OLS)", "fe": "Fixed-effects (within) regression",
              "re": "Random-effects GLS regression"}
    lines = [f"{titles.get(result.estimator, result.estimator):<50}Number of obs     = {result.nobs:>10,}"]
    for g in result.groups:
        lines.append(f"Group variable: {g.level:<33} Number of groups  = {g.groups:>10,}")
        lines.append(f"{'':<50}Obs per group: min = {g.min:>6,}  avg = {g.mean:.1f}  max = {g.max:,}")
    if result.r2:
        labels = {"r2": "R-squared", "r2_a": "Adj R-squared"}
        pieces = [f"{labels.get(key, 'R-sq ' + key)} = {value:.4f}" for key, value in result.r2.items()]
        if result.estimator == "ols" and result.sigma_e is not None:
            pieces.append(f"Root MSE = {result.sigma_e:.4f}")
        lines.append("  ".join(pieces))
    if result.wald is not None:
        if result.wald.kind == "F":
            lines.append(f"{'':<50}F({int(result.wald.df)},{int(result.wald.df2 or 0)}) = {result.wald.stat:.2f}   Prob > F = {result.wald.p:.4f}")
        else:
            lines.append(f"{'':<50}Wald chi2({int(result.wald.df)}) = {result.wald.stat:.2f}   Prob > chi2 = {result.wald.p:.4f}")
    if result.corr_u_xb is not None:
        lines.append(f"corr(u_i, Xb) = {result.corr_u_xb:.4f}")
    lines.append("")
    return lines


def _coefficient_table(result: FitResult) -> list[str]:
    if result.dfmethod not in (None, "z"):
        return _coefficient_table_with_df(result)
    t_stat = any(row.df is not None for row in result.fixed)
    stat, p_label = ("t", "P>|t|") if t_stat else ("z", "P>|z|")
    name = (result.depvar or "")[:12]
    lines = [RULE,
             f"{name:>12} |      Coef.   Std. Err.      {stat}    {p_label}     [95% Conf. Interval]",
             "-" * 13 + "+" + "-" * 64]
    for row in result.fixed:
        lines.append(f"{row.term[:12]:>12} | {_num(row.coef)}  {_num(row.se)} {row.z:8.2f}   {_p(row.p)}    "
                     f"{_num(row.ci[0])}  {_num(row.ci[1])}")
    lines.append(RULE)
    return lines


def _coefficient_table_with_df(result: FitResult) -> list[str]:
    """The coefficient table with each coefficient's denominator df (mixed models under a dfmethod)."""
    name = (result.depvar or "")[:12]
    rule = "-" * 88
    lines = [rule,
             f"{name:>12} |      Coef.   Std. Err.      t {'df':>10}    P>|t|     [95% Conf. Interval]",
             "-" * 13 + "+" + "-" * 74]
    for row in result.fixed:
        df = f"{row.df:10.2f}" if row.df is not None else " " * 9 + "."
        lines.append(f"{row.term[:12]:>12} | {_num(row.coef)}  {_num(row.se)} {row.z:8.2f} {df}   {_p(row.p)}    "
                     f"{_num(row.ci[0])}  {_num(row.ci[1])}")
    lines.append(rule)
    if result.dfmethod == "kroger":
        lines.append("Std. Err. are Kenward-Roger adjusted.")
    return lines


def _random_table(result: FitResult, variances: bool) -> list[str]:
    rows = result.random_variances if variances and result.random_variances else result.random
    lines = ["", RULE, "  Random-effects Parameters  |   Estimate   Std. Err.     [95% Conf. Interval]", "-" * 29 + "+" + "-" * 48]
    current = None
    kinds = {level.name: level for level in (result.spec.levels if result.spec else [])}
    for row in rows:
        if row.level != current:
            if current is not None:
                lines.append("-" * 29 + "+" + "-" * 48)
            current = row.level
            if row.level != "Residual":
                level = kinds.get(row.level)
                structure = "Identity" if level is None or len(level.terms) == 1 else level.covariance.capitalize()
                lines.append(f"{_crossed_header(level) or row.level + ': ' + structure:<28} |")
        lines.append(_random_row(_crossed_label(row, kinds.get(row.level))))
    lines.append(RULE)
    return lines


def _is_stata_crossed(level) -> bool:
    """A crossed factor with a random intercept only: Stata's `_all: R.x`."""
    return bool(getattr(level, "crossed", False)) and level.terms == ["_cons"]


def _crossed_header(level) -> str | None:
    return "_all: Identity" if _is_stata_crossed(level) else None


def _crossed_label(row: RandomParam, level) -> RandomParam:
    """Stata names a crossed factor's variance var(R.x); JSON keeps level x, param var(_cons)."""
    if not _is_stata_crossed(level):
        return row
    import dataclasses

    return dataclasses.replace(row, param=row.param.replace("(_cons)", f"(R.{level.name})"))


def _random_row(row: RandomParam) -> str:
    ci = row.ci or [None, None]
    return f"{row.param[:27]:>27}  | {_num(row.estimate)}  {_num(row.se)}    {_num(ci[0])}  {_num(ci[1])}"


def _lr_footer(result: FitResult) -> list[str]:
    test = result.lr_test
    if test is None:
        return []
    if test.kind == "chibar2":
        return [f"LR test vs. linear model: chibar2(01) = {test.stat:.2f}{'':8}Prob >= chibar2 = {test.p:.4f}"]
    return [f"LR test vs. linear model: chi2({int(test.df)}) = {test.stat:.2f}{'':12}Prob > chi2 = {test.p:.4f}",
            "",
            "Note: LR test is conservative and provided only for reference."]


def _panel_footer(result: FitResult) -> list[str]:
    lines = []
    for label, value in (("sigma_u", result.sigma_u), ("sigma_e", result.sigma_e), ("rho", result.rho)):
        if value is not None:
            lines.append(f"{label:>12} | {_num(value)}")
    theta = result.theta_re
    if isinstance(theta, dict):
        lines.append(f"{'theta':>12} | " + "  ".join(f"{key} {value:.4f}" for key, value in theta.items()))
    elif theta is not None:
        lines.append(f"{'theta':>12} | {_num(float(theta))}")
    lines.append(RULE)
    if result.f_test_u0 is not None:
        t = result.f_test_u0
        lines.append(f"F test that all u_i=0: F({int(t.df)}, {int(t.df2 or 0)}) = {t.stat:.2f}{'':10}Prob > F = {t.p:.4f}")
    if result.hausman is not None:
        h = result.hausman
        lines.append(f"Hausman test (fe vs re): chi2({int(h.df)}) = {h.stat:.2f}   Prob > chi2 = {h.p:.4f}")
    return lines
