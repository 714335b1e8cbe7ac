"""The hierarchy design: what to simulate, as one typed, validated, JSON-saved object.

A design lists its levels outermost first (``dist_id``, ``school_id``, ...). Each level says how
many units each parent holds and the sd of the units' random intercepts, optionally with random
slopes. Below the bottom level there may be repeated occasions; every row of the simulated data
is one observation. The outcome is::

    y = intercept + effect * treatment + sum(coef * covariate)
        + sum over levels (u_level + sum(slope_level * variable)) + residual

Variables (the treatment and the covariates) vary at a level: a level name, or ``"observation"``
(one draw per row). The ``Truth`` of a design names its parameters as fit results do.

A design may also hold crossed factors (``Design.crossed``): classifications outside the nesting,
such as the neighbourhood a student lives in, whose units are assigned to the bottom-level units
at random (optionally within a unit of a level above, e.g. neighbourhoods within districts) and
add their own random intercept ``+ v_factor`` to the outcome.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import UserInputError
from engine.serialize import from_jsonable, to_jsonable

FORMAT_VERSION = 1
OBSERVATION = "observation"
UNIT_DISTRIBUTIONS = ("fixed", "uniform", "poisson", "empirical")
COVARIATE_DISTRIBUTIONS = ("normal", "binary", "uniform", "time")
MAX_ROWS = 100_000_000
RESIDUAL = "Residual"


@dataclass
class UnitCount:
    """Units per parent: a fixed number, uniform between min and max, Poisson, or empirical.

    ``poisson`` draws ``1 + Poisson(mean - 1)``, so every parent has at least one unit and the
    expected count is exactly ``mean``. ``empirical`` draws from ``sizes``, observed group sizes
    (one per parent in some data), without replacement in rounds: the parents get a random
    permutation of the sizes, then another, and so on, so as many parents as sizes get exactly the
    observed sizes and k times as many get each size k times.
    """

    distribution: str = "fixed"
    n: int = 1
    min: int = 1
    max: int = 1
    mean: float = 1.0
    sizes: list[int] = field(default_factory=list)

    @classmethod
    def fixed(cls, n: int) -> "UnitCount":
        return cls(distribution="fixed", n=n, min=n, max=n, mean=float(n))

    @classmethod
    def uniform(cls, low: int, high: int) -> "UnitCount":
        return cls(distribution="uniform", n=low, min=low, max=high, mean=(low + high) / 2)

    @classmethod
    def poisson(cls, mean: float) -> "UnitCount":
        return cls(distribution="poisson", n=max(1, round(mean)), min=1, max=1, mean=float(mean))

    @classmethod
    def empirical(cls, sizes) -> "UnitCount":
        """Units per parent drawn from observed group sizes (see the class docstring)."""
        sizes = sorted(int(size) for size in sizes)
        mean = float(np.mean(sizes)) if sizes else 1.0
        return cls(distribution="empirical", n=max(1, round(mean)), min=sizes[0] if sizes else 1,
                   max=sizes[-1] if sizes else 1, mean=mean, sizes=sizes)

    def expected(self) -> float:
        """Expected units per parent."""
        if self.distribution == "fixed":
            return float(self.n)
        if self.distribution == "uniform":
            return (self.min + self.max) / 2
        if self.distribution == "empirical":
            return float(np.mean(self.sizes)) if self.sizes else 0.0
        return float(self.mean)

    def describe(self) -> str:
        if self.distribution == "fixed":
            return str(self.n)
        if self.distribution == "uniform":
            return f"uniform {self.min}..{self.max}"
        if self.distribution == "empirical":
            sizes = self.sizes or [0]
            return f"{len(self.sizes)} observed sizes {min(sizes)}..{max(sizes)}"
        return f"1 + Poisson(mean {self.mean:g} - 1)"


@dataclass
class RandomSlope:
    """A random slope at a level: the effect of ``variable`` varies across the level's units.

    ``corr`` is its correlation with the level's random intercept (0: independent). Slopes at one
    level are independent of each other.
    """

    variable: str
    sd: float
    corr: float = 0.0


@dataclass
class LevelDesign:
    """One level: its id column, units per parent, random-intercept sd and random slopes.

    ``units`` also accepts a plain int (stored as ``UnitCount.fixed(n)``). ``move_prob``: at each
    occasion after the first, a bottom-level unit (a student) moves to another unit of this level
    in the same parent (another teacher of the same school) with this probability; with it above
    zero this level is crossed with the levels below it, not nested.
    """

    name: str
    units: UnitCount = field(default_factory=UnitCount)
    sd: float = 0.0
    slopes: list[RandomSlope] = field(default_factory=list)
    move_prob: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.units, (int, np.integer)) and not isinstance(self.units, bool):
            self.units = UnitCount.fixed(int(self.units))


@dataclass
class Occasions:
    """Repeated occasions at the bottom: ``count`` per unit (numbered 1..count in column ``name``),
    each missing independently with probability ``missing_prob``."""

    name: str = "occasion"
    count: int = 2
    missing_prob: float = 0.0


@dataclass
class CrossedFactor:
    """A classification crossed with the nesting, e.g. the neighbourhood each student lives in.

    Each bottom-level unit (a student) is assigned to one unit of the factor, uniformly at random
    and independently of the other levels, among the factor's units in its own unit of ``within``
    (a level above the bottom: neighbourhoods within districts), or among all of them when
    ``within`` is None. ``units`` counts the factor's units per unit of ``within`` (in all when
    None); ``sd`` is the sd of their random intercepts. Every row of a student shares its unit.
    """

    name: str
    units: UnitCount = field(default_factory=UnitCount)
    sd: float = 0.0
    within: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.units, (int, np.integer)) and not isinstance(self.units, bool):
            self.units = UnitCount.fixed(int(self.units))


ALLOCATIONS = ("bernoulli", "fixed")


@dataclass
class TreatmentDesign:
    """A binary treatment with a fixed ``effect`` on units of ``level`` (a level name for a
    cluster-randomised design, or ``"observation"``).

    ``allocation`` says how units are assigned:

    - ``"bernoulli"``: each unit independently with ``probability`` (the count varies);
    - ``"fixed"``: exactly ``treated`` units in each block, chosen at random; without
      ``treated``, round(``probability`` x block size), halves rounded up. A block is one unit of
      the level ``block`` (a multisite trial: half the schools in each district), or the whole
      data set when ``block`` is None.
    """

    name: str = "treatment"
    effect: float = 0.0
    probability: float = 0.5
    level: str = OBSERVATION
    allocation: str = "bernoulli"
    treated: int | None = None
    block: str | None = None

    def treated_in_block(self, block_size: int) -> int:
        """How many of ``block_size`` units a fixed allocation treats."""
        if self.treated is not None:
            return int(self.treated)
        return int(math.floor(self.probability * block_size + 0.5))

    def describe(self) -> str:
        """E.g. 'exactly 5 per dist_id' or 'probability 0.2 per observation'."""
        if self.allocation != "fixed":
            return f"probability {self.probability:g} per {self.level}"
        count = f"exactly {self.treated}" if self.treated is not None else \
            f"a share {self.probability:g} (rounded, halves up)"
        within = f"in each {self.block}" if self.block else "in the whole sample"
        return f"{count} of the {self.level} units {within}"


@dataclass
class CovariateDesign:
    """A covariate drawn once per unit of ``level`` (or per row with ``"observation"``).

    ``distribution``: ``normal`` (mean, sd), ``binary`` (probability of 1), ``uniform`` (low,
    high), or ``time``: the occasion number minus one (0..count-1), only at the observation level.
    """

    name: str
    level: str = OBSERVATION
    distribution: str = "normal"
    coef: float = 0.0
    mean: float = 0.0
    sd: float = 1.0
    probability: float = 0.5
    low: float = 0.0
    high: float = 1.0


@dataclass
class Truth:
    """True parameters, named as fit results name them.

    ``fixed``: Stata term -> coefficient (``{"tutoring": 2.0, "_cons": 0.0}``). ``random``:
    ``"level:param"`` -> value (``"dist_id:sd(_cons)"``, ``"student_id:sd(time)"``,
    ``"student_id:corr(time,_cons)"`` when nonzero, ``"Residual:sd(Residual)"``). ``design`` and
    ``seed``, when known, say where simulated data came from.
    """

    fixed: dict[str, float] = field(default_factory=dict)
    random: dict[str, float] = field(default_factory=dict)
    design: dict | None = None
    seed: int | None = None

    def to_dict(self) -> dict:
        return to_jsonable(self)

    def source_design(self) -> "Design | None":
        """The design the data were simulated from, or None when unknown. Parsed once per design
        dict: the window asks for it on every fit, and parsing a design costs milliseconds."""
        if not self.design:
            return None
        cached = self.__dict__.get("_parsed_design")
        if cached is None or cached[0] is not self.design:
            cached = (self.design, Design.from_dict(self.design))
            self.__dict__["_parsed_design"] = cached
        return cached[1]

    @classmethod
    def from_dict(cls, data: dict) -> "Truth":
        if not isinstance(data, dict) or not isinstance(data.get("fixed", {}), dict):
            raise UserInputError("truth: expected an object with 'fixed' and 'random' parameters")
        return from_jsonable(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Truth":
        return cls.from_dict(json.loads(text))


@dataclass
class ExpectedCounts:
    """Expected units at each level (before missing occasions) and expected rows (after)."""

    units: dict[str, float]
    rows: float


@dataclass
class Design:
    """A hierarchy to simulate from; see the module docstring for the model."""

    levels: list[LevelDesign] = field(default_factory=list)
    occasions: Occasions | None = None
    residual_sd: float = 1.0
    intercept: float = 0.0
    treatment: TreatmentDesign | None = None
    covariates: list[CovariateDesign] = field(default_factory=list)
    outcome: str = "y"
    name: str = ""
    # Binary or count outcome (engine.glmm.simulate): the linear predictor without the residual is
    # the log-odds / probit / log-rate; residual_sd is then unused.
    family: str = "gaussian"  # 'gaussian', 'binomial' or 'poisson'
    link: str = "identity"  # 'identity'; 'logit' or 'probit' (binomial); 'log' (poisson)
    # Factors crossed with the nesting (neighbourhoods x schools): see CrossedFactor.
    crossed: list[CrossedFactor] = field(default_factory=list)

    # ----- look-ups ------------------------------------------------------------------------------
    @property
    def level_names(self) -> list[str]:
        return [level.name for level in self.levels]

    def level(self, name: str) -> LevelDesign:
        for level in self.levels:
            if level.name == name:
                return level
        raise UserInputError(f"no level {name!r} in the design; levels are {', '.join(self.level_names) or 'none'}")

    def crossed_factor(self, name: str) -> CrossedFactor:
        """The crossed factor named ``name``; UserInputError listing the factors if there is none."""
        for factor in self.crossed:
            if factor.name == name:
                return factor
        names = ", ".join(factor.name for factor in self.crossed) or "none"
        raise UserInputError(f"no crossed factor {name!r} in the design; crossed factors are {names}")

    def crossed_names(self) -> list[str]:
        """What is crossed, not nested: levels the bottom units move between, then crossed factors."""
        return [level.name for level in self.levels if level.move_prob > 0] + [f.name for f in self.crossed]

    def variable_levels(self) -> dict[str, str]:
        """Name of each variable (treatment, covariates) -> the level at which it varies."""
        found = {}
        if self.treatment is not None:
            found[self.treatment.name] = self.treatment.level
        for covariate in self.covariates:
            found[covariate.name] = covariate.level
        return found

    def treated_share(self) -> float:
        """Expected share of treated units (a fixed count over the expected block size)."""
        treatment = self.treatment
        if treatment is None:
            return 0.0
        if treatment.allocation != "fixed" or treatment.treated is None:
            return float(treatment.probability)
        counts = self.expected_counts().units
        top = counts[treatment.level] if treatment.level != OBSERVATION else self.expected_counts().rows
        blocks = counts[treatment.block] if treatment.block else 1.0
        return min(1.0, treatment.treated * blocks / top) if top > 0 else 0.0

    def variable_depth(self, level: str) -> int:
        """Depth of a level name (0 = outermost); ``"observation"`` is below every level."""
        if level == OBSERVATION:
            return len(self.levels)
        return self.level_names.index(level)

    # ----- validation ----------------------------------------------------------------------------
    def validate(self) -> "Design":
        """Check every field; raise UserInputError naming the first bad one. Returns self."""
        _validate(self)
        return self

    # ----- derived numbers -----------------------------------------------------------------------
    def expected_counts(self) -> ExpectedCounts:
        """Expected units per level (occasions included under their name) and expected rows."""
        units: dict[str, float] = {}
        total = 1.0
        for level in self.levels:
            total *= level.units.expected()
            units[level.name] = total
        rows = total
        if self.occasions is not None:
            rows = total * self.occasions.count
            units[self.occasions.name] = rows
            rows *= 1.0 - self.occasions.missing_prob
        for factor in self.crossed:
            parents = units.get(factor.within, 1.0) if factor.within else 1.0
            units[factor.name] = parents * factor.units.expected()
        return ExpectedCounts(units=units, rows=rows)

    def level_variances(self) -> dict[str, float]:
        """Random (unexplained) variance contributed by each level and the residual.

        A random slope adds ``sd^2 E[x^2] + 2 corr sd_u sd E[x]``: its variance averaged over the
        distribution of its variable.
        """
        moments = self._variable_moments()
        variances = {}
        for level in self.levels:
            total = level.sd**2
            for slope in level.slopes:
                mean, mean_square = moments[slope.variable]
                total += slope.sd**2 * mean_square + 2 * slope.corr * level.sd * slope.sd * mean
            variances[level.name] = total
        for factor in self.crossed:
            variances[factor.name] = factor.sd**2
        from engine.glmm.simulate import latent_residual_variance

        variances[RESIDUAL] = latent_residual_variance(self.family, self.link, self.residual_sd)
        return variances

    def variance_shares(self) -> dict[str, float]:
        """Share of the unexplained variance at each level and the residual (sums to 1)."""
        variances = self.level_variances()
        total = sum(variances.values())
        return {name: (value / total if total > 0 else 0.0) for name, value in variances.items()}

    def intraclass_correlations(self) -> dict[str, float]:
        """Correlation of two observations in the same unit of each level: the shares of that
        level and all levels above it."""
        shares = self.variance_shares()
        result, running = {}, 0.0
        for name in self.level_names:
            running += shares[name]
            result[name] = running
        for factor in self.crossed:
            # Two observations in the same unit of the factor share it and the levels it lies within.
            above = result[factor.within] if factor.within in result else 0.0
            result[factor.name] = above + shares[factor.name]
        return result

    def truth(self) -> Truth:
        """True parameters named as fit results name them."""
        fixed = {}
        if self.treatment is not None:
            fixed[self.treatment.name] = float(self.treatment.effect)
        for covariate in self.covariates:
            fixed[covariate.name] = float(covariate.coef)
        fixed["_cons"] = float(self.intercept)
        random = {}
        for level in self.levels:
            # Stata's order within a level: slopes first, _cons last.
            for slope in level.slopes:
                random[f"{level.name}:sd({slope.variable})"] = float(slope.sd)
            random[f"{level.name}:sd(_cons)"] = float(level.sd)
            for slope in level.slopes:
                if slope.corr != 0:
                    random[f"{level.name}:corr({slope.variable},_cons)"] = float(slope.corr)
        for factor in self.crossed:
            random[f"{factor.name}:sd(_cons)"] = float(factor.sd)
        if self.family == "gaussian":
            random[f"{RESIDUAL}:sd({RESIDUAL})"] = float(self.residual_sd)
        return Truth(fixed=fixed, random=random, design=self.to_dict())

    # ----- edits ---------------------------------------------------------------------------------
    def with_units(self, level_name: str, n: int) -> "Design":
        """A copy with a fixed ``n`` units per parent at ``level_name`` (the --units option)."""
        changed = self.copy()
        if level_name not in changed.level_names and any(f.name == level_name for f in changed.crossed):
            changed.crossed_factor(level_name).units = UnitCount.fixed(int(n))
            return changed
        changed.level(level_name).units = UnitCount.fixed(int(n))
        return changed

    def copy(self) -> "Design":
        return copy.deepcopy(self)

    def describe(self) -> str:
        """Plain-text summary: levels, occasions, fixed part, expected counts and variance shares."""
        return _describe(self)

    # ----- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Design":
        """Build from ``to_dict`` output (a ``format_version`` key is ignored); not validated."""
        if not isinstance(data, dict):
            raise UserInputError("design: expected a JSON object")
        data = {key: value for key, value in data.items() if key != "format_version"}
        data = _normalise_units(data)
        _check_fields(cls, data, "")
        try:
            return from_jsonable(cls, data)
        except UserInputError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            raise UserInputError(f"design: malformed field ({error})") from error

    def save(self, path: str | Path) -> None:
        """Write JSON with a ``format_version`` key."""
        from engine.atomic_write import write_text_atomically

        payload = {"format_version": FORMAT_VERSION, **self.to_dict()}
        write_text_atomically(path, json.dumps(payload, indent=1) + "\n", what="design file")

    @classmethod
    def load(cls, path: str | Path) -> "Design":
        """Read and validate a design saved by ``save``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise UserInputError(f"cannot read design file {path}: {error.strerror or error}") from error
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserInputError(f"design file {path} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise UserInputError(f"design file {path}: expected a JSON object")
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise UserInputError(
                f"design file {path} has format_version {version!r}; this program reads up to {FORMAT_VERSION}")
        try:
            return cls.from_dict(data).validate()
        except UserInputError as error:
            raise UserInputError(f"design file {path}: {error}") from error

    # ----- helpers -------------------------------------------------------------------------------
    def _variable_moments(self) -> dict[str, tuple[float, float]]:
        """E[x] and E[x^2] of every variable, for variance shares."""
        moments = {}
        if self.treatment is not None:
            p = self.treated_share()
            moments[self.treatment.name] = (p, p)
        for c in self.covariates:
            if c.distribution == "normal":
                moments[c.name] = (c.mean, c.sd**2 + c.mean**2)
            elif c.distribution == "binary":
                moments[c.name] = (c.probability, c.probability)
            elif c.distribution == "uniform":
                moments[c.name] = ((c.low + c.high) / 2, (c.low**2 + c.low * c.high + c.high**2) / 3)
            else:  # time: 0..T-1, equally likely (missingness is independent of time)
                count = self.occasions.count if self.occasions is not None else 1
                moments[c.name] = ((count - 1) / 2, (count - 1) * (2 * count - 1) / 6)
        return moments


def _normalise_units(data: dict) -> dict:
    """Accept ``"units": 5`` in JSON (levels and crossed factors) as shorthand for a fixed count."""
    for key in ("levels", "crossed"):
        entries = data.get(key)
        if isinstance(entries, list):
            data = dict(data)
            data[key] = [
                {**entry, "units": to_jsonable(UnitCount.fixed(entry["units"]))}
                if isinstance(entry, dict) and isinstance(entry.get("units"), (int, float))
                and not isinstance(entry.get("units"), bool) else entry
                for entry in entries
            ]
    return data


# ----- the shape of design JSON ---------------------------------------------------------------------

#: Fields that have a default in Python but must be written in a design file: a level without its
#: units would silently get one unit per parent.
_REQUIRED_IN_FILES = {"LevelDesign": ("units",), "CrossedFactor": ("units",)}
_FIELD_HINTS = {"units": 'units per parent, e.g. "units": 10 or {"distribution": "poisson", "mean": 10}'}


def _check_fields(cls, data, where: str) -> None:
    """Check a design's JSON against its dataclasses before building it, so that errors name the
    field in words: a missing or unknown field, or a value of the wrong kind (text for a number)."""
    names = [f.name for f in dataclasses.fields(cls)]
    label = where or "design"
    if not isinstance(data, dict):
        raise UserInputError(f"{label}: expected an object with the fields {', '.join(names)}, got {data!r}")
    unknown = [key for key in data if key not in names]
    if unknown:
        raise UserInputError(f"{label}: unknown field {unknown[0]!r}; the fields are {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        required = (spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING) \
            or spec.name in _REQUIRED_IN_FILES.get(cls.__name__, ())
        if spec.name not in data:
            if required:
                hint = f" ({_FIELD_HINTS[spec.name]})" if spec.name in _FIELD_HINTS else ""
                raise UserInputError(f"{label}: the field {spec.name!r} is missing{hint}")
            continue
        _check_value(hints[spec.name], data[spec.name], f"{where}: {spec.name}" if where else spec.name)


def _check_value(hint, value, where: str) -> None:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return
        (hint,) = [option for option in typing.get_args(hint) if option is not type(None)][:1]
        origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list):
            raise UserInputError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        for index, element in enumerate(value):
            name = element.get("name") or element.get("variable") if isinstance(element, dict) else None
            _check_value(item, element, f"{where}[{index}]" + (f" ({name})" if isinstance(name, str) else ""))
    elif dataclasses.is_dataclass(hint):
        if hint is UnitCount and not isinstance(value, dict):
            raise UserInputError(f"{where}: expected {_FIELD_HINTS['units']}; got {value!r}")
        _check_fields(hint, value, where)
    elif hint is float or hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserInputError(f"{where}: expected a number, got {value!r}")
    elif hint is str and not isinstance(value, str):
        raise UserInputError(f"{where}: expected text, got {value!r}")


# ----- validation ----------------------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def _is_integer(value) -> bool:
    return _is_number(value) and float(value) == int(value)


def _check_number(where: str, name: str, value, minimum: float | None = None, maximum: float | None = None,
                  integer: bool = False) -> None:
    label = f"{where}: {name}" if where else name
    if not (_is_integer(value) if integer else _is_number(value)):
        kind = "a whole number" if integer else "a finite number"
        raise UserInputError(f"{label} must be {kind}, got {value!r}")
    if minimum is not None and value < minimum:
        raise UserInputError(f"{label} must be >= {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise UserInputError(f"{label} must be <= {maximum:g}, got {value:g}")


def _check_name(where: str, value) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        raise UserInputError(f"{where}: name must be a variable name (letters, digits, _), got {value!r}")


def _validate(design: Design) -> None:
    if not design.levels:
        raise UserInputError("levels: the design needs at least one level")
    _check_name("outcome", design.outcome)
    from engine.glmm.simulate import check_design_family

    check_design_family(design.family, design.link)
    _check_number("", "residual_sd", design.residual_sd, minimum=0)
    _check_number("", "intercept", design.intercept)

    names: list[str] = []

    def claim(name: str, what: str) -> None:
        if name in names or name == OBSERVATION:
            raise UserInputError(f"{what}: name {name!r} is used twice (or reserved); column names must differ")
        names.append(name)

    claim(design.outcome, "outcome")
    for index, level in enumerate(design.levels):
        if not isinstance(level, LevelDesign):
            raise UserInputError(f"levels[{index}]: expected a level")
        _check_name(f"levels[{index}]", level.name)
        where = f"level {level.name}"
        claim(level.name, where)
        _check_number(where, "sd", level.sd, minimum=0)
        _validate_units(where, level.units, UNIT_DISTRIBUTIONS)
        _check_number(where, "move_prob", level.move_prob, minimum=0, maximum=1)
        if level.move_prob > 0:
            if design.occasions is None:
                raise UserInputError(f"{where}: move_prob needs occasions (units move between occasions)")
            if index == 0 or index == len(design.levels) - 1:
                raise UserInputError(
                    f"{where}: move_prob applies to a level between the top and the bottom (the bottom "
                    f"level's units move among this level's units within their parent)")
            if level.units.distribution == "fixed" and level.units.n < 2:
                raise UserInputError(f"{where}: move_prob needs at least 2 units per parent to move between")
    if design.occasions is not None:
        occasions = design.occasions
        _check_name("occasions", occasions.name)
        claim(occasions.name, "occasions")
        _check_number("occasions", "count", occasions.count, minimum=1, integer=True)
        _check_number("occasions", "missing_prob", occasions.missing_prob, minimum=0, maximum=1)
        if occasions.missing_prob >= 1:
            raise UserInputError("occasions: missing_prob must be < 1, got 1 (no data would remain)")

    for index, factor in enumerate(design.crossed):
        _validate_crossed_factor(design, index, factor, claim)

    allowed_levels = [*design.level_names, OBSERVATION]
    if design.treatment is not None:
        treatment = design.treatment
        _check_name("treatment", treatment.name)
        where = f"treatment {treatment.name}"
        claim(treatment.name, where)
        _check_number(where, "effect", treatment.effect)
        _check_number(where, "probability", treatment.probability, minimum=0, maximum=1)
        if treatment.level not in allowed_levels:
            raise UserInputError(
                f"{where}: level {treatment.level!r} does not exist; choose one of {', '.join(allowed_levels)}")
        _validate_allocation(design, treatment, where)
    for index, covariate in enumerate(design.covariates):
        _check_name(f"covariates[{index}]", covariate.name)
        where = f"covariate {covariate.name}"
        claim(covariate.name, where)
        _check_number(where, "coef", covariate.coef)
        if covariate.level not in allowed_levels:
            raise UserInputError(
                f"{where}: level {covariate.level!r} does not exist; choose one of {', '.join(allowed_levels)}")
        if covariate.distribution not in COVARIATE_DISTRIBUTIONS:
            raise UserInputError(
                f"{where}: distribution must be one of {', '.join(COVARIATE_DISTRIBUTIONS)}, "
                f"got {covariate.distribution!r}")
        if covariate.distribution == "normal":
            _check_number(where, "mean", covariate.mean)
            _check_number(where, "sd", covariate.sd, minimum=0)
        elif covariate.distribution == "binary":
            _check_number(where, "probability", covariate.probability, minimum=0, maximum=1)
        elif covariate.distribution == "uniform":
            _check_number(where, "low", covariate.low)
            _check_number(where, "high", covariate.high, minimum=covariate.low)
        elif design.occasions is None or covariate.level != OBSERVATION:
            raise UserInputError(
                f"{where}: distribution 'time' counts occasions, so it needs occasions and level 'observation'")

    variable_levels = design.variable_levels()
    for depth, level in enumerate(design.levels):
        seen = set()
        correlation = np.eye(len(level.slopes) + 1)
        for position, slope in enumerate(level.slopes, start=1):
            where = f"level {level.name}: random slope on {slope.variable!r}"
            if slope.variable not in variable_levels:
                known = ", ".join(variable_levels) or "none"
                raise UserInputError(f"{where}: no treatment or covariate of that name (have: {known})")
            if slope.variable in seen:
                raise UserInputError(f"{where}: listed twice")
            seen.add(slope.variable)
            _check_number(where, "sd", slope.sd, minimum=0)
            _check_number(where, "corr", slope.corr, minimum=-1, maximum=1)
            if design.variable_depth(variable_levels[slope.variable]) <= depth:
                raise UserInputError(
                    f"{where}: the variable must vary within {level.name} units, but it varies at level "
                    f"{variable_levels[slope.variable]!r}")
            correlation[0, position] = correlation[position, 0] = slope.corr
        if level.slopes and np.linalg.eigvalsh(correlation).min() < -1e-12:
            raise UserInputError(
                f"level {level.name}: the slopes' correlations with the intercept are jointly impossible "
                "(their squares must sum to at most 1)")

    counts = design.expected_counts()
    if counts.rows > MAX_ROWS or max(counts.units.values()) > MAX_ROWS:
        biggest = max(design.levels, key=lambda lv: lv.units.expected())
        raise UserInputError(
            f"the design expects {counts.rows:,.0f} rows; the limit is {MAX_ROWS:,} "
            f"(reduce units at a level such as {biggest.name})")


CROSSED_UNIT_DISTRIBUTIONS = ("fixed", "uniform", "poisson")


def _validate_units(where: str, units: UnitCount, allowed: tuple[str, ...]) -> None:
    """Units per parent (a level's) or per unit of ``within`` (a crossed factor's), of an allowed
    distribution."""
    if units.distribution not in allowed:
        raise UserInputError(
            f"{where}: units distribution must be one of {', '.join(allowed)}, got {units.distribution!r}")
    if units.distribution == "fixed":
        _check_number(where, "units", units.n, minimum=1, integer=True)
    elif units.distribution == "uniform":
        _check_number(where, "units min", units.min, minimum=1, integer=True)
        _check_number(where, "units max", units.max, minimum=units.min, integer=True)
    elif units.distribution == "empirical":
        if not units.sizes:
            raise UserInputError(f"{where}: empirical units need the observed group sizes (sizes is empty)")
        for size in units.sizes:
            _check_number(where, "units sizes", size, minimum=1, integer=True)
    else:
        _check_number(where, "units mean", units.mean, minimum=1)


def _validate_crossed_factor(design: Design, index: int, factor, claim) -> None:
    if not isinstance(factor, CrossedFactor):
        raise UserInputError(f"crossed[{index}]: expected a crossed factor")
    _check_name(f"crossed[{index}]", factor.name)
    where = f"crossed factor {factor.name}"
    claim(factor.name, where)
    _check_number(where, "sd", factor.sd, minimum=0)
    _validate_units(where, factor.units, CROSSED_UNIT_DISTRIBUTIONS)  # no observed sizes: no data behind it
    if factor.within is not None:
        above_bottom = design.level_names[:-1]
        if factor.within not in above_bottom:
            choices = ", ".join(above_bottom) or "none (the design has one level): leave within empty"
            raise UserInputError(
                f"{where}: within {factor.within!r} must be a level above the bottom level, one of {choices}")


def _validate_allocation(design: Design, treatment: TreatmentDesign, where: str) -> None:
    if treatment.allocation not in ALLOCATIONS:
        raise UserInputError(
            f"{where}: allocation must be one of {', '.join(ALLOCATIONS)}, got {treatment.allocation!r}")
    if treatment.allocation != "fixed":
        if treatment.treated is not None or treatment.block is not None:
            raise UserInputError(
                f"{where}: 'treated' and 'block' apply to a fixed allocation; set allocation to 'fixed' "
                f"or remove them")
        return
    if treatment.block is not None:
        if treatment.block not in design.level_names:
            raise UserInputError(
                f"{where}: block {treatment.block!r} is not a level; choose one of {', '.join(design.level_names)}")
        if design.variable_depth(treatment.block) >= design.variable_depth(treatment.level):
            raise UserInputError(
                f"{where}: the block level {treatment.block!r} must be above the treatment level "
                f"{treatment.level!r} (blocks hold the units that are assigned)")
    if treatment.treated is not None:
        _check_number(where, "treated", treatment.treated, minimum=0, integer=True)
        smallest = _smallest_block(design, treatment)
        if smallest is not None and treatment.treated > smallest:
            raise UserInputError(
                f"{where}: treated = {treatment.treated} but a block has only {smallest} "
                f"{treatment.level} units")


def _smallest_block(design: Design, treatment: TreatmentDesign) -> int | None:
    """Fewest assigned units a block can hold, when the unit counts make it certain (else None)."""
    start = 0 if treatment.block is None else design.variable_depth(treatment.block) + 1
    stop = design.variable_depth(treatment.level)
    smallest = 1
    for level in design.levels[start:stop + 1] if stop < len(design.levels) else design.levels[start:]:
        units = level.units
        if units.distribution == "fixed":
            smallest *= int(units.n)
        elif units.distribution == "uniform":
            smallest *= int(units.min)
        elif units.distribution == "empirical":
            smallest *= int(min(units.sizes))
        else:
            return None
    if treatment.level == OBSERVATION and design.occasions is not None:
        if design.occasions.missing_prob > 0:
            return None
        smallest *= design.occasions.count
    return smallest


# ----- text ----------------------------------------------------------------------------------------

def _describe(design: Design) -> str:
    counts = design.expected_counts()
    shares = design.variance_shares()
    iccs = design.intraclass_correlations()
    lines = [f"Design {design.name}".rstrip() + f": outcome {design.outcome}"]
    lines.append(f"{'level':<16}{'units/parent':>24}{'sd(_cons)':>11}{'exp. units':>15}{'share':>8}{'ICC':>8}")
    for level in design.levels:
        lines.append(
            f"{level.name:<16}{level.units.describe():>24}{level.sd:>11g}{counts.units[level.name]:>15,.0f}"
            f"{shares[level.name]:>8.3f}{iccs[level.name]:>8.3f}")
        for slope in level.slopes:
            corr = f", corr with _cons {slope.corr:g}" if slope.corr else ""
            lines.append(f"{'':<16}random slope on {slope.variable}: sd {slope.sd:g}{corr}")
    crossed = [f"{name} ({'units move' if name in design.level_names else 'crossed factor'})"
               for name in design.crossed_names()]
    if crossed:
        lines.append(f"Crossed, not nested: {', '.join(crossed)}")
    for index, level in enumerate(design.levels):
        if level.move_prob > 0:
            parent, bottom = design.levels[index - 1].name, design.levels[-1].name
            lines.append(
                f"Crossed: each {bottom} moves to another {level.name} of the same {parent} with probability "
                f"{level.move_prob:g} at each occasion after the first, so {level.name} is crossed with {bottom} "
                f"(fit || _all: R.{level.name} after the levels above it, or lme4's (1|{level.name}))")
    for factor in design.crossed:
        within = f" within each {factor.within}" if factor.within else ""
        lines.append(
            f"{factor.name:<16}{factor.units.describe() + (' per ' + factor.within if factor.within else ' in all'):>24}"
            f"{factor.sd:>11g}{counts.units[factor.name]:>15,.0f}{shares[factor.name]:>8.3f}{iccs[factor.name]:>8.3f}")
        lines.append(
            f"Crossed: each {design.levels[-1].name} is assigned to one {factor.name}{within} at random, "
            f"independently of the nesting, so {factor.name} is crossed with "
            f"{', '.join(design.level_names[design.level_names.index(factor.within) + 1:] if factor.within else design.level_names)} "
            f"(fit || _all: R.{factor.name}{' after || ' + factor.within + ':' if factor.within else ''}, "
            f"or lme4's (1|{factor.name}))")
    if design.occasions is not None:
        occ = design.occasions
        missing = f", each missing with probability {occ.missing_prob:g}" if occ.missing_prob else ""
        lines.append(f"{occ.name:<16}{occ.count:>24}{'':>11}{counts.units[occ.name]:>15,.0f}  (occasions{missing})")
    if design.family == "gaussian":
        lines.append(f"{RESIDUAL:<16}{'':>24}{design.residual_sd:>11g}{'':>15}{shares[RESIDUAL]:>8.3f}")
    else:
        lines.append(f"Outcome: {design.family} with {design.link} link; sds, intercept and effects on the latent "
                     f"scale" + (" (latent residual variance " + ("pi^2/3" if design.link == "logit" else "1") + ")"
                                 if design.family == "binomial" else " (counts: no residual; shares among levels)"))
    lines.append(f"Expected rows: {counts.rows:,.0f}")
    fixed = [f"intercept {design.intercept:g}"]
    if design.treatment is not None:
        t = design.treatment
        fixed.append(f"treatment {t.name}: effect {t.effect:g}, {t.describe()}")
    for c in design.covariates:
        params = {"normal": f"normal(mean {c.mean:g}, sd {c.sd:g})", "binary": f"binary(p {c.probability:g})",
                  "uniform": f"uniform({c.low:g}, {c.high:g})", "time": "time (occasion - 1)"}[c.distribution]
        fixed.append(f"covariate {c.name}: {params} per {c.level}, coef {c.coef:g}")
    lines.append("Fixed part: " + "; ".join(fixed))
    lines.append("share = part of the unexplained variance at the level; "
                 "ICC = correlation of two observations in the same unit")
    return "\n".join(lines)
