"""Stata-like report of a GLMM fit (melogit / meprobit / mepoisson output)."""

from __future__ import annotations

import textwrap

from engine.report import RULE, _crossed_label, _is_stata_crossed, _num, _p, format_iteration_log
from engine.results import FitResult

TITLES = {("binomial", "logit"): "Mixed-effects logistic regression",
          ("binomial", "probit"): "Mixed-effects probit regression",
          ("poisson", "log"): "Mixed-effects Poisson regression"}
# The single-level models (no random effects): Stata's logit, probit and poisson headers.
SINGLE_LEVEL_TITLES = {("binomial", "logit"): "Logistic regression", ("binomial", "probit"): "Probit regression",
                       ("poisson", "log"): "Poisson regression"}
BASELINE = {("binomial", "logit"): "logistic", ("binomial", "probit"): "probit", ("poisson", "log"): "Poisson"}


def format_glmm_report(result: FitResult, variances: bool = True) -> str:
    """Header, group table, coefficients (or odds ratios / IRRs), variance components, LR test, ICCs."""
    spec = result.spec
    lines: list[str] = []
    # Warnings first, where the eye starts (as the linear report on main does).
    for warning in result.warnings:
        lines += textwrap.wrap(f"Warning: {warning}", 78, subsequent_indent="         ")
    if result.warnings:
        lines.append("")
    for centering in (spec.centering if spec else []):
        lines.append(f"Centring: {centering.describe()}")
    if result.iterations:
        lines += [format_iteration_log(result), ""]
    single_level = not result.random  # no random effects: nothing to integrate
    if single_level:
        title = SINGLE_LEVEL_TITLES.get((result.family, result.link), f"GLM ({result.family}, {result.link})")
    else:
        title = TITLES.get((result.family, result.link), f"Mixed-effects GLM ({result.family}, {result.link})")
    lines.append(f"{title:<48}Number of obs     = {result.nobs:>10,}")
    lines += _groups(result)
    if not single_level:
        method = "laplace" if (result.nagq or 1) <= 1 else "mcaghermite"
        lines.append(f"{'Integration method: ' + method:<48}Integration pts.  = {result.nagq or 1:>10}")
        lines.append("")
    if result.wald is not None:
        df = int(result.wald.df)
        lines.append(f"{'':<48}{'Wald chi2(' + str(df) + ')':<18}= {result.wald.stat:>10.2f}")
        lines.append(f"{'Log likelihood = ' + format(result.loglik, '.8g'):<48}Prob > chi2       = {result.wald.p:>10.4f}")
    else:
        lines.append(f"Log likelihood = {result.loglik:.8g}")
    lines += _coefficients(result)
    lines += _variance_components(result, variances)
    lines += _lr_line(result)
    if result.latent_icc:
        lines += ["", f"Intraclass correlations on the latent scale (residual variance "
                      f"{'pi^2/3' if result.link == 'logit' else '1'}, Stata's estat icc):"]
        lines.append(f"  {'Level':<40} {'ICC':>10} {'Std. Err.':>10}   [95% Conf. Interval]")
        for row in result.latent_icc:
            ci = row.ci or [None, None]
            lines.append(f"  {row.level[:40]:<40} {_num(row.estimate)} {_num(row.se)}   {_num(ci[0])}  {_num(ci[1])}")
    notes = [f"Integration: {result.integration}."] if result.integration else []
    if spec is not None and spec.offset:
        notes.append(f"{spec.offset} is an offset (coefficient 1).")
    if spec is not None and spec.exposure:
        notes.append(f"ln({spec.exposure}) is an offset (coefficient 1): counts are per unit of {spec.exposure}.")
    if result.link == "probit" and (result.nagq or 1) <= 1 and not single_level:
        notes.append("Laplace for probit uses the expected curvature at the modes, as lme4's glmer "
                     "(Stata's intpoints(1) uses the observed one; the two differ slightly).")
    for note in notes + list(result.notes):
        lines += textwrap.wrap(f"Note: {note}", 78, subsequent_indent="      ")
    return "\n".join(lines) + "\n"


def _groups(result: FitResult) -> list[str]:
    if len(result.groups) == 1:
        g = result.groups[0]
        return [f"Group variable: {g.level:<31} Number of groups  = {g.groups:>10,}", "",
                f"{'':<48}Obs per group:", f"{'':<48}              min = {g.min:>10,}",
                f"{'':<48}              avg = {g.mean:>10.1f}", f"{'':<48}              max = {g.max:>10,}", ""]
    if not result.groups:
        return [""]
    lines = ["", "-" * 59, f"{'':16}|     No. of       Observations per Group",
             f"{' Group Variable':<16}|     Groups    Minimum    Average    Maximum", "-" * 16 + "+" + "-" * 42]
    for g in result.groups:
        lines.append(f"{g.level[:15]:>15} | {g.groups:>10,} {g.min:>10,} {g.mean:>10.1f} {g.max:>10,}")
    return lines + ["-" * 59, ""]


def _coefficients(result: FitResult) -> list[str]:
    eform = bool(result.fixed_eform)
    rows = result.fixed_eform if eform else result.fixed
    label = ("Odds Ratio" if result.family == "binomial" else "IRR") if eform else "Coef."
    name = (result.depvar or "")[:12]
    lines = [RULE, f"{name:>12} | {label:>10}   Std. Err.      z    P>|z|     [95% Conf. Interval]",
             "-" * 13 + "+" + "-" * 64]
    for row in rows:
        lines.append(f"{row.term[:12]:>12} | {_num(row.coef)}  {_num(row.se)} {row.z:8.2f}   {_p(row.p)}    "
                     f"{_num(row.ci[0])}  {_num(row.ci[1])}")
    spec = result.spec
    for column, text in ((spec.offset, spec.offset), (spec.exposure, f"ln({spec.exposure})")) if spec else ():
        if column:
            lines.append(f"{text[:12]:>12} | {1.0:>10.0f}  (offset)")
    return lines


def _variance_components(result: FitResult, variances: bool) -> list[str]:
    rows = result.random_variances if variances else result.random
    levels = {level.name: level for level in (result.spec.levels if result.spec else [])}
    lines = ["-" * 13 + "+" + "-" * 64]
    for row in rows:
        ci = row.ci or [None, None]
        crossed = _is_stata_crossed(levels.get(row.level))
        if crossed:  # Stata's `_all: R.x`: the equation _all, the parameter var(R.x); JSON keeps level x
            row = _crossed_label(row, levels[row.level])
        lines.append(f"{('_all' if crossed else row.level)[:12]:<12} |")
        lines.append(f"{_abbreviated(row.param):>12} | {_num(row.estimate)}  {_num(row.se)}{'':20}{_num(ci[0])}  {_num(ci[1])}")
        lines.append("-" * 13 + "+" + "-" * 64)
    lines[-1] = RULE
    if result.fixed_eform:
        base = "odds" if result.family == "binomial" else "incidence rate"
        lines.append(f"Note: Estimates are transformed only in the first equation; _cons estimates baseline {base}"
                     + (" (conditional on zero random effects)." if result.groups else "."))
    return lines


def _abbreviated(name: str, width: int = 12) -> str:
    """Stata's abbreviation of a long name: its start, a tilde and its last two characters."""
    return name if len(name) <= width else name[: width - 3] + "~" + name[-2:]


def _lr_line(result: FitResult) -> list[str]:
    test = result.lr_test
    if test is None:
        return []
    model = BASELINE.get((result.family, result.link), "single-level")
    if test.kind == "chibar2":
        return [f"LR test vs. {model} model: chibar2(01) = {test.stat:.2f}{'':6}Prob >= chibar2 = {test.p:.4f}"]
    return [f"LR test vs. {model} model: chi2({int(test.df)}) = {test.stat:.2f}{'':10}Prob > chi2 = {test.p:.4f}",
            "", "Note: LR test is conservative and provided only for reference."]
