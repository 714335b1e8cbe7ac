"""The model specification: one typed object, parsed from and printed as Stata `mixed` syntax.

Example: ``perform tutoring || dist_id: || school_id: ses, covariance(unstructured)``.
Levels are listed outermost first, as in Stata; a group at a level is the combination of its
id with every id above it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from engine.centering import Centering
from engine.errors import UserInputError
from engine.serialize import from_jsonable, to_jsonable

METHODS = ("REML", "ML")
# Stata's dfmethod() names; None means large-sample z tests (Stata's default).
DF_METHODS = ("residual", "repeated", "anova", "satterthwaite", "kroger")
REML_ONLY_DF_METHODS = ("satterthwaite", "kroger")
COVARIANCES = ("independent", "unstructured", "identity")
_COVARIANCE_ABBREVIATIONS = {
    "ind": "independent", "inde": "independent", "indep": "independent", "independent": "independent",
    "un": "unstructured", "uns": "unstructured", "unstr": "unstructured", "unstructured": "unstructured",
    "id": "identity", "ident": "identity", "identity": "identity",
}


@dataclass
class Level:
    """One level of random effects: its id column and the random terms that vary across its groups."""

    name: str
    slopes: list[str] = field(default_factory=list)
    intercept: bool = True
    covariance: str = "independent"
    # A crossed factor (Stata `_all: R.name`, lme4 `(1|name)`): its groups are the distinct values of
    # ``nested_in`` + [name], not combined with the other levels, so it may cut across them.
    crossed: bool = False
    nested_in: list[str] = field(default_factory=list)

    @property
    def terms(self) -> list[str]:
        """Random-effect terms in Stata's order: slopes first, `_cons` last."""
        return list(self.slopes) + (["_cons"] if self.intercept else [])

    @property
    def estimation_terms(self) -> list[str]:
        """The same terms in lme4's order (`_cons` first), the order of the engine's covariance
        factor: the order shapes the optimiser's path, and lme4's is the yardstick."""
        return (["_cons"] if self.intercept else []) + list(self.slopes)

    @property
    def grouping(self) -> list[str]:
        """The id columns whose combinations are this factor's groups (crossed factors only)."""
        return list(self.nested_in) + [self.name]

    def to_stata(self) -> str:
        if self.crossed:
            from engine.mixed.crossed.spec_text import crossed_level_to_stata

            return crossed_level_to_stata(self)
        text = f"{self.name}:"
        if self.slopes:
            text += " " + " ".join(self.slopes)
        options = []
        if not self.intercept:
            options.append("noconstant")
        if len(self.terms) > 1 and self.covariance != "independent":
            options.append(f"covariance({self.covariance})")
        if options:
            text += ", " + " ".join(options)
        return text


@dataclass
class ModelSpec:
    """A linear (mixed) model: outcome, fixed-effect terms in Stata notation, nested levels, method."""

    outcome: str
    fixed: list[str] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
    method: str = "ML"
    constant: bool = True
    centering: list[Centering] = field(default_factory=list)  # derived predictors, made before the fit
    dfmethod: str | None = None  # denominator df of t and F tests (DF_METHODS); None: z tests

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if self.method not in METHODS:
            raise UserInputError(f"method must be REML or ML, not {self.method!r}")
        self.dfmethod = parse_dfmethod(self.dfmethod)
        for level in self.levels:
            if level.covariance not in COVARIANCES:
                raise UserInputError(
                    f"level {level.name}: covariance must be one of {', '.join(COVARIANCES)}, not {level.covariance!r}")
            if not level.terms:
                raise UserInputError(f"level {level.name}: noconstant with no slopes leaves no random effect")

    # ----- text forms -------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, method: str | None = None) -> "ModelSpec":
        """Parse Stata `mixed` syntax; `method` (REML/ML) overrides a `reml`/`ml` option in the text."""
        return _parse_stata(text, method)

    def to_stata(self) -> str:
        """The equivalent Stata command."""
        head = " ".join([self.outcome, *self.fixed])
        if not self.constant:
            head += ", noconstant"
        parts = [head] + [level.to_stata() for level in self.stata_order()]
        text = "mixed " + " || ".join(parts)
        options = (["reml"] if self.method == "REML" else []) + ([f"dfmethod({self.dfmethod})"] if self.dfmethod else [])
        if options:
            text += (" " if "," in parts[-1] and len(parts) > 1 else ", ") + " ".join(options)
        return text

    def to_lme4(self) -> str:
        """The equivalent lme4 formula (nested levels written out as interactions of their ids)."""
        from engine.design_matrix import stata_terms_to_formula

        rhs = stata_terms_to_formula(self.fixed, constant=self.constant)
        pieces = [rhs]
        nested = [level for level in self.levels if not level.crossed]
        for level in self.levels:
            if level.crossed:
                group = ":".join(level.grouping)
            else:
                group = ":".join(lv.name for lv in nested[: nested.index(level) + 1])
            terms = (["1"] if level.intercept else ["0"]) + list(level.slopes)
            if level.covariance == "unstructured" or len(terms) == 1:
                pieces.append(f"({' + '.join(terms)} | {group})")
            else:
                for term in level.terms:
                    inner = "1" if term == "_cons" else f"0 + {term}"
                    pieces.append(f"({inner} | {group})")
        return f"{self.outcome} ~ " + " + ".join(pieces)

    @property
    def level_names(self) -> list[str]:
        return [level.name for level in self.levels]

    def stata_order(self) -> list[Level]:
        """Levels in the order Stata needs (see ``stata_level_order``)."""
        return stata_level_order(self.levels)

    @property
    def has_crossed(self) -> bool:
        """True when some random factor is written as crossed (it may still nest in the data)."""
        return any(level.crossed for level in self.levels)

    @classmethod
    def parse_lme4(cls, formula: str, method: str | None = None) -> "ModelSpec":
        """Parse an lme4 formula, e.g. ``y ~ x + (1|school/class) + (1|rater)``; REML unless ``method``."""
        from engine.lme4_formula import parse_lme4_formula

        return parse_lme4_formula(formula, method)

    def variables(self) -> list[str]:
        """Every data column the model reads (outcome, fixed-effect variables, slopes, level ids)."""
        from engine.design_matrix import term_variables

        names = [self.outcome, *term_variables(self.fixed)]
        for level in self.levels:
            names += [level.name, *level.slopes]
        return list(dict.fromkeys(names))

    # ----- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        return from_jsonable(cls, data)

    def replace(self, **changes) -> "ModelSpec":
        return dataclasses.replace(self, **changes)


def stata_level_order(levels: list[Level]) -> list[Level]:
    """Each crossed factor right after the nested levels it lies within (first of all when it
    crosses the whole sample), nested levels in their own order: Stata's reading of `_all: R.x`."""
    ordered = [level for level in levels if not level.crossed]
    for level in (lv for lv in levels if lv.crossed):
        depth, seen, position = len(level.nested_in), 0, len(ordered)
        for index, other in enumerate(ordered):
            if not other.crossed:
                if seen == depth:
                    position = index
                    break
                seen += 1
        ordered.insert(position, level)
    return ordered


def parse_dfmethod(name: str | None) -> str | None:
    """Stata's dfmethod() name (also 'kenward-roger'); None, '' or 'z' for large-sample z tests."""
    if name is None:
        return None
    key = name.strip().lower().replace("_", "-")
    if key in ("", "z", "none"):
        return None
    key = {"kenward-roger": "kroger", "kenwardroger": "kroger", "kr": "kroger"}.get(key, key)
    if key not in DF_METHODS:
        raise UserInputError(f"dfmethod({name}) is not known; use one of {', '.join(DF_METHODS)}")
    return key


_OPTION_RE = re.compile(r"([A-Za-z_]+)\s*(?:\(([^)]*)\))?")


def _split_options(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split 'body, opt1 opt2(arg)' into the body and a list of (name, argument)."""
    body, _, options = text.partition(",")
    parsed = [(m.group(1).lower(), (m.group(2) or "").strip()) for m in _OPTION_RE.finditer(options)]
    return body.strip(), parsed


def _parse_stata(text: str, method: str | None) -> ModelSpec:
    original = text
    text = text.strip()
    text = re.sub(r"^(xtmixed|mixed)\s+", "", text)
    if not text:
        raise UserInputError("the model is empty: write the outcome first, e.g. 'perform tutoring || school_id:'")
    equations = [part.strip() for part in text.split("||")]
    fixed_body, fixed_options = _split_options(equations[0])
    tokens = fixed_body.split()
    if not tokens:
        raise UserInputError(f"no outcome in model {original!r}: write the outcome first")
    outcome, fixed = tokens[0], tokens[1:]
    constant = True
    found_method = None
    dfmethod = None
    for name, argument in fixed_options:
        if name in ("nocons", "noconstant"):
            constant = False
        elif name in ("reml", "ml", "mle"):
            found_method = "REML" if name == "reml" else "ML"
        elif name in _DFMETHOD_OPTION:
            dfmethod = parse_dfmethod(argument)
        else:
            raise UserInputError(f"unknown option {name!r} in the fixed-effects part of {original!r}")
    levels = []
    for equation in equations[1:]:
        body, options = _split_options(equation)
        if ":" not in body:
            raise UserInputError(f"random-effects part {equation!r} needs a level id followed by ':', e.g. 'school_id:'")
        name, _, slope_text = body.partition(":")
        name = name.strip()
        if not name or " " in name:
            raise UserInputError(f"bad level name {name!r} in {equation!r}")
        if name == "_all":
            from engine.mixed.crossed.spec_text import parse_stata_crossed

            levels.append(parse_stata_crossed(equation, slope_text, options,
                                              [lv.name for lv in levels if not lv.crossed]))
            for option, argument in options:
                if option in ("reml", "ml", "mle"):
                    found_method = "REML" if option == "reml" else "ML"
                elif option in _DFMETHOD_OPTION:
                    dfmethod = parse_dfmethod(argument)
            continue
        level = Level(name=name, slopes=slope_text.split())
        for option, argument in options:
            if option in ("nocons", "noconstant"):
                level.intercept = False
            elif option in ("cov", "cova", "covar", "covariance"):
                key = argument.lower()
                if key not in _COVARIANCE_ABBREVIATIONS:
                    raise UserInputError(
                        f"level {name}: covariance({argument}) is not supported; use independent, unstructured or identity")
                level.covariance = _COVARIANCE_ABBREVIATIONS[key]
            elif option in ("reml", "ml", "mle"):
                found_method = "REML" if option == "reml" else "ML"
            elif option in _DFMETHOD_OPTION:
                dfmethod = parse_dfmethod(argument)
            elif option in ("stddev", "variance", "var"):
                continue  # display choices; the report has its own switch
            else:
                raise UserInputError(f"unknown option {option!r} at level {name}")
        if len(level.terms) == 1:
            level.covariance = "identity" if level.covariance == "identity" else "independent"
        levels.append(level)
    names = [level.name for level in levels]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(f"level {repeated[0]} appears more than once in the model")
    chosen = (method or found_method or "ML").upper()
    return ModelSpec(outcome=outcome, fixed=fixed, levels=levels, method=chosen, constant=constant, dfmethod=dfmethod)


_DFMETHOD_OPTION = ("dfm", "dfme", "dfmet", "dfmeth", "dfmetho", "dfmethod")
