"""Find the form field a ``Design.validate()`` message is about, so it can be marked there.

The engine's messages start with where the problem is ("level school_id: sd must be >= 0",
"treatment tutoring: probability must be <= 1", "occasions: count ...", "residual_sd ...");
this reads that prefix and the field name after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.design import Design

LEVELS, COVARIATES, OCCASIONS, TREATMENT = "levels", "covariates", "occasions", "treatment"
CROSSED = "crossed"
OUTCOME, RESIDUAL_SD, INTERCEPT = "outcome", "residual_sd", "intercept"


@dataclass(frozen=True)
class FieldLocation:
    """A section of the form, the row in its table (if any) and the field (e.g. "sd")."""

    section: str
    row: int | None = None
    attribute: str = ""


_INDEXED = re.compile(r"^(levels|covariates|crossed)\[(\d+)\]$")
_NAMED = re.compile(r"^(level|covariate|treatment|crossed factor) (\w+)$")
_ROW_LIMIT = re.compile(r"reduce units at a level such as (\w+)")


def locate_error(message: str, design: Design) -> FieldLocation | None:
    """The field ``message`` names, or None when it names none the form shows."""
    limit = _ROW_LIMIT.search(message)
    if limit:
        return FieldLocation(LEVELS, _row_of(design.level_names, limit.group(1)), "units")
    for bare in (RESIDUAL_SD, INTERCEPT):
        if message.startswith(bare + " "):
            return FieldLocation(bare)
    where, separator, rest = message.partition(": ")
    if not separator:
        return None
    attribute = _attribute(rest)
    if where == "levels":
        return FieldLocation(LEVELS, None, "")
    if where in (OUTCOME, OCCASIONS):
        return FieldLocation(where, None, attribute)
    if where == TREATMENT:
        return FieldLocation(TREATMENT, None, attribute)
    indexed = _INDEXED.match(where)
    if indexed:
        return FieldLocation(indexed.group(1), int(indexed.group(2)), attribute)
    named = _NAMED.match(where)
    if named:
        kind, name = named.groups()
        if kind == "treatment":
            return FieldLocation(TREATMENT, None, attribute)
        if kind == "level":
            return FieldLocation(LEVELS, _row_of(design.level_names, name), attribute)
        if kind == "crossed factor":
            return FieldLocation(CROSSED, _row_of([f.name for f in design.crossed], name), attribute)
        return FieldLocation(COVARIATES, _row_of([c.name for c in design.covariates], name), attribute)
    return None


def _attribute(rest: str) -> str:
    """The field a message is about: its first word ("sd must be ...", "units min must ...")."""
    if rest.startswith("random slope") or rest.startswith("the slopes"):
        return "slopes"
    first = rest.split(" ", 1)[0].strip(",")
    return first


def _row_of(names: list[str], name: str) -> int | None:
    return names.index(name) if name in names else None
