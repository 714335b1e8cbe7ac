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
    """The whole report: warnings, header, group table, coefficients, random effects, tests, notes."""
    if result.family is not None:  # binary and count outcomes print as Stata's melogit / mepoisson
        from engine.glmm.report import format_glmm_report

        return format_glmm_report(result)  # variances, as melogit prints them
    lines: list[str] = []
    # Warnings go first, where the eye starts: they can change how everything below is read.
    for warning in result.warnings:
        lines += textwrap.wrap(f"Warning: {warning}", 78, subsequent_indent="         ")
    if result.warnings:
        lines.append("")
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
        lines += _variance_summary(result)
    if result.estimator in ("fe", "re"):
        lines += _panel_footer(result)
    notes = list(result.notes)
    if result.estimator == "mixed" and result.method == "REML":
        notes.append("REML fit: its log restricted-likelihood cannot compare models whose fixed effects "
                     "differ; fit both by ML (--ml) for that.")
    for note in notes:
        lines += textwrap.wrap(f"Note: {note}", 78, subsequent_indent="      ")
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
        _, labels = name_column([g.level for g in result.groups], 15, limit=15)
        for g in result.groups:
            lines.append(f"{labels[g.level]:>15} | {g.groups:>10,} {g.min:>10,} {g.mean:>10.1f} {g.max:>10,}")
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


NAME_WIDTH_LIMIT = 32  # a name column wider than this is abbreviated (uniquely) instead


def abbreviate(name: str, width: int) -> str:
    """``name`` in at most ``width`` characters, Stata-like: the start, ``~``, the end."""
    if len(name) <= width:
        return name
    tail = max(1, (width - 1) // 3)
    return name[: width - 1 - tail] + "~" + name[-tail:]


def name_column(names: list[str], minimum: int, limit: int = NAME_WIDTH_LIMIT) -> tuple[int, dict[str, str]]:
    """The width of a table's name column and the label of each name in it.

    Names are shown in full when the longest fits within ``limit``; otherwise the column is
    ``limit`` wide and longer names are abbreviated with ``~``, widening until no two labels
    are alike (so two terms never look the same). Returns (width, {name: label}).
    """
    names = list(dict.fromkeys(names))
    longest = max([minimum, *(len(n) for n in names)])
    width = min(longest, max(minimum, limit))
    while True:
        labels = {n: abbreviate(n, width) for n in names}
        if len(set(labels.values())) == len(names) or width >= longest:
            return width, labels
        width += 1


def _coefficient_table(result: FitResult) -> list[str]:
    if result.dfmethod not in (None, "z"):
        return _coefficient_table_with_df(result)
    t_stat = any(row.df is not None for row in result.fixed)
    stat, p_label = ("t", "P>|t|") if t_stat else ("z", "P>|z|")
    width, labels = name_column([row.term for row in result.fixed], 12)
    name = abbreviate(result.depvar or "", width)
    rule = "-" * (width + 66)
    lines = [rule,
             f"{name:>{width}} |      Coef.   Std. Err.      {stat}    {p_label}     [95% Conf. Interval]",
             "-" * (width + 1) + "+" + "-" * 64]
    for row in result.fixed:
        lines.append(f"{labels[row.term]:>{width}} | {_num(row.coef)}  {_num(row.se)} {row.z:8.2f}   "
                     f"{_p(row.p)}    {_num(row.ci[0])}  {_num(row.ci[1])}")
    lines.append(rule)
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
    kinds = {level.name: level for level in (result.spec.levels if result.spec else [])}
    rows = [_crossed_label(row, kinds.get(row.level)) for row in rows]  # Stata's var(R.x) for crossed factors
    width, labels = name_column([row.param for row in rows], 27, limit=40)
    rule = "-" * (width + 51)
    lines = ["", rule, f"{'  Random-effects Parameters':<{width + 2}}|   Estimate   Std. Err.     [95% Conf. Interval]",
             "-" * (width + 2) + "+" + "-" * 48]
    current = None
    kinds = {level.name: level for level in (result.spec.levels if result.spec else [])}
    for row in rows:
        if row.level != current:
            if current is not None:
                lines.append("-" * (width + 2) + "+" + "-" * 48)
            current = row.level
            if row.level != "Residual":
                level = kinds.get(row.level)
                structure = "Identity" if level is None or len(level.terms) == 1 else level.covariance.capitalize()
                lines.append(f"{_crossed_header(level) or row.level + ': ' + structure:<{width + 1}} |")
        lines.append(_random_row(row, labels[row.param], width))
    lines.append(rule)
    lines += _interval_footnote(result, rows)
    return lines


INTERVAL_METHODS = {
    "wald": "Wald (sds and variances on the log scale, correlations on the atanh scale)",
    "profile": "profile likelihood",
    "bootstrap": "parametric bootstrap, percentile",
}


def _interval_footnote(result: FitResult, rows: list[RandomParam]) -> list[str]:
    """Which method made the random-effects intervals (said only when it is not the default)."""
    if result.ci_method == "wald":
        return []
    methods = list(dict.fromkeys(row.ci_method for row in rows if row.ci is not None))
    if not methods:
        return []
    main = result.ci_method if result.ci_method in methods else methods[0]
    scope = "95% intervals, fixed and random" if main == "bootstrap" else "95% intervals"
    text = f"{scope}: {INTERVAL_METHODS.get(main, main)}"
    if main == "bootstrap" and result.bootstrap is not None:
        run = result.bootstrap
        text += f", {run.reps - run.failed:,} of {run.reps:,} replicates (seed {run.seed})"
    others = [row.param for row in rows if row.ci is not None and row.ci_method != main]
    if others:
        text += f"; {', '.join(others)}: Wald"
    text += "."
    return textwrap.wrap(text, 78)


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


def _random_row(row: RandomParam, label: str | None = None, width: int = 27) -> str:
    ci = row.ci or [None, None]
    label = abbreviate(row.param, width) if label is None else label
    return f"{label:>{width}}  | {_num(row.estimate)}  {_num(row.se)}    {_num(ci[0])}  {_num(ci[1])}"


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


def _variance_summary(result: FitResult) -> list[str]:
    """estat icc, Nakagawa's R² and HLM's reliabilities of a mixed fit."""
    lines = []
    if result.icc:
        width = max(28, *(len(row.label) for row in result.icc))  # nested labels grow with the levels
        lines += ["", "Intraclass correlation", "-" * (width + 50),
                  f"{'Level':>{width}} |        ICC   Std. Err.     [95% Conf. Interval]", "-" * (width + 1) + "+" + "-" * 48]
        for row in result.icc:
            ci = row.ci or [None, None]
            lines.append(f"{row.label:>{width}} | {_num(row.icc)}  {_num(row.se)}    {_num(ci[0])}  {_num(ci[1])}")
        lines.append("-" * (width + 50))
    if result.r2 and "marginal" in result.r2:
        lines.append(f"R-squared (Nakagawa): marginal = {result.r2['marginal']:.4f}  "
                     f"conditional = {result.r2['conditional']:.4f}")
    if result.reliability:
        lines.append("Reliability of the intercepts (HLM): " + "  ".join(
            f"{row.level} = {row.reliability:.4f}" for row in result.reliability))
    return lines
