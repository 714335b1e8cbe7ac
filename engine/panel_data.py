"""Input checks, listwise deletion and the choice of standard errors for regress / xtreg.

The estimators in :mod:`engine.panel` share these steps: every column the model reads must
exist, the outcome must be numeric, rows with a missing value in any of those columns are
dropped (and counted), and ``vce`` is resolved to the column that defines the clusters.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from engine.design_matrix import FixedDesign, build_fixed_design, term_variables
from engine.errors import UserInputError

VCE_TYPES = ("conventional", "robust", "cluster")


@dataclass
class VceChoice:
    """Standard errors as Stata's ``vce()`` option names them.

    Attributes
    ----------
    kind : str
        'conventional', 'robust' or 'cluster', as the user asked.
    cluster_column : str or None
        The column whose values define the clusters: the ``cluster`` column, or for
        ``xtreg`` with ``vce(robust)`` the panel variable (Stata clusters by panel then).
    """

    kind: str
    cluster_column: Optional[str] = None
    cluster_option: Optional[str] = None  # the column written in vce(cluster ...)

    @property
    def clustered(self) -> bool:
        """Whether the covariance is a cluster-robust sandwich."""
        return self.cluster_column is not None

    def stata_option(self) -> str:
        """The ``vce()`` option of the equivalent Stata command ('' for conventional)."""
        if self.kind == "robust":
            return "vce(robust)"
        if self.kind == "cluster":
            return f"vce(cluster {self.cluster_option})"
        return ""


def resolve_vce(vce: str, cluster: Optional[str], panel: Optional[str] = None) -> VceChoice:
    """Check ``vce`` and ``cluster`` and name the column that defines the clusters.

    Parameters
    ----------
    vce : str
        'conventional', 'robust' or 'cluster' (case is ignored).
    cluster : str or None
        The cluster column; required with 'cluster', refused otherwise.
    panel : str or None
        The panel variable of ``xtreg``; with 'robust' the clusters are the panels, as in Stata.
        ``None`` for ``regress``, where 'robust' is the heteroskedasticity-robust (HC1) estimator.

    Returns
    -------
    VceChoice
    """
    kind = str(vce).strip().lower()
    if kind not in VCE_TYPES:
        raise UserInputError(f"vce must be one of {', '.join(VCE_TYPES)}, not {vce!r}")
    if kind == "cluster":
        if not cluster:
            raise UserInputError("vce='cluster' needs the cluster column, e.g. cluster='school_id'")
        return VceChoice(kind, cluster_column=cluster, cluster_option=cluster)
    if cluster:
        raise UserInputError(f"cluster={cluster!r} is only used with vce='cluster', not vce={kind!r}")
    if kind == "robust" and panel is not None:
        return VceChoice(kind, cluster_column=panel, cluster_option=panel)
    return VceChoice(kind)


@dataclass
class EstimationSample:
    """The rows an estimator uses, with its outcome and fixed-effects design.

    Attributes
    ----------
    data : pandas.DataFrame
        The rows kept after listwise deletion (original index, original order).
    y : numpy.ndarray
        The outcome.
    design : FixedDesign
        The fixed-effects design matrix with Stata column names (``_cons`` last).
    dropped_rows : int
        Rows dropped because a model variable was missing.
    notes : list of str
        Notes for the result (the dropped rows).
    """

    data: pd.DataFrame
    y: np.ndarray
    design: FixedDesign
    dropped_rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return int(self.y.shape[0])


def prepare_sample(frame: pd.DataFrame, outcome: str, terms: list[str], constant: bool,
                   other_columns: tuple[Optional[str], ...] = ()) -> EstimationSample:
    """Check the columns, drop rows with missing values listwise and build the design.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    outcome : str
        The outcome column; it must be numeric.
    terms : list of str
        Stata-style fixed-effect terms (``x``, ``i.x``, ``c.a#c.b``, ``a##b``).
    constant : bool
        Whether the design has the constant ``_cons``.
    other_columns : tuple of str or None
        Further columns the model reads (panel variable, cluster variable); ``None`` is skipped.

    Returns
    -------
    EstimationSample

    Raises
    ------
    UserInputError
        If a column is unknown, the outcome is not numeric, or no row is complete.
    """
    columns = list(dict.fromkeys([outcome, *term_variables(list(terms)), *(c for c in other_columns if c)]))
    for column in columns:
        require_column(frame, column)
    if not pd.api.types.is_numeric_dtype(frame[outcome]):
        from engine.data_io import first_non_numeric_value

        example = first_non_numeric_value(frame[outcome])
        raise UserInputError(f"outcome {outcome!r} is not numeric (e.g. {example!r}); the outcome must hold numbers")
    data, dropped, notes = drop_incomplete_rows(frame, columns)
    design = build_fixed_design(data, list(terms), constant=constant)
    y = data[outcome].to_numpy(dtype=float)
    return EstimationSample(data=data, y=y, design=design, dropped_rows=dropped, notes=notes)


def require_column(frame: pd.DataFrame, column: str) -> None:
    """Raise a UserInputError naming ``column`` (and a close match) if the data lack it."""
    if column in frame.columns:
        return
    names = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(str(column), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UserInputError(f"unknown column {column!r}: the data have no such column{hint}")


def drop_incomplete_rows(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, int, list[str]]:
    """Drop the rows with a missing value in any of ``columns`` (listwise deletion).

    Returns
    -------
    data : pandas.DataFrame
        The complete rows, restricted to ``columns``.
    dropped : int
        How many rows were dropped.
    notes : list of str
        One note naming the columns with missing values, or none.
    """
    subset = frame[columns]
    missing = subset.isna()
    complete = ~missing.any(axis=1)
    data = subset.loc[complete]
    dropped = int(len(subset) - len(data))
    if len(data) == 0:
        raise UserInputError(f"no observations left: every row has a missing value in {', '.join(columns)}")
    notes = []
    if dropped:
        with_missing = [c for c in columns if missing[c].any()]
        notes.append(f"{dropped} observations dropped because of missing values in {', '.join(with_missing)}")
    return data, dropped, notes


def group_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes 0..n-1 of the groups in ``values`` (order of first appearance) and n."""
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), len(uniques)


def check_panels_nested(panels: np.ndarray, clusters: np.ndarray, panel: str, cluster: str) -> None:
    """Refuse clusters that split a panel, as Stata's xtreg does ("panels are not nested within clusters")."""
    frame = pd.DataFrame({"panel": panels, "cluster": clusters})
    per_panel = frame.groupby("panel")["cluster"].nunique()
    if (per_panel > 1).any():
        raise UserInputError(
            f"panels are not nested within clusters: some {panel} values appear in more than one {cluster}; "
            f"xtreg needs each panel inside one cluster")
