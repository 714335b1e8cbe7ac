"""A project: the design, where the data came from, the model and the fits of a session, as JSON.

The data themselves are not stored: a simulation is repeated from its design and seed (the
simulation is reproducible), a file is read again from its path. Fit results are stored
without their per-row arrays (``FitResult``'s transient fields), so plots that need them ask
for a refit after a project is reopened.

Every file carries ``format_version``; ``LOADERS`` maps each version this program has written
to a function that reads it, so old projects stay readable when the format changes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from engine.atomic_write import write_text_atomically
from engine.design import Design
from engine.errors import UserInputError
from engine.intervals import IntervalRequest
from engine.model_spec import ModelSpec
from engine.results import FitResult
from engine.serialize import from_jsonable, to_jsonable

FORMAT_VERSION = 1
PROJECT_SUFFIX = ".hlmproj"
ESTIMATORS = ("mixed", "ols", "fe", "re")

SIMULATION = "simulation"
FILE = "file"


@dataclass
class ColumnRoles:
    """What the columns of a data file are: the outcome, candidate predictors and the level ids
    (outermost first)."""

    outcome: str = ""
    predictors: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


@dataclass
class DataSource:
    """Enough to get the same data again: a simulation (its design and seed) or a file path."""

    kind: str = SIMULATION
    design: Optional[Design] = None
    seed: Optional[int] = None
    path: str = ""
    roles: Optional[ColumnRoles] = None

    @classmethod
    def simulation(cls, design: Design, seed: int) -> "DataSource":
        return cls(kind=SIMULATION, design=design.copy(), seed=int(seed))

    @classmethod
    def file(cls, path: str | Path, roles: ColumnRoles | None = None) -> "DataSource":
        return cls(kind=FILE, path=str(path), roles=roles)

    def describe(self) -> str:
        if self.kind == SIMULATION:
            name = self.design.name if self.design is not None and self.design.name else "design"
            return f"simulated from {name}, seed {self.seed}"
        return Path(self.path).name


@dataclass
class FitRecord:
    """One fit of the session's history: a label for lists and the estimator's result (the
    model it fitted is ``result.spec`` for mixed models, ``result.model`` for all). Fits made
    together (one press of Fit, several estimators) share ``run``, so they can be compared."""

    label: str
    result: FitResult
    data_label: str = ""
    run: int = 0


@dataclass
class Project:
    """Everything a session saves. ``design`` is the design form's content, which may differ
    from the design that made the current data (``data_source.design``)."""

    design: Design = field(default_factory=Design)
    seed: int = 1
    data_source: Optional[DataSource] = None
    model: Optional[ModelSpec] = None
    estimators: list[str] = field(default_factory=lambda: ["mixed"])
    fits: list[FitRecord] = field(default_factory=list)
    format_version: int = FORMAT_VERSION
    # Parts of the file that could not be read and were left out, one sentence each (not saved).
    load_problems: list[str] = field(default_factory=list, metadata={"transient": True})
    # The Model tab's choice of confidence intervals (Wald, profile, bootstrap with its draws), so a
    # reopened project fits as it was set up (None: the window's default, Wald).
    intervals: Optional[IntervalRequest] = None

    # ----- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = to_jsonable(self)
        data["format_version"] = FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "project") -> "Project":
        """Read any format version this program knows; newer or unknown versions are refused.

        A file without a readable design is refused; any other part that cannot be read (a fit
        that is not an object, a model that no longer parses, a bad data source) is left out and
        named in ``load_problems``, and the rest is loaded."""
        if not isinstance(data, dict):
            raise UserInputError(f"{where}: expected a JSON object")
        version = data.get("format_version")
        loader = LOADERS.get(version) if isinstance(version, int) else None
        if loader is None:
            known = ", ".join(str(v) for v in sorted(LOADERS))
            raise UserInputError(
                f"{where} has format_version {version!r}; this program reads versions {known}")
        try:
            return loader(data)
        except UserInputError as error:
            raise UserInputError(f"{where}: {error}") from error
        except (TypeError, AttributeError, KeyError, ValueError) as error:
            raise UserInputError(f"{where}: malformed field ({error})") from error

    def save(self, path: str | Path) -> None:
        """Write JSON atomically: a crash while saving leaves the previous file intact."""
        path = Path(path)
        data = self.to_dict()
        if self.data_source is not None and self.data_source.kind == FILE:
            data["data_source"]["path"] = _relative_if_possible(self.data_source.path, path.parent)
        write_text_atomically(path, json.dumps(data, indent=1) + "\n", what="project file")

    @classmethod
    def load(cls, path: str | Path) -> "Project":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise UserInputError(f"cannot read project file {path}: {error.strerror or error}") from error
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserInputError(f"project file {path} is not valid JSON: {error}") from error
        project = cls.from_dict(data, where=f"project file {path}")
        source = project.data_source
        if source is not None and source.kind == FILE and source.path and not Path(source.path).is_absolute():
            # Data paths are stored relative to the project so that the pair can be moved together.
            source.path = str((path.parent / source.path).resolve())
        return project


def _relative_if_possible(data_path: str, project_dir: Path) -> str:
    try:
        return os.path.relpath(Path(data_path).resolve(), project_dir.resolve())
    except ValueError:  # another drive on Windows
        return str(data_path)


#: What goes wrong when a hand-edited or older file holds a part of the wrong shape.
_PART_ERRORS = (UserInputError, TypeError, AttributeError, KeyError, ValueError, IndexError)


def _load_version_1(data: dict) -> Project:
    if not isinstance(data.get("design"), dict):
        raise UserInputError("the design is missing")
    project = Project(design=Design.from_dict(data["design"]))  # accepts the shorthand units of design files
    problems = project.load_problems
    if "seed" in data:
        _read_part(problems, "the seed", lambda: setattr(project, "seed", _integer(data["seed"])))
    if data.get("data_source") is not None:
        _read_part(problems, "the data source", lambda: setattr(project, "data_source", _data_source(data["data_source"])))
    if data.get("model") is not None:
        _read_part(problems, "the model", lambda: setattr(project, "model", _model(data["model"])))
    if "estimators" in data:
        _read_part(problems, "the estimators", lambda: setattr(project, "estimators", _estimators(data["estimators"])))
    if data.get("intervals") is not None:
        _read_part(problems, "the intervals", lambda: setattr(project, "intervals", _intervals(data["intervals"])))
    fits = data.get("fits") or []
    if not isinstance(fits, list):
        problems.append(f"the fits: expected a list, found {type(fits).__name__}; left out")
        fits = []
    for number, entry in enumerate(fits, start=1):
        label = entry.get("label") if isinstance(entry, dict) else None
        what = f"fit {number}" + (f" ({label!r})" if isinstance(label, str) and label else "")
        _read_part(problems, what, lambda entry=entry: project.fits.append(_fit_record(entry)))
    return project


def _read_part(problems: list[str], what: str, read: Callable[[], None]) -> None:
    try:
        read()
    except _PART_ERRORS as error:
        problems.append(f"{what}: {error}; left out")


def _intervals(value) -> IntervalRequest:
    return from_jsonable(IntervalRequest, _object(value, "the intervals")).check()


def _integer(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserInputError(f"expected a whole number, found {value!r}")
    return value


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        shown = "null" if value is None else repr(value)
        raise UserInputError(f"expected {what} (a JSON object), found {shown}")
    return value


def _data_source(value) -> DataSource:
    source = from_jsonable(DataSource, _object(value, "a data source"))
    if source.kind not in (SIMULATION, FILE):
        raise UserInputError(f"kind must be {SIMULATION!r} or {FILE!r}, not {source.kind!r}")
    if source.kind == SIMULATION:
        if not isinstance(value.get("design"), dict):
            raise UserInputError("a simulation needs its design")
        source.design = Design.from_dict(value["design"])
        source.seed = _integer(source.seed)
    elif not isinstance(source.path, str) or not source.path:
        raise UserInputError("a data file needs its path")
    return source


def _model(value) -> ModelSpec:
    spec = from_jsonable(ModelSpec, _object(value, "a model"))
    if not isinstance(spec.outcome, str) or not spec.outcome:
        raise UserInputError("the model has no outcome")
    spec.variables()  # the terms must still be readable
    return spec


def _estimators(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise UserInputError(f"expected a list of names, found {value!r}")
    unknown = [name for name in value if name not in ESTIMATORS]
    if unknown:
        raise UserInputError(f"unknown estimator {unknown[0]!r}; choose from {', '.join(ESTIMATORS)}")
    return list(value)


def _fit_record(value) -> FitRecord:
    record = from_jsonable(FitRecord, _object(value, "a fit"))
    result = record.result
    if not isinstance(record.label, str) or not isinstance(result, FitResult):
        raise UserInputError("a fit needs a label and a result")
    if result.estimator not in ESTIMATORS:
        raise UserInputError(f"unknown estimator {result.estimator!r}")
    if result.estimator == "mixed":
        try:
            ModelSpec.parse(result.model)
        except UserInputError as error:
            raise UserInputError(f"its model {result.model!r} no longer parses ({error})") from error
        if result.spec is None:
            raise UserInputError("the mixed model's specification is missing")
        _model(to_jsonable(result.spec))
    return record


LOADERS: dict[int, Callable[[dict], Project]] = {1: _load_version_1}
