"""Read an lme4 formula into a ModelSpec: the second way to write any model the program fits.

Fixed terms map to Stata notation: ``x`` -> ``x``, ``x:z`` -> ``c.x#c.z``, ``x*z`` -> ``c.x##c.z``,
``factor(g)`` -> ``i.g``, ``I(x^2)`` -> ``c.x#c.x``. Random terms: ``(1|g)``, ``(x|g)`` (correlated:
unstructured), ``(0+x|g)``, ``(1|g) + (0+x|g)`` and ``(1+x||g)`` (independent), ``(1|a/b)`` (b
nested in a) and ``(1|a:b)``. The longest chain of groupings that extend one another, ``a``,
``a:b``, ``a:b:c``, becomes the nested levels; every other grouping is a crossed factor.
Anything else is refused with a message rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.errors import UserInputError

_NAME = r"[A-Za-z_.][A-Za-z0-9_.]*"
_NAME_RE = re.compile(rf"^{_NAME}$")
_FACTOR_RE = re.compile(rf"^(?:factor|as\.factor)\(\s*({_NAME})\s*\)$")
_POWER_RE = re.compile(rf"^I\(\s*({_NAME})\s*\^\s*([0-9]+)\s*\)$")


def parse_lme4_formula(formula: str, method: str | None = None):
    """A ModelSpec for ``formula``; lme4's default method, REML, unless ``method`` says otherwise."""
    from engine.model_spec import ModelSpec
    from engine.r_calls import call_name, normalised_call, parse_lmer_call

    call = call_name(formula)
    if call == "lmer":
        return parse_lmer_call(formula, method)
    if call == "glmer":
        from engine.glmm.spec import parse_glmer_call

        spec = parse_glmer_call(normalised_call(formula))
        return spec.replace(method=method) if method else spec
    text = formula.strip()
    _check_formula_text(text, formula)
    if text.count("~") != 1:
        raise UserInputError(f"formula {formula!r} needs exactly one '~' between the outcome and the terms")
    outcome, rhs = (part.strip() for part in text.split("~"))
    if not _NAME_RE.match(outcome):
        transformed = " (functions of the outcome are not applied: make a column holding it)" if "(" in outcome else ""
        raise UserInputError(f"formula {formula!r}: the outcome must be one column name, not {outcome!r}{transformed}")
    fixed_pieces, random_pieces = _split_terms(rhs, formula)
    constant = True
    fixed: list[str] = []
    for piece in fixed_pieces:
        if piece == "1":  # as in R, the last of 1, 0 and -1 decides: y ~ 0 + x + 1 keeps the intercept
            constant = True
            continue
        if piece in ("0", "-1"):
            constant = False
            continue
        for term in _fixed_term(piece):
            if _term_key(term) not in {_term_key(seen) for seen in fixed}:  # R keeps x:z once, also as z:x
                fixed.append(term)
    terms = [term for piece in random_pieces for term in _random_terms(piece)]
    levels = _levels(terms)
    fixed = fixed if constant else _first_factor_in_full(fixed, formula)
    return ModelSpec(outcome=outcome, fixed=fixed, levels=levels, method=(method or "REML"), constant=constant)


def _split_terms(rhs: str, formula: str) -> tuple[list[str], list[str]]:
    """Top-level '+' pieces (a leading '-1' / '- 1' kept as '-1'), fixed ones and bracketed random ones."""
    pieces, depth, current = [], 0, ""
    for char in rhs:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise UserInputError(f"formula {formula!r}: unbalanced parentheses")
        if char in "+-" and depth == 0:
            if current.strip():
                pieces.append(current.strip())
            current = "-" if char == "-" else ""
            continue
        current += char
    if depth != 0:
        raise UserInputError(f"formula {formula!r}: unbalanced parentheses")
    if current.strip():
        pieces.append(current.strip())
    fixed, random = [], []
    for piece in pieces:
        compact = re.sub(r"\s+", "", piece)
        if compact.startswith("-") and compact != "-1":
            raise UserInputError(f"formula {formula!r}: removing terms ({piece!r}) is not supported; only -1")
        if compact.startswith("(") and compact.endswith(")") and "|" in compact:
            random.append(compact[1:-1])
        else:
            fixed.append(compact)
    return fixed, random


def _term_key(term: str) -> tuple:
    """The same for a term written in any order of its factors (c.x#c.z and c.z#c.x)."""
    return ("##" in term, tuple(sorted(term.replace("##", "#").split("#"))))


def _check_formula_text(text: str, formula: str) -> None:
    """Refuse R formula syntax that this reader would otherwise misread or report obscurely."""
    outcome, _, rhs = text.partition("~")
    depth = 0
    for char in rhs:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            raise UserInputError(
                f"formula {formula!r}: a formula takes no arguments after a comma; write the call "
                f"lmer(y ~ ..., data = d, REML = FALSE) (or glmer(...)), or use --ml / --reml")
    if re.search(r"(^|[+~\s])\.(\s*($|[+)]))", "~" + rhs):
        raise UserInputError(f"formula {formula!r}: '.' (every other column) is not supported; name the predictors")


# R functions of columns: refused by name, since the raw column would be a different model.
_FUNCTION_ADVICE = {
    "offset": "an offset in a linear model is not supported: subtract it from the outcome (a new column y - z)",
    "poly": "orthogonal polynomials are not supported: write x + I(x^2) (the same fit, other coefficients)",
    "C": "contrasts are not supported: write factor(x) (treatment contrasts, base level the lowest)",
    "relevel": "write factor(x); the base level is the lowest (in Stata syntax, ib#.x chooses it)",
}


def _function_refusal(piece: str) -> UserInputError | None:
    function = re.match(r"^([A-Za-z_.][A-Za-z0-9_.]*)\(", piece)
    if function is None or function.group(1) in ("I", "factor", "as.factor"):
        return None
    name = function.group(1)
    advice = _FUNCTION_ADVICE.get(name, f"make a column holding {piece} in the data file and use that column")
    return UserInputError(f"term {piece!r}: functions of columns such as {name}() are not applied here; {advice}")


def _fixed_term(piece: str) -> list[str]:
    refusal = _function_refusal(piece)
    if refusal is not None:
        raise refusal
    power = re.fullmatch(r"(\(.*\)|[A-Za-z_.][A-Za-z0-9_.]*)\^([0-9]+)", piece)
    if power is not None:
        inside = power.group(1)
        if inside.startswith("("):
            raise UserInputError(
                f"term {piece!r}: in an R formula (a + b)^{power.group(2)} means all interactions of a and b up to "
                f"order {power.group(2)}; write them out, e.g. a*b for (a + b)^2")
        raise UserInputError(
            f"term {piece!r}: in an R formula {inside}^{power.group(2)} is {inside} crossed with itself, which is "
            f"just {inside} (lme4 fits {inside}, not its power); write I({inside}^{power.group(2)}) for the power, "
            f"or {inside}")

    if "*" in piece:
        factors = [_fixed_factor(f, piece) for f in piece.split("*")]
        return ["##".join(factors)]
    factors = piece.split(":")
    if len(factors) == 1:
        return [_single(piece)]
    return ["#".join(_fixed_factor(f, piece) for f in factors)]


def _single(piece: str) -> str:
    power = _POWER_RE.match(piece)
    if power:
        name, exponent = power.group(1), int(power.group(2))
        if exponent < 1:
            raise UserInputError(f"term {piece!r}: only positive whole powers are supported")
        return name if exponent == 1 else "#".join([f"c.{name}"] * exponent)
    factor = _FACTOR_RE.match(piece)
    if factor:
        return f"i.{factor.group(1)}"
    if _NAME_RE.match(piece):
        return piece
    raise UserInputError(f"fixed term {piece!r} cannot be mapped to a model term; write x, x:z, x*z, "
                         f"factor(g) or I(x^2)")


def _fixed_factor(piece: str, whole: str) -> str:
    """One factor inside an interaction: c.x for a column, i.g for factor(g)."""
    refusal = _function_refusal(piece)
    if refusal is not None:
        raise refusal
    factor = _FACTOR_RE.match(piece)
    if factor:
        return f"i.{factor.group(1)}"
    if _NAME_RE.match(piece):
        return f"c.{piece}"
    raise UserInputError(f"interaction {whole!r}: {piece!r} cannot be mapped; write columns or factor(g)")


@dataclass
class _RandomTerm:
    grouping: tuple[str, ...]
    intercept: bool
    slopes: list[str] = field(default_factory=list)
    correlated: bool = True


def _random_terms(inside: str) -> list[_RandomTerm]:
    """One bracketed term, e.g. '1+x|school/class', expanded into one term per grouping."""
    double = "||" in inside
    effects, _, group = inside.partition("||" if double else "|")
    if not group:
        raise UserInputError(f"random term ({inside}) needs a grouping after '|'")
    intercept, slopes = True, []
    for piece in filter(None, re.split(r"\+", effects.replace("-1", "+0"))):
        if piece == "1":
            intercept = True
        elif piece == "0":
            intercept = False
        elif _NAME_RE.match(piece):
            slopes.append(piece)
        else:
            raise UserInputError(f"random term ({inside}): {piece!r} cannot be mapped; random slopes must be columns")
    if not intercept and not slopes:
        raise UserInputError(f"random term ({inside}) has no random effect")
    if "/" in group and ":" in group:
        raise UserInputError(f"random term ({inside}): mix of '/' and ':' in the grouping is not supported")
    names = group.split("/") if "/" in group else [group]
    for name in group.replace("/", ":").split(":"):
        if not _NAME_RE.match(name):
            raise UserInputError(f"random term ({inside}): grouping {name!r} is not a column name")
    if "/" in group:
        groupings = [tuple(names[: depth + 1]) for depth in range(len(names))]
    else:
        groupings = [tuple(group.split(":"))]
    correlated = not double and len(slopes) + int(intercept) > 1
    return [_RandomTerm(g, intercept, list(slopes), correlated) for g in groupings]


def _levels(terms: list[_RandomTerm]):
    from engine.model_spec import stata_level_order

    merged: dict[tuple[str, ...], list[_RandomTerm]] = {}
    for term in terms:
        merged.setdefault(term.grouping, []).append(term)
    chain = _longest_chain(list(merged))
    levels = []
    for grouping in chain + [g for g in merged if g not in chain]:
        parts = merged[grouping]
        level = _merge(grouping, parts)
        if grouping not in chain:
            above = list(grouping[:-1])
            if above and (tuple(above) not in chain):
                raise UserInputError(
                    f"grouping {':'.join(grouping)}: an interaction of ids is understood only below nested "
                    f"levels ({'/'.join(above)} must be written as nested levels, e.g. (1|{'/'.join(above)})); "
                    f"or make one id column for the combination")
            level.crossed = True
            level.nested_in = above
        levels.append(level)
    # Stata's order: each crossed factor right after the nested levels it lies within.
    return stata_level_order(levels)


def _longest_chain(groupings: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    best: list[tuple[str, ...]] = []
    for start in (g for g in groupings if len(g) == 1):
        chain = [start]
        while any(len(g) == len(chain[-1]) + 1 and g[:-1] == chain[-1] for g in groupings):
            chain.append(next(g for g in groupings if len(g) == len(chain[-1]) + 1 and g[:-1] == chain[-1]))
        if len(chain) > len(best):
            best = chain
    return best


def _merge(grouping: tuple[str, ...], parts: list[_RandomTerm]):
    from engine.model_spec import Level

    name = grouping[-1]
    if len(parts) == 1:
        part = parts[0]
        return Level(name=name, slopes=list(part.slopes), intercept=part.intercept,
                     covariance="unstructured" if part.correlated else "independent")
    if any(part.correlated for part in parts):
        raise UserInputError(
            f"grouping {':'.join(grouping)}: several random terms, one of them correlated, give a "
            f"block-diagonal covariance that cannot be mapped; write one term (1 + x | g) or separate ones")
    intercept = any(part.intercept for part in parts)
    slopes: list[str] = []
    for part in parts:
        for slope in part.slopes:
            if slope in slopes:
                raise UserInputError(f"grouping {':'.join(grouping)}: slope {slope} appears twice")
            slopes.append(slope)
    if sum(part.intercept for part in parts) > 1:
        raise UserInputError(f"grouping {':'.join(grouping)}: the random intercept appears twice")
    return Level(name=name, slopes=slopes, intercept=intercept, covariance="independent")


def _first_factor_in_full(fixed: list[str], formula: str) -> list[str]:
    """Without an intercept R codes the first factor by all its levels (``0 + factor(g)``: one
    coefficient per level), Stata's ``ibn.g``; Stata's ``i.g, noconstant`` would drop the base level
    and force its mean to zero. An interaction alone (``x:factor(g)``) already keeps every level."""
    for index, term in enumerate(fixed):
        parts = term.replace("##", "#").split("#")
        factors = [part for part in parts if part.startswith("i.")]
        if not factors:
            continue
        if term == factors[0]:
            return fixed[:index] + ["ibn." + term[2:]] + fixed[index + 1:]
        if "##" in term:
            if len(parts) != 2 or len(factors) != 1:
                raise UserInputError(f"formula {formula!r}: without an intercept, write the first factor on its own "
                                     f"(0 + factor(g) + ...) before crossing it with other terms")
            other = parts[0] if parts[1] == factors[0] else parts[1]
            return fixed[:index] + [other, "ibn." + factors[0][2:], term.replace("##", "#")] + fixed[index + 1:]
        return fixed
    return fixed
