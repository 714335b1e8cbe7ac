"""Options shared by several subcommands (not a subcommand itself: the name starts with '_')."""

from __future__ import annotations

from engine.design import Design
from engine.errors import UserInputError


def parse_units(text: str) -> tuple[str, int]:
    """'dist_id=50' -> ('dist_id', 50); anything else is a UserInputError."""
    name, separator, value = text.partition("=")
    try:
        count = int(value)
    except ValueError:
        count = None
    if not separator or not name.strip() or count is None:
        raise UserInputError(f"--units {text!r}: write LEVEL=N, e.g. dist_id=50")
    return name.strip(), count


def apply_units(design: Design, unit_texts: list[str]) -> Design:
    """The design with each --units LEVEL=N applied; an unknown level fails, naming the levels."""
    for text in unit_texts:
        level_name, count = parse_units(text)
        design.level(level_name)
        design = design.with_units(level_name, count)
    return design
