"""A Monte Carlo study: a design, the models to fit, how many replications, a seed, a sweep.

The study is one JSON-saved object, so a run can be repeated exactly: every replication's data
come from a seed derived from the study's base seed, the sweep index and the replication index
(``numpy.random.SeedSequence`` with those indices as its spawn key), never from the worker that
happens to run it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from engine.design import RESIDUAL, Design
from engine.errors import UserInputError
from engine.montecarlo.precision import StoppingRule
from engine.serialize import to_jsonable

FORMAT_VERSION = 1
SWEEP_KINDS = ("units", "sd", "effect")
SWEEP_FORMS = ("write LEVEL=values for units per parent (dist_id=5,10,20), sd:LEVEL=values for a level's "
               "random-intercept sd (sd:school_id=0,1,3; sd:Residual=4,6) or effect:VARIABLE=values for a "
               "treatment or covariate coefficient (effect:tutoring=0,0.5,1)")


@dataclass
class Sweep:
    """One design value varied over a list: the x axis of a "does more data help?" plot.

    Attributes
    ----------
    kind : str
        ``"units"`` (fixed units per parent at a level), ``"sd"`` (random-intercept sd of a level,
        or the residual sd with target ``"Residual"``) or ``"effect"`` (coefficient of the treatment
        or of a covariate).
    target : str
        The level or variable the values apply to.
    values : list of float
        The values, in the order given; whole numbers for ``units``.
    """

    kind: str
    target: str
    values: list[float] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "Sweep":
        """Parse ``dist_id=5,10,20``, ``sd:school_id=0,1,3`` or ``effect:tutoring=0,0.5,1``.

        Raises
        ------
        UserInputError
            If the text has none of these forms or a value is not a number.
        """
        name, equals, value_text = (text or "").partition("=")
        kind, colon, target = name.strip().partition(":")
        if not colon:
            kind, target = "units", kind
        kind, target = kind.strip().lower(), target.strip()
        if not equals or not target or kind not in SWEEP_KINDS:
            raise UserInputError(f"--sweep {text!r}: {SWEEP_FORMS}")
        try:
            values = [float(piece) for piece in value_text.split(",") if piece.strip()]
        except ValueError:
            raise UserInputError(f"--sweep {text!r}: the values must be numbers separated by commas") from None
        sweep = cls(kind=kind, target=target, values=values)
        sweep.check()
        return sweep

    def check(self) -> None:
        """Check the values on their own (``check_design`` checks them against a design)."""
        if self.kind not in SWEEP_KINDS:
            raise UserInputError(f"sweep kind must be one of {', '.join(SWEEP_KINDS)}, not {self.kind!r}")
        if not self.values:
            raise UserInputError(f"sweep {self.label}: give at least one value")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in self.values):
            raise UserInputError(f"sweep {self.label}: every value must be a finite number")
        if len(set(self.values)) != len(self.values):
            raise UserInputError(f"sweep {self.label}: a value is listed twice")
        if self.kind == "units" and not all(v >= 1 and float(v) == int(v) for v in self.values):
            raise UserInputError(f"sweep {self.label}: units per parent must be whole numbers >= 1")
        if self.kind == "sd" and min(self.values) < 0:
            raise UserInputError(f"sweep {self.label}: an sd cannot be negative")

    @property
    def label(self) -> str:
        """What the values are: ``dist_id`` (units), ``sd:school_id`` or ``effect:tutoring``."""
        return self.target if self.kind == "units" else f"{self.kind}:{self.target}"

    def to_text(self) -> str:
        """The --sweep text that parses back to this sweep."""
        return f"{self.label}=" + ",".join(f"{value:g}" for value in self.values)

    def apply(self, design: Design, value: float) -> Design:
        """A copy of ``design`` with this sweep's design value set to ``value``."""
        if self.kind == "units":
            return design.with_units(self.target, int(value))
        changed = design.copy()
        if self.kind == "sd":
            if self.target == RESIDUAL:
                changed.residual_sd = float(value)
            elif self.target in [factor.name for factor in changed.crossed]:
                changed.crossed_factor(self.target).sd = float(value)
            else:
                changed.level(self.target).sd = float(value)
            return changed
        if changed.treatment is not None and changed.treatment.name == self.target:
            changed.treatment.effect = float(value)
            return changed
        for covariate in changed.covariates:
            if covariate.name == self.target:
                covariate.coef = float(value)
                return changed
        known = ", ".join(changed.variable_levels()) or "none"
        raise UserInputError(f"sweep {self.label}: the design has no treatment or covariate {self.target!r} "
                             f"(have: {known})")

    def to_dict(self) -> dict:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Sweep":
        if not isinstance(data, dict):
            raise UserInputError("sweep: expected an object with kind, target and values")
        try:
            sweep = cls(kind=str(data["kind"]), target=str(data["target"]),
                        values=[float(v) for v in data["values"]])
        except (KeyError, TypeError, ValueError) as error:
            raise UserInputError(f"sweep: malformed field ({error})") from None
        sweep.check()
        return sweep


@dataclass
class Study:
    """What to simulate, what to fit and how often.

    Attributes
    ----------
    design : Design
        The data-generating design (at each sweep value, the design with that value set).
    models : list of str
        Models fitted to every replication: Stata ``mixed`` syntax
        (``"perform tutoring || dist_id: || school_id:, reml"``) or estimator strings of
        :mod:`engine.estimators` (``"ols"``, ``"fe student_id"``, ``"re student_id"``,
        ``"mixed || student_id:, reml"``) fitted to the design's outcome, treatment and covariates.
    reps : int
        Replications at each sweep value.
    seed : int
        Base seed (>= 0); replication seeds derive from it (see :meth:`replication_seed`).
    sweep : Sweep, optional
        A design value varied over a list; None runs the design as it is.
    name : str
        Free text for reports.
    alpha : float
        Coverage is of (1 - alpha) intervals, power is at level alpha (default 0.05).
    dfmethod : str, optional
        Denominator df of the mixed models' t tests and intervals (Stata's ``dfmethod()`` name:
        residual, repeated, anova, satterthwaite, kroger); None keeps each model's own (z by default).
    precision : StoppingRule, optional
        Stop each sweep value early once its Monte Carlo SEs meet these targets, checked after
        whole rounds of replications (``reps`` is then the maximum); see
        :mod:`engine.montecarlo.precision`.
    """

    design: Design
    models: list[str]
    reps: int = 100
    seed: int = 0
    sweep: Optional[Sweep] = None
    name: str = ""
    alpha: float = 0.05
    dfmethod: Optional[str] = None
    precision: Optional[StoppingRule] = None

    # ----- derived -------------------------------------------------------------------------------
    @property
    def sweep_values(self) -> list[Optional[float]]:
        """The sweep's values, or ``[None]`` without a sweep: one entry per sweep index."""
        return list(self.sweep.values) if self.sweep is not None else [None]

    @property
    def total_replications(self) -> int:
        """Replications over all sweep values (each fits every model)."""
        return self.reps * len(self.sweep_values)

    def design_at(self, sweep_index: int) -> Design:
        """The design of one sweep index (the study's design without a sweep)."""
        if self.sweep is None:
            return self.design.copy()
        return self.sweep.apply(self.design, self.sweep.values[sweep_index])

    def replication_seed(self, sweep_index: int, rep: int) -> int:
        """Seed of one replication's data; see :func:`replication_seed`."""
        return replication_seed(self.seed, sweep_index, rep)

    # ----- validation ----------------------------------------------------------------------------
    def validate(self) -> "Study":
        """Check the study before any work starts: counts, seed, the design at every sweep value,
        and that every model parses and reads only columns the design simulates. Returns self.

        Raises
        ------
        UserInputError
            Naming the first problem.
        """
        from engine.montecarlo.models import load_model

        if not isinstance(self.reps, int) or isinstance(self.reps, bool) or self.reps < 1:
            raise UserInputError(f"reps must be a whole number >= 1, got {self.reps!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise UserInputError(f"seed must be a whole number >= 0, got {self.seed!r}")
        if (not isinstance(self.alpha, (int, float)) or isinstance(self.alpha, bool)
                or not math.isfinite(self.alpha) or not 0.0 < self.alpha < 1.0):
            raise UserInputError(f"alpha must be a number between 0 and 1 (e.g. 0.05 for 95% intervals), "
                                 f"got {self.alpha!r}")
        if not self.models:
            raise UserInputError("give at least one model to fit")
        from engine.model_spec import parse_dfmethod
        self.dfmethod = parse_dfmethod(self.dfmethod)
        repeated = sorted({m for m in self.models if self.models.count(m) > 1})
        if repeated:
            raise UserInputError(f"model {repeated[0]!r} is listed twice")
        self.design.validate()
        if self.sweep is not None:
            self.sweep.check()
            crossed = [factor.name for factor in self.design.crossed]
            if (self.sweep.kind == "units" or (self.sweep.kind == "sd" and self.sweep.target != RESIDUAL)) \
                    and self.sweep.target not in crossed:
                self.design.level(self.sweep.target)  # an unknown level fails here, naming the choices
            for index, value in enumerate(self.sweep.values):
                try:
                    self.design_at(index).validate()
                except UserInputError as error:
                    raise UserInputError(f"sweep {self.sweep.label}={value:g}: {error}") from None
        columns = set(design_columns(self.design))
        for text in self.models:
            model = load_model(text, self.design, self.dfmethod)
            missing = [name for name in model.variables if name not in columns]
            if missing:
                raise UserInputError(
                    f"model {text!r} reads {', '.join(missing)}, which the design does not simulate; "
                    f"its columns are {', '.join(design_columns(self.design))}")
        if self.precision is not None:
            self.precision.check()
        return self

    # ----- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict with a ``format_version`` key."""
        return {"format_version": FORMAT_VERSION, **to_jsonable(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "Study":
        """Rebuild from :meth:`to_dict` output (not validated: call :meth:`validate`)."""
        if not isinstance(data, dict) or "design" not in data:
            raise UserInputError("study: expected an object with a design, models, reps and seed")
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise UserInputError(f"study has format_version {version!r}; this program reads up to {FORMAT_VERSION}")
        models = data.get("models", [])
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise UserInputError("study: models must be a list of model strings")
        sweep = data.get("sweep")
        dfmethod = data.get("dfmethod")
        if dfmethod is not None and not isinstance(dfmethod, str):
            raise UserInputError("study: dfmethod must be a df method's name, e.g. \"kroger\"")
        precision = data.get("precision")
        study = cls(design=Design.from_dict(data["design"]), models=list(models), reps=data.get("reps", 100),
                    seed=data.get("seed", 0), sweep=Sweep.from_dict(sweep) if sweep is not None else None,
                    name=str(data.get("name", "")), alpha=data.get("alpha", 0.05),
                    precision=StoppingRule.from_dict(precision) if precision is not None else None)
        study.dfmethod = dfmethod
        return study

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Study":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as error:
            raise UserInputError(f"study: not valid JSON ({error})") from None

    def save(self, path: str | Path) -> None:
        try:
            Path(path).write_text(self.to_json() + "\n", encoding="utf-8")
        except OSError as error:
            raise UserInputError(f"cannot write study file {path}: {error.strerror or error}") from None

    @classmethod
    def load(cls, path: str | Path) -> "Study":
        """Read and validate a study saved by :meth:`save`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise UserInputError(f"cannot read study file {path}: {error.strerror or error}") from None
        try:
            return cls.from_json(text).validate()
        except UserInputError as error:
            raise UserInputError(f"study file {path}: {error}") from None


def replication_seed(base_seed: int, sweep_index: int, rep: int) -> int:
    """The seed of one replication's data.

    ``SeedSequence(base_seed, spawn_key=(sweep_index, rep))`` gives statistically independent
    streams for every (sweep index, replication) pair, so the data do not depend on how the
    replications are split among workers. The 63-bit result fits a signed 64-bit column and is
    what ``simulate --seed`` takes to redraw that replication's data.

    Parameters
    ----------
    base_seed : int
        The study's seed (>= 0).
    sweep_index : int
        Position of the sweep value (0 without a sweep).
    rep : int
        Replication index, 0-based.

    Returns
    -------
    int
        A seed in [0, 2**63).
    """
    sequence = np.random.SeedSequence(base_seed, spawn_key=(sweep_index, rep))
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def design_columns(design: Design) -> list[str]:
    """Columns a simulation of ``design`` has that a model may read: level ids, crossed factors'
    ids, the occasion, the treatment, the covariates and the outcome."""
    names = list(design.level_names) + [factor.name for factor in design.crossed]
    if design.occasions is not None:
        names.append(design.occasions.name)
    names += list(design.variable_levels())
    names.append(design.outcome)
    return names


def single_group_notes(study: Study) -> list[str]:
    """Where a sweep (or the design) leaves the top level with a single unit, say that the models
    using that level cannot identify its variance: their fits hold it at zero with a warning, so
    those replications count under "bound." and "at 0" rather than as estimates of zero."""
    from engine.montecarlo.models import load_model

    notes = []
    for index, value in enumerate(study.sweep_values):
        design = study.design_at(index)
        top = design.levels[0] if design.levels else None
        if top is None or top.units.distribution != "fixed" or top.units.n != 1:
            continue
        where = "" if value is None else f"at {study.sweep.label} = {value:g}: "
        for text in study.models:
            if top.name in load_model(text, study.design, study.dfmethod).variables:
                notes.append(f"{where}level {top.name} has a single unit, so {text!r} cannot identify its variance "
                             f"(not identified with one group); its fits hold it at zero with a warning")
    return notes
