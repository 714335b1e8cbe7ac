"""The open project and the data in memory, shared by the window's views.

The ``Project`` (engine/project.py) is what is saved; the session adds what is not: the data
frame, its truth, the column roles, the file path and whether there are unsaved changes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PySide6.QtCore import QObject, Signal

from engine.design import Design, Truth
from engine.project import ColumnRoles, DataSource, FitRecord, Project
from engine.results import FitResult

SHORT_ESTIMATOR_NAMES = {"ols": "OLS", "fe": "xtreg fe", "re": "xtreg re"}


def roles_of_design(design: Design) -> ColumnRoles:
    """Simulated data: the outcome, the treatment and covariates as predictors, the level ids and
    the crossed factors' ids."""
    return ColumnRoles(outcome=design.outcome, predictors=list(design.variable_levels()),
                       ids=design.level_names + [factor.name for factor in design.crossed])


def fit_label(number: int, result: FitResult) -> str:
    """How a fit is listed in the history, e.g. '#3 Mixed REML: dist_id > school_id'."""
    if result.estimator == "mixed":
        levels = " > ".join(result.spec.level_names) if result.spec is not None else ""
        return f"#{number} Mixed {result.method}" + (f": {levels}" if levels else "")
    name = SHORT_ESTIMATOR_NAMES.get(result.estimator, result.estimator)
    panel = result.name.split(" ", 1)[1] if result.estimator in ("fe", "re") and " " in result.name else ""
    return f"#{number} {name}" + (f": {panel}" if panel else "")


class Session(QObject):
    data_changed = Signal()
    modified_changed = Signal(bool)
    path_changed = Signal(object)  # Path or None

    def __init__(self, project: Project, parent=None):
        super().__init__(parent)
        self.project = project
        self.path: Path | None = None
        self.modified = False
        self.frame: pd.DataFrame | None = None
        self.truth: Truth | None = None
        self.roles = ColumnRoles()
        self.data_description = ""

    # ----- data ------------------------------------------------------------------------------------
    def set_data(self, frame: pd.DataFrame, truth: Truth | None, roles: ColumnRoles, source: DataSource) -> None:
        self.frame = frame
        self.truth = truth
        self.roles = roles
        self.project.data_source = source
        self.data_description = source.describe()
        self.data_changed.emit()

    def true_shares(self) -> dict[str, float] | None:
        """The design's variance shares when the data were simulated (for the share plot)."""
        if self.truth is None or not self.truth.design:
            return None
        try:
            return self.truth.source_design().variance_shares()
        except (ValueError, TypeError, ZeroDivisionError):
            return None

    # ----- fits ------------------------------------------------------------------------------------
    def add_run(self, results: list[FitResult]) -> list[FitRecord]:
        """Record the fits of one press of Fit; returns their history entries."""
        run = max((record.run for record in self.project.fits), default=0) + 1
        records = []
        for result in results:
            number = len(self.project.fits) + 1
            record = FitRecord(label=fit_label(number, result), result=result, data_label=self.data_description,
                               run=run)
            self.project.fits.append(record)
            records.append(record)
        self.set_modified()
        return records

    def clear_fits(self) -> None:
        self.project.fits.clear()
        self.set_modified()

    # ----- file state ------------------------------------------------------------------------------
    def set_modified(self, modified: bool = True) -> None:
        if modified != self.modified:
            self.modified = modified
            self.modified_changed.emit(modified)

    def replace_project(self, project: Project, path: Path | None) -> None:
        self.project = project
        self.frame = None
        self.truth = None
        self.roles = ColumnRoles()
        self.data_description = ""
        self.set_path(path)
        self.set_modified(False)

    def set_path(self, path: Path | None) -> None:
        self.path = path
        self.path_changed.emit(path)
