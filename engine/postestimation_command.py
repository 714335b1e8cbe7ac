"""Post-estimation commands typed as in Stata, for the window: lincom, margins, contrast, pwcompare.

    lincom ses + 2*ses#sector
    margins sector
    margins sector, dydx(ses)
    margins, at(ses=(-1 0 1) sector=1)
    contrast r.sector, at(ses=0)
    contrast pw.band, mcompare(holm)
    margins sector, predict(mu)          (binary and count models: mean predicted probability or count)
    pwcompare band, mcompare(bonferroni)

``at()`` takes ``var=value`` or ``var=(v1 v2 ...)`` (``mean`` for the sample mean) and, for a
factor, ``var`` alone for all its levels; ``mcompare()`` takes ``noadjust`` (or ``none``),
``bonferroni`` or ``holm``; ``base()`` picks the reference level of ``r.``. Anything else is
refused with a message naming it.
"""

from __future__ import annotations

import re

import pandas as pd

from engine.errors import UserInputError
from engine.linear_inference import PostEstimation
from engine.results import FitResult

COMMANDS = ("lincom", "margins", "contrast", "pwcompare")
_OPTION = re.compile(r"\s*([A-Za-z_]+)\s*(?:\(((?:[^()]|\([^()]*\))*)\))?")
_AT_ITEM = re.compile(r"\s*([A-Za-z_][\w]*)\s*(?:=\s*(\([^()]*\)|[^\s()]+))?")
_ADJUSTMENTS = {"noadjust": "none", "none": "none", "bonferroni": "bonferroni", "bon": "bonferroni",
                "holm": "holm"}


def run_postestimation(text: str, frame: pd.DataFrame, result: FitResult) -> PostEstimation:
    """Run one command (see the module notes) on ``result``, a fit of ``frame``."""
    from engine.lincom import lincom
    from engine.margins import contrast, margins

    text = text.strip()
    match = re.match(r"^([A-Za-z_]\w*)\s*(.*)$", text, re.DOTALL)
    command, rest = (match.group(1).lower(), match.group(2)) if match else ("", text)
    if command not in COMMANDS:
        raise UserInputError(f"unknown command {command or text!r}: use {', '.join(COMMANDS)}")
    if command == "lincom":
        if "," in rest:
            raise UserInputError("lincom takes no options here: write the combination only")
        return lincom(result, [rest])
    body, _, option_text = rest.partition(",")
    options = _options(option_text, command)
    names = body.split()
    if command == "margins":
        _allow(options, command, {"at", "dydx", "predict"})
        settings = [_setting(name) for name in names] + _at_settings(options.get("at", ""))
        return margins(frame, result, at=settings, dydx=options.get("dydx") or None,
                       scale=_scale(options.get("predict")))
    _allow(options, command, {"at", "mcompare", "base", "predict"})
    if len(names) != 1:
        raise UserInputError(f"{command} takes one factor, e.g. '{command} {'r.' if command == 'contrast' else ''}sector'")
    factor, pairwise = names[0], command == "pwcompare"
    if command == "contrast":
        prefix, dot, factor = factor.partition(".")
        if not dot or prefix.lower() not in ("r", "pw"):
            raise UserInputError(f"contrast {names[0]}: write r.FACTOR (against the base level) or pw.FACTOR (pairs)")
        pairwise = prefix.lower() == "pw"
    adjustment = _ADJUSTMENTS.get(options.get("mcompare", "noadjust").strip().lower())
    if adjustment is None:
        raise UserInputError(f"mcompare({options['mcompare']}): use noadjust, bonferroni or holm")
    base = options.get("base") or None
    if base is not None and pairwise:
        raise UserInputError("base() applies to r. contrasts, not to pairwise comparisons")
    return contrast(frame, result, factor, pairwise=pairwise, base=base, at=_at_settings(options.get("at", "")),
                    adjustment=adjustment, scale=_scale(options.get("predict")))


def _scale(text) -> str:
    """predict(mu) or predict(xb) (Stata's words; fixedonly, as every margin here, may be added)."""
    words = [w for w in (text or "xb").replace(",", " ").lower().split() if w not in ("fixedonly", "conditional(fixedonly)")]
    if len(words) != 1:
        raise UserInputError(f"predict({text}): write predict(xb) or predict(mu)")
    return words[0]


def _options(text: str, command: str) -> dict[str, str]:
    options: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _OPTION.match(text, position)
        if not match or match.end() == position:
            raise UserInputError(f"{command}: cannot read the options at {text[position:]!r}")
        options[match.group(1).lower()] = (match.group(2) or "").strip()
        position = match.end()
    return options


def _allow(options: dict[str, str], command: str, allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise UserInputError(f"{command}: unknown option {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _setting(name: str):
    from engine.margins import Setting

    if not re.match(r"^[A-Za-z_]\w*$", name):
        raise UserInputError(f"margins {name!r}: list factors by name (e.g. 'margins sector'); use at() for values")
    return Setting(name, None)


def _at_settings(text: str):
    from engine.margins import Setting

    settings = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _AT_ITEM.match(text, position)
        if not match or match.end() == position:
            raise UserInputError(f"at({text}): cannot read {text[position:]!r}; write var=value or var=(v1 v2)")
        name, values = match.group(1), match.group(2)
        if values is None:
            settings.append(Setting(name, None))
        else:
            settings.append(Setting.parse(f"{name}={values.strip('()')}"))
        position = match.end()
    return settings
