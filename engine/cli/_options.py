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


def apply_allocation(design: Design, allocation: str | None, treated: int | None, block: str | None) -> Design:
    """The design with the --allocation/--treated/--block options applied to its treatment."""
    if allocation is None and treated is None and block is None:
        return design
    if design.treatment is None:
        raise UserInputError("--allocation, --treated and --block need a design with a treatment")
    if (treated is not None or block is not None) and allocation == "bernoulli":
        raise UserInputError("--treated and --block apply to --allocation fixed, not bernoulli")
    changed = design.copy()
    treatment = changed.treatment
    treatment.allocation = allocation or "fixed"
    if treatment.allocation == "bernoulli":
        treatment.treated = treatment.block = None
    if treated is not None:
        treatment.treated = treated
    if block is not None:
        treatment.block = block
    return changed


def check_seed(seed: int | None, option: str = "--seed") -> None:
    """A seed must be a whole number >= 0 (numpy's seeds are); None means a fresh one."""
    if seed is not None and seed < 0:
        raise UserInputError(f"{option} {seed}: a seed must be a whole number >= 0, e.g. {option} 1")


def check_outputs(outputs: list[tuple[str, str | None]], inputs: list[tuple[str, str | None]]) -> None:
    """Before any work: no output may overwrite an input or another output, and every output's
    folder must exist and be writable. Items are (option, path); empty paths are skipped."""
    from engine.atomic_write import check_writable, refuse_overwriting

    refuse_overwriting(outputs, inputs)
    for option, path in outputs:
        if path:
            check_writable(path, option)
