"""GLMM parts of the model text: Stata's melogit / meprobit / mepoisson / meglm and their options.

``ModelSpec.parse`` passes the text through :func:`split_glmm_text` first, which takes off the
command word and the GLMM options (wherever they stand: Stata puts them after the last level's
comma) and leaves the linear `mixed` text for the shared parser.
"""

from __future__ import annotations

import re

from engine.errors import UserInputError

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
        kept = []
        for option in _OPTION.finditer(options):
            name, argument = option.group(1).lower(), (option.group(2) or "").strip()
            if name in _INTPOINTS:
                if not argument.isdigit() or not 1 <= int(argument) <= 100:
                    raise UserInputError(f"intpoints({argument}) must be a whole number from 1 to 100")
                settings["nagq"] = int(argument)
            elif name == "laplace":
                settings["nagq"] = 1
            elif name in ("intmethod", "intm", "intme", "intmet", "intmeth", "intmetho"):
                if argument.lower() not in ("laplace", "mcaghermite", "mcagh", "aghermite"):
                    raise UserInputError(f"intmethod({argument}) is not supported; use laplace or mcaghermite "
                                         f"(adaptive quadrature at each group's mode and curvature)")
                if argument.lower() == "laplace":
                    settings["nagq"] = 1
            elif name in ("or", "irr", "eform"):
                settings["eform"] = True
            elif name in ("offset", "exposure"):
                if not argument:
                    raise UserInputError(f"{name}() needs a variable name")
                settings[name] = argument
            elif name in ("family", "fam", "fami", "famil"):
                settings["family"] = argument.lower()
            elif name == "link":
                settings["link"] = argument.lower()
            elif name in ("reml",):
                raise UserInputError("reml is not available for binary and count outcomes: they are fitted by "
                                     "maximum likelihood")
            else:
                kept.append(option.group(0))
        kept_equations.append(body + (comma + " " + " ".join(kept) if kept else ""))
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
    from engine.glmm.family import Family

    if spec.family == "gaussian":
        if spec.link != "identity" or spec.nagq != 1 or spec.eform or spec.offset or spec.exposure:
            raise UserInputError("link, intpoints, or/irr, offset and exposure apply to binary and count outcomes: "
                                 "write melogit, meprobit or mepoisson")
        return
    Family(spec.family, spec.link)
    if spec.method == "REML":
        raise UserInputError("REML is not defined for binary and count outcomes: they are fitted by maximum likelihood")
    if spec.nagq > 1:
        single_intercept = len(spec.levels) == 1 and spec.levels[0].terms == ["_cons"]
        if not single_intercept:
            raise UserInputError(
                f"intpoints({spec.nagq}) (adaptive quadrature) needs a single level with a random intercept only; "
                f"use intpoints(1), the Laplace approximation, for this model")
    if spec.offset and spec.exposure:
        raise UserInputError("give offset() or exposure(), not both")
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
    if spec.offset:
        formula += f" + offset({spec.offset})"
    if spec.exposure:
        formula += f" + offset(log({spec.exposure}))"
    return f"glmer({formula}, family = {family_text}, nAGQ = {spec.nagq})"
