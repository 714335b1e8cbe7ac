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

    # ----- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = to_jsonable(self)
        data["format_version"] = FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "project") -> "Project":
        """Read any format version this program knows; newer or unknown versions are refused."""
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


def _load_version_1(data: dict) -> Project:
    if not isinstance(data.get("design"), dict):
        raise UserInputError("the design is missing")
    project = from_jsonable(Project, {key: value for key, value in data.items() if key != "format_version"})
    project.design = Design.from_dict(data["design"])  # accepts the shorthand units of design files
    unknown = [name for name in project.estimators if name not in ESTIMATORS]
    if unknown:
        raise UserInputError(f"unknown estimator {unknown[0]!r}; choose from {', '.join(ESTIMATORS)}")
    return project


LOADERS: dict[int, Callable[[dict], Project]] = {1: _load_version_1}
