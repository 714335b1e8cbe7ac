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
COVARIANCES = ("independent", "unstructured", "identity", "exchangeable")


def _abbreviations(word: str, shortest: int) -> tuple[str, ...]:
    """Every abbreviation Stata accepts for ``word``: its first ``shortest`` letters or more."""
    return tuple(word[:n] for n in range(shortest, len(word) + 1))


# Stata's minimal abbreviations: ind, un, id, ex (covariance types); cov (the option); noc (noconstant,
# xtmixed's; mixed's is nocons, and noc cannot be mistaken for another option here).
_COVARIANCE_ABBREVIATIONS = {
    abbreviation: name for name, shortest in (("independent", 3), ("unstructured", 2), ("identity", 2),
                                              ("exchangeable", 2))
    for abbreviation in _abbreviations(name, shortest)
}
_COVARIANCE_OPTION = _abbreviations("covariance", 3)
_NOCONSTANT_OPTION = _abbreviations("noconstant", 3)
_DISPLAY_OPTIONS = {**{word: "variance" for word in _abbreviations("variance", 3)}, "stddev": "stddev"}


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
    # Outcome family (engine.glmm): 'gaussian' is the linear mixed model; 'binomial' (0/1) or 'poisson'.
    family: str = "gaussian"
    link: str = "identity"  # 'identity'; 'logit' or 'probit' (binomial); 'log' (poisson)
    nagq: int = 1  # integration points: 1 = Laplace, more = adaptive Gauss-Hermite (Stata's intpoints())
    eform: bool = False  # report exp(coef): odds ratios (or) or incidence-rate ratios (irr)
    offset: str | None = None  # a column added to the linear predictor with coefficient 1
    exposure: str | None = None  # a column whose log is the offset (Poisson)
    binomial: str | None = None  # the column of trials when the outcome counts successes (Stata's binomial())

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if self.method not in METHODS:
            raise UserInputError(f"method must be REML or ML, not {self.method!r}")
        self.dfmethod = parse_dfmethod(self.dfmethod)
        from engine.glmm.spec import check_glmm_fields  # family, link, intpoints, offsets

        check_glmm_fields(self)
        for level in self.levels:
            if level.covariance not in COVARIANCES:
                raise UserInputError(
                    f"level {level.name}: covariance must be one of {', '.join(COVARIANCES)}, not {level.covariance!r}")
            if not level.terms:
                raise UserInputError(f"level {level.name}: noconstant with no slopes leaves no random effect")
            _check_slopes(level)
        _check_fixed_terms(self.fixed)  # however the spec is made (text, window, JSON)
        _check_outcome_not_reused(self)

    # ----- text forms -------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, method: str | None = None) -> "ModelSpec":
        """Parse Stata `mixed` syntax; `method` (REML/ML) overrides a `reml`/`ml` option in the text."""
        from engine.glmm.spec import parse_glmer_call, split_glmm_text
        from engine.r_calls import call_name, normalised_call, parse_lmer_call
        from engine.stata_command_words import check_command_word

        call = call_name(text)
        if call == "glmer":  # lme4's call for binary and count outcomes
            spec = parse_glmer_call(normalised_call(text))
            return spec.replace(method=method) if method else spec
        if call == "lmer":
            return parse_lmer_call(text, method)
        check_command_word(text)
        text, glmm_fields = split_glmm_text(text)
        spec = _parse_stata(text, method)
        return spec.replace(**glmm_fields) if glmm_fields else spec

    def to_stata(self) -> str:
        """The equivalent Stata command."""
        if self.family != "gaussian":
            from engine.glmm.spec import glmm_to_stata

            return glmm_to_stata(self)
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
        if self.family != "gaussian":  # glmer(...) around the linear formula
            from engine.glmm.spec import glmm_to_lme4

            return glmm_to_lme4(self, self.replace(family="gaussian", link="identity", nagq=1, eform=False,
                                                   offset=None, exposure=None, binomial=None).to_lme4())
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
        formula = f"{self.outcome} ~ " + " + ".join(pieces)
        nlme_classes = {"exchangeable": "pdCompSymm", "identity": "pdIdent"}
        unmapped = [level for level in self.levels if level.covariance in nlme_classes and len(level.terms) > 1]
        if unmapped:
            # lme4 has no exchangeable or identity (equal variances) structure; the pieces above would
            # silently fit another model (independent variances).
            nlme = ", ".join(f"{level.name} = {nlme_classes[level.covariance]}(~ {' + '.join(level.slopes) or '1'}"
                             f"{'' if level.intercept else ' - 1'})" for level in unmapped)
            kinds = " or ".join(sorted({level.covariance for level in unmapped}))
            formula += f"  # lme4 has no {kinds} covariance: use nlme, random = list({nlme})"
        return formula

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
        names += [name for name in (self.offset, self.exposure, self.binomial) if name]
        return list(dict.fromkeys(names))

    # ----- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        return from_jsonable(cls, data)

    def replace(self, **changes) -> "ModelSpec":
        return dataclasses.replace(self, **changes)

    def pooled(self) -> "ModelSpec":
        """The same outcome, predictors, family and options without levels: for a binary or count
        outcome, Stata's logit, probit or poisson (quadrature needs a level, so Laplace's one point)."""
        return self.replace(levels=[], nagq=1)


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
    _check_parentheses(options)
    parsed = [(m.group(1).lower(), (m.group(2) or "").strip()) for m in _OPTION_RE.finditer(options)]
    _check_leftover(options)
    return body.strip(), parsed


def _check_leftover(options: str) -> None:
    """Refuse text between options that is no option (``, reml 7``, ``, reml = TRUE``): it was skipped."""
    leftover = _OPTION_RE.sub(" ", options).replace(",", " ").split()
    if leftover:
        raise UserInputError(f"cannot read {' '.join(leftover)!r} in the options {options.strip()!r}: options are "
                             f"words, some with an argument in parentheses, e.g. covariance(unstructured) reml")


def _check_parentheses(options: str) -> None:
    depth = 0
    for character in options:
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth < 0:
            raise UserInputError(f"unmatched ')' in the options {options.strip()!r}")
        if depth > 1:
            raise UserInputError(f"nested parentheses in the options {options.strip()!r}")
    if depth:
        raise UserInputError(f"unclosed parenthesis in the options {options.strip()!r}: close it, "
                             f"e.g. covariance(unstructured)")


_METHOD_OPTIONS = {"reml": "REML", "ml": "ML", "mle": "ML"}


def _method_option(found: str | None, option: str, original: str) -> str:
    """The method an option names; ml and reml together are refused."""
    method = _METHOD_OPTIONS[option]
    if found is not None and found != method:
        raise UserInputError(f"the model {original!r} asks for both ml and reml: choose one")
    return method


def _options_go_last(option: str, where: str, last_level: str) -> UserInputError:
    return UserInputError(
        f"option {option!r} {where}: options such as reml or ml go at the end of the model, after the "
        f"last level (... || {last_level}:, {option}); before '||' only noconstant belongs, after a level "
        f"only that level's noconstant and covariance()")


def _dfmethod_option(found: str | None, argument: str, original: str) -> str | None:
    """The df method an option names; an empty dfmethod() and two different ones are refused."""
    if not argument.strip():
        raise UserInputError(f"dfmethod() in {original.strip()!r} needs a method: {', '.join(DF_METHODS)}")
    chosen = parse_dfmethod(argument)
    if found is not None and chosen != found:
        raise UserInputError(f"the model {original.strip()!r} gives two df methods ({found}, {chosen}): choose one")
    return chosen


def _parse_stata(text: str, method: str | None) -> ModelSpec:
    from engine.stata_command_words import check_fixed_words

    original = text
    text = text.strip()
    # xtmixed (Stata 12 and before) fits by REML unless mle is given; mixed (Stata 13 on) by ML.
    default_method = "REML" if re.match(r"^xtmixed\b", text) else "ML"
    text = re.sub(r"^(xtmixed|mixed)\s+", "", text)
    if not text:
        raise UserInputError("the model is empty: write the outcome first, e.g. 'perform tutoring || school_id:'")
    equations = [part.strip() for part in text.split("||")]
    fixed_body, fixed_options = _split_options(equations[0])
    tokens = fixed_body.split()
    if not tokens:
        raise UserInputError(f"no outcome in model {original!r}: write the outcome first")
    check_fixed_words(tokens, original)
    outcome, fixed = tokens[0], tokens[1:]
    constant = True
    found_method = None
    dfmethod = None
    last_level = equations[-1].partition(":")[0].strip()
    for name, argument in fixed_options:
        if name in _NOCONSTANT_OPTION:
            constant = False
        elif name in _METHOD_OPTIONS and len(equations) == 1:  # no levels: the fixed part is the end
            found_method = _method_option(found_method, name, original)
        elif name in _METHOD_OPTIONS:
            raise _options_go_last(name, "is in the fixed part", last_level)
        elif name in _DFMETHOD_OPTION:
            dfmethod = _dfmethod_option(dfmethod, argument, original)
        elif name in _DISPLAY_OPTIONS and len(equations) == 1:
            continue  # display choice, read by stated_display
        elif name in _DISPLAY_OPTIONS:
            raise _options_go_last(name, "is in the fixed part", last_level)
        else:
            raise UserInputError(f"unknown option {name!r} in the fixed-effects part of {original!r}")
    levels = []
    for position, equation in enumerate(equations[1:], start=1):
        body, options = _split_options(equation)
        if ":" not in body:
            raise UserInputError(f"random-effects part {equation!r} needs a level id followed by ':', e.g. 'school_id:'")
        name, _, slope_text = body.partition(":")
        name = name.strip()
        if not name or " " in name:
            raise UserInputError(f"bad level name {name!r} in {equation!r}")
        is_last = position == len(equations) - 1
        for option, argument in options:  # the options of the whole model, wherever the level
            if option in _METHOD_OPTIONS and is_last:
                found_method = _method_option(found_method, option, original)
            elif option in _METHOD_OPTIONS:
                raise _options_go_last(option, f"is at level {name}, which is not the last", last_level)
            elif option in _DFMETHOD_OPTION:
                dfmethod = _dfmethod_option(dfmethod, argument, original)
        if name == "_all":
            from engine.mixed.crossed.spec_text import parse_stata_crossed

            levels.append(parse_stata_crossed(equation, slope_text, options,
                                              [lv.name for lv in levels if not lv.crossed]))
            continue
        level = Level(name=name, slopes=slope_text.split())
        _check_factor_slopes(level, equation)
        covariances = {_COVARIANCE_ABBREVIATIONS.get(a.lower(), a) for o, a in options if o in _COVARIANCE_OPTION}
        if len(covariances) > 1:
            raise UserInputError(f"level {name}: more than one covariance() given ({', '.join(sorted(covariances))}); "
                                 f"give one")
        for option, argument in options:
            if option in _NOCONSTANT_OPTION:
                level.intercept = False
            elif option in _COVARIANCE_OPTION:
                key = argument.lower()
                if key not in _COVARIANCE_ABBREVIATIONS:
                    raise UserInputError(
                        f"level {name}: covariance({argument}) is not supported; use independent, unstructured, "
                        f"identity or exchangeable")
                level.covariance = _COVARIANCE_ABBREVIATIONS[key]
            elif option in _METHOD_OPTIONS or option in _DFMETHOD_OPTION or option in _DISPLAY_OPTIONS:
                continue  # read above (method, df method) or by stated_display (display choices)
            else:
                raise UserInputError(f"unknown option {option!r} at level {name}")
        if len(level.terms) == 1:
            level.covariance = "identity" if level.covariance == "identity" else "independent"
        levels.append(level)
    names = [level.name for level in levels]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(f"level {repeated[0]} appears more than once in the model")
    chosen = (method or found_method or default_method).upper()
    return ModelSpec(outcome=outcome, fixed=fixed, levels=levels, method=chosen, constant=constant, dfmethod=dfmethod)


def _check_factor_slopes(level: Level, equation: str) -> None:
    """Stata's ``|| school: R.x`` (effects of x's values within each school) has no counterpart here."""
    factor = next((slope for slope in level.slopes if re.match(r"^[Rr]\.", slope)), None)
    if factor is not None:
        variable = factor[2:]
        raise UserInputError(
            f"{equation.strip()!r}: {factor} at a level other than _all (one effect per {level.name} and "
            f"{variable} cell) is not supported; make one id column for the {level.name}-{variable} combination "
            f"and give it its own level, or write '|| {level.name}: || {variable}:' (which adds a {level.name} "
            f"intercept), or '|| _all: {factor}' for a factor crossed with the levels")


_DFMETHOD_OPTION = _abbreviations("dfmethod", 3)


def _check_outcome_not_reused(spec: "ModelSpec") -> None:
    """The outcome as a predictor, random slope or level id would explain itself (R drops it with a
    warning; here it is refused)."""
    from engine.design_matrix import term_variables

    where = ("a fixed effect" if spec.outcome in term_variables(spec.fixed) else
             next((f"a random slope at level {level.name}" for level in spec.levels if spec.outcome in level.slopes),
                  None) or
             next(("a level id" for level in spec.levels if spec.outcome in level.grouping or
                   spec.outcome == level.name), None))
    if where:
        raise UserInputError(f"the outcome {spec.outcome!r} is also {where} in the model: it cannot explain itself")


def _check_fixed_terms(fixed: list[str]) -> None:
    """Refuse a malformed factor-variable term now, before any data are read."""
    from engine.stata_terms import parse_terms

    parse_terms(fixed)


def _check_slopes(level: Level) -> None:
    for slope in level.slopes:
        if slope == "_cons":
            raise UserInputError(f"level {level.name}: '_cons' is the random intercept, in the model unless "
                                 f"noconstant is given; do not list it as a slope")
        if "(" in slope or ")" in slope:
            raise UserInputError(f"level {level.name}: {slope!r} is not a column; options such as covariance(...) "
                                 f"go after a comma: '|| {level.name}: x, {slope}'")
        if ":" in slope or "|" in slope:
            raise UserInputError(f"level {level.name}: {slope!r} is not a column; levels are written "
                                 f"'|| id:' with one colon, slopes after it")
        if "#" in slope or re.match(r"^(?:c|i|ibn|ib\d+|\d+)\.", slope, re.IGNORECASE):
            raise UserInputError(f"level {level.name}: random slope {slope!r} must be a data column; make the "
                                 f"product or indicator a column first (factor-variable terms are fixed-part only)")
    repeated = sorted({slope for slope in level.slopes if level.slopes.count(slope) > 1})
    if repeated:
        raise UserInputError(f"level {level.name}: the slope {repeated[0]!r} is given twice")


def stated_method(text: str) -> str | None:
    """The method (REML or ML) written as an option in model text, or None when none is written."""
    from engine.r_calls import call_name, stated_lmer_method

    call = call_name(text)
    if call == "glmer":  # an lme4 call: GLMMs are fitted by ML, no option
        return None
    if call == "lmer":
        return stated_lmer_method(text)
    return _parse_stata(text, None).method if _has_method_option(text) else None


def stated_display(text: str) -> str | None:
    """'variance' or 'stddev' when the model text asks for that display of the random effects
    (Stata's ``variance`` / ``var`` and ``stddev`` options), else None.

    Raises
    ------
    UserInputError
        When both are written.
    """
    from engine.r_calls import call_name

    if call_name(text):
        return None
    found = {_DISPLAY_OPTIONS[name] for equation in text.split("||")
             for name, _ in _split_options(equation)[1] if name in _DISPLAY_OPTIONS}
    if len(found) > 1:
        raise UserInputError(f"the model {text.strip()!r} asks for both variance and stddev: choose one")
    return found.pop() if found else None


def _has_method_option(text: str) -> bool:
    for equation in text.split("||"):
        _, options = _split_options(equation)
        if any(name in _METHOD_OPTIONS for name, _ in options):
            return True
    return False
