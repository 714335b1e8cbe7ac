"""GLMM parts of the model text: Stata's melogit / meprobit / mepoisson / meglm and their options.

``ModelSpec.parse`` passes the text through :func:`split_glmm_text` first, which takes off the
command word and the GLMM options (wherever they stand: Stata puts them after the last level's
comma) and leaves the linear `mixed` text for the shared parser.
"""

from __future__ import annotations

import re

from engine.errors import UserInputError
from engine.r_calls import split_top_level

COMMANDS = {"melogit": ("binomial", "logit"), "meprobit": ("binomial", "probit"),
            "mepoisson": ("poisson", "log"), "meglm": (None, None)}
STATA_COMMAND = {("binomial", "logit"): "melogit", ("binomial", "probit"): "meprobit", ("poisson", "log"): "mepoisson"}
DEFAULT_LINK = {"binomial": "logit", "bernoulli": "logit", "poisson": "log", "gaussian": "identity"}
_OPTION = re.compile(r"([A-Za-z_]+)\s*(?:\(([^)]*)\))?")
_INTPOINTS = ("intp", "intpo", "intpoi", "intpoin", "intpoint", "intpoints")


def split_glmm_text(text: str) -> tuple[str, dict]:
    """The text with the GLMM command and options removed, and those settings as ModelSpec fields."""
    stripped = text.strip()
    match = re.match(r"^(melogit|meprobit|mepoisson|meglm)\b\s*", stripped, re.IGNORECASE)
    if match is None:
        return text, {}
    family, link = COMMANDS[match.group(1).lower()]
    settings: dict = {"nagq": 1}
    kept_equations = []
    for equation in stripped[match.end():].split("||"):
        body, comma, options = equation.partition(",")
        leftover = _OPTION.sub(" ", options).replace(",", " ").split()
        if leftover:  # text that is no option would be dropped with the options taken out here
            raise UserInputError(f"cannot read {' '.join(leftover)!r} in the options {options.strip()!r}: options are "
                                 f"words, some with an argument in parentheses, e.g. intpoints(7) or")
        kept = []
        for option in _OPTION.finditer(options):
            name, argument = option.group(1).lower(), (option.group(2) or "").strip()
            if name in _INTPOINTS:
                if not argument.isdigit() or not 1 <= int(argument) <= 100:
                    raise UserInputError(f"intpoints({argument}) must be a whole number from 1 to 100")
                settings["nagq"] = int(argument)
            elif name == "laplace":
                settings["laplace_named"] = True
            elif name in ("intmethod", "intm", "intme", "intmet", "intmeth", "intmetho"):
                if argument.lower() not in ("laplace", "mcaghermite", "mcagh", "aghermite"):
                    raise UserInputError(f"intmethod({argument}) is not supported; use laplace or mcaghermite "
                                         f"(adaptive quadrature at each group's mode and curvature)")
                if argument.lower() == "laplace":
                    settings["laplace_named"] = True
            elif name in ("or", "irr", "eform"):
                settings["eform"] = True
            elif name in ("binomial", "binom", "binomi", "binomia"):
                if not argument:
                    raise UserInputError("binomial() needs the variable holding the number of trials")
                if not re.fullmatch(r"[A-Za-z_]\w*", argument):  # Stata's binomial(#N)
                    raise UserInputError(f"binomial({argument}): give the number of trials as a variable "
                                         f"(binomial(n)), not a number")
                settings["binomial"] = argument
            elif name in ("offset", "exposure"):
                if not argument:
                    raise UserInputError(f"{name}() needs a variable name")
                settings[name] = argument
            elif name in ("family", "fam", "fami", "famil"):
                words = argument.split()
                if len(words) == 2 and words[0].lower() in ("binomial", "binom", "binomi", "binomia"):
                    if not re.fullmatch(r"[A-Za-z_]\w*", words[1]):  # Stata's family(binomial #N)
                        raise UserInputError(f"family({argument}): give the number of trials as a variable "
                                             f"(family(binomial n) or binomial(n)), not a number")
                    settings["binomial"] = words[1]
                    words = words[:1]
                settings["family"] = " ".join(words).lower()
            elif name == "link":
                settings["link"] = argument.lower()
            elif name in ("reml",):
                raise UserInputError("reml is not available for binary and count outcomes: they are fitted by "
                                     "maximum likelihood")
            else:
                kept.append(option.group(0))
        kept_equations.append(body + (comma + " " + " ".join(kept) if kept else ""))
    if settings.pop("laplace_named", False) and settings["nagq"] > 1:
        raise UserInputError(f"intpoints({settings['nagq']}) and laplace (one point) contradict each other: give one")
    chosen_family = settings.pop("family", None) or family
    if chosen_family is None:
        raise UserInputError("meglm needs family(binomial) or family(poisson); or write melogit, meprobit or mepoisson")
    if chosen_family == "bernoulli":
        chosen_family = "binomial"
    if chosen_family == "gaussian":
        raise UserInputError("family(gaussian) is the linear mixed model: write it with mixed")
    settings["family"] = chosen_family
    settings["link"] = settings.pop("link", None) or link or DEFAULT_LINK.get(chosen_family, "")
    return "mixed " + " || ".join(e.strip() for e in kept_equations), settings


def check_glmm_fields(spec) -> None:
    """Refuse combinations of the GLMM fields that would be silently ignored or undefined."""
    if spec.family == "gaussian":
        if spec.link != "identity" or spec.nagq != 1 or spec.eform or spec.offset or spec.exposure or spec.binomial:
            raise UserInputError("link, intpoints, or/irr, offset and exposure apply to binary and count outcomes: "
                                 "write melogit, meprobit or mepoisson")
        return
    from engine.glmm.family import Family

    Family(spec.family, spec.link)
    if spec.method == "REML":
        raise UserInputError("REML is not defined for binary and count outcomes: they are fitted by maximum likelihood")
    if spec.nagq > 1 and any(level.crossed for level in spec.levels):
        raise UserInputError(
            f"intpoints({spec.nagq}) (adaptive quadrature) is for one random-intercept level; crossed random "
            f"factors are fitted by the Laplace approximation: use intpoints(1) (lme4's nAGQ = 1)")
    if spec.nagq > 1:
        single_intercept = len(spec.levels) == 1 and spec.levels[0].terms == ["_cons"]
        if not single_intercept:
            raise UserInputError(
                f"intpoints({spec.nagq}) (adaptive quadrature) needs a single level with a random intercept only; "
                f"use intpoints(1), the Laplace approximation, for this model")
    if spec.offset and spec.exposure:
        raise UserInputError("give offset() or exposure(), not both")
    if spec.binomial and spec.family != "binomial":
        raise UserInputError("binomial(trials) applies to melogit and meprobit")
    if spec.exposure and spec.family != "poisson":
        raise UserInputError("exposure() applies to Poisson models (mepoisson)")
    if spec.dfmethod:
        raise UserInputError("dfmethod() applies to linear mixed models; binary and count models use z tests")


def glmm_to_stata(spec) -> str:
    """The Stata command of a GLMM spec (melogit / meprobit / mepoisson, levels outermost first)."""
    head = " ".join([spec.outcome, *spec.fixed])
    options_head = ["noconstant"] if not spec.constant else []
    if options_head:
        head += ", " + " ".join(options_head)
    parts = [head] + [level.to_stata() for level in spec.levels]
    command = STATA_COMMAND.get((spec.family, spec.link), "meglm")
    text = f"{command} " + " || ".join(parts)
    options = []
    if command == "meglm":
        options.append(f"family({spec.family}) link({spec.link})")
    if spec.binomial:
        options.append(f"binomial({spec.binomial})")
    if spec.offset:
        options.append(f"offset({spec.offset})")
    if spec.exposure:
        options.append(f"exposure({spec.exposure})")
    options.append(f"intpoints({spec.nagq})")
    if spec.eform:
        options.append("irr" if spec.family == "poisson" else "or")
    joiner = " " if "," in parts[-1] and len(parts) > 1 else ", "
    return text + joiner + " ".join(options)


def glmm_to_lme4(spec, linear_formula: str) -> str:
    """glmer(...) around the formula of the linear part."""
    family = "binomial" if spec.family == "binomial" else "poisson"
    family_text = family if spec.link == ("logit" if family == "binomial" else "log") else f"{family}(link = \"{spec.link}\")"
    formula = linear_formula
    if spec.binomial:  # successes and failures
        formula = f"cbind({spec.outcome}, {spec.binomial} - {spec.outcome})" + formula[len(spec.outcome):]
    if spec.offset:
        formula += f" + offset({spec.offset})"
    if spec.exposure:
        formula += f" + offset(log({spec.exposure}))"
    return f"glmer({formula}, family = {family_text}, nAGQ = {spec.nagq})"


# ----- lme4's glmer(...) call ------------------------------------------------------------------

_GLMER_FAMILY = re.compile(r"^(binomial|poisson)\s*(?:\(\s*(?:link\s*=\s*)?[\"']?(\w*)[\"']?\s*\))?$")


def parse_glmer_call(text: str):
    """``glmer(y ~ x + (1|school/class), family = binomial, nAGQ = 1)`` as a ModelSpec.

    The formula goes to the lme4 formula parser (``ModelSpec.parse_lme4``) when the project has
    one; otherwise a small built-in reader takes nested random intercepts only. ``offset(log(v))``
    becomes ``exposure(v)``, ``offset(v)`` becomes ``offset(v)``.
    """
    from engine.model_spec import ModelSpec

    inner = text.strip()
    inner = inner[inner.index("(") + 1:]
    if not inner.endswith(")"):
        raise UserInputError("glmer(...) is missing its closing parenthesis")
    arguments = split_top_level(inner[:-1], ",")
    settings = {"family": "binomial", "link": "logit", "nagq": 1}
    for position, argument in enumerate(arguments[1:], start=1):
        name, equals, value = argument.partition("=")
        name, value = name.strip(), value.strip()
        if not equals and position in (1, 2):  # R's glmer(formula, data, family)
            name, equals, value = ("data" if position == 1 else "family"), "=", argument.strip()
        if not equals:
            raise UserInputError(f"glmer argument {argument.strip()!r} needs a name (family = ..., nAGQ = ...)")
        if name == "family":
            match = _GLMER_FAMILY.match(re.sub(r"^([\"'])(\w+)\1$", r"\2", value))  # R also takes "poisson"
            if match is None:
                raise UserInputError(f"family = {value} is not supported; use binomial, binomial(link = \"probit\") or poisson")
            settings["family"] = match.group(1)
            settings["link"] = match.group(2) or DEFAULT_LINK[match.group(1)]
        elif name == "nAGQ":
            if not value.isdigit() or not 1 <= int(value) <= 100:
                raise UserInputError(f"nAGQ = {value}: give a whole number from 1 to 100 (nAGQ = 0 is not offered)")
            settings["nagq"] = int(value)
        elif name in ("data", "control", "verbose"):
            continue  # the data come from the data file; the engine's own controls apply
        elif name == "offset":  # glmer(..., offset = log(days)): the same as offset(log(days)) in the formula
            arguments[0] += f" + offset({value})"
        else:
            raise UserInputError(f"glmer argument {name!r} is not supported")
    formula = re.sub(r"^\s*formula\s*=\s*", "", arguments[0]).strip()
    if "~" not in formula:
        raise UserInputError(f"glmer's first argument must be a formula (y ~ x + (1|group)), not {formula!r}")
    outcome, right = (part.strip() for part in formula.split("~", 1))
    successes = re.fullmatch(r"cbind\(\s*(\w+)\s*,\s*(\w+)\s*-\s*(\w+)\s*\)", outcome)
    if successes is not None and successes.group(1) == successes.group(3):
        outcome, settings["binomial"] = successes.group(1), successes.group(2)
    elif outcome.startswith("cbind("):
        raise UserInputError("write the binomial outcome as cbind(successes, trials - successes)")
    kept = []
    for term in split_top_level(right, "+"):
        term = term.strip()
        offset = re.fullmatch(r"offset\(\s*(log\(\s*(\w+)\s*\)|\w+)\s*\)", term)
        if offset is not None:
            if "offset" in settings or "exposure" in settings:  # R would add them up
                raise UserInputError("glmer: give one offset (offset(v) or offset(log(v))), not several")
            if offset.group(2):
                settings["exposure"] = offset.group(2)
            else:
                settings["offset"] = offset.group(1)
            continue
        kept.append(term)
    linear = f"{outcome} ~ " + " + ".join(kept)
    if hasattr(ModelSpec, "parse_lme4"):
        spec = ModelSpec.parse_lme4(linear, method="ML")
    else:
        spec = _nested_intercepts_formula(outcome, kept)
    return spec.replace(**settings)


def _nested_intercepts_formula(outcome: str, terms: list[str]):
    from engine.model_spec import Level, ModelSpec

    fixed, chains, constant = [], [], True
    for term in terms:
        random = re.fullmatch(r"\(\s*(.+?)\s*\|\s*(.+?)\s*\)", term)
        if random is not None:
            if random.group(1) != "1":
                raise UserInputError(f"random term {term}: only random intercepts (1 | group) are read here")
            group = random.group(2).replace(" ", "")
            parts = group.split("/")
            if len(parts) > 1:
                chains += [parts[: k + 1] for k in range(len(parts))]
            else:
                chains.append(group.split(":"))
        elif term in ("0", "-1"):
            constant = False
        elif term == "1":
            continue
        elif re.fullmatch(r"(factor|as\.factor)\(\s*\w+\s*\)", term):
            fixed.append("i." + term[term.index("(") + 1:-1].strip())
        elif re.fullmatch(r"\w+", term):
            fixed.append(term)
        else:
            raise UserInputError(f"fixed-effect term {term!r} is not read here; write the model in Stata syntax")
    chains.sort(key=len)
    for depth, chain in enumerate(chains):
        if len(chain) != depth + 1 or (depth and chain[:-1] != chains[depth - 1]):
            raise UserInputError("the random intercepts must be nested, e.g. (1|school) + (1|school:class) or "
                                 "(1|school/class)")
    return ModelSpec(outcome=outcome, fixed=fixed, levels=[Level(name=chain[-1]) for chain in chains],
                     method="ML", constant=constant)
