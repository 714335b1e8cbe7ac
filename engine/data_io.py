"""Read and write data files, chosen by extension, with the true parameters of simulated data.

Read: .csv/.txt, .dta (Stata), .sav (SPSS), .xlsx/.xls (Excel), .parquet. Write: .csv, .dta,
.sav, .parquet. The ``Truth`` travels in Parquet's schema metadata; the other formats have
no room for it (a Stata data label holds 80 characters), so it goes to a sidecar
``<file>.truth.json`` next to the data, which ``read_data`` picks up.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from engine.atomic_write import atomic_path, write_text_atomically
from engine.design import Truth
from engine.errors import UserInputError

READ_EXTENSIONS = (".csv", ".txt", ".dta", ".sav", ".xlsx", ".xls", ".parquet")
WRITE_EXTENSIONS = (".csv", ".dta", ".sav", ".parquet")
TRUTH_SIDECAR_SUFFIX = ".truth.json"
_PARQUET_TRUTH_KEY = "hlm_explorer.truth"
_SPSS_INTEGER_FORMAT = re.compile(r"[FN]\d+(\.0)?")
_DTA_DATA_LABEL = "HLM Explorer data; true parameters in the .truth.json next to it"


@dataclass
class Dataset:
    """A data frame with where it came from, the truth (simulated data only) and Stata/SPSS labels.

    ``value_labels``: column -> {value: label}; ``variable_labels``: column -> label.
    """

    frame: pd.DataFrame
    source: str = ""
    truth: Truth | None = None
    value_labels: dict[str, dict] = field(default_factory=dict)
    variable_labels: dict[str, str] = field(default_factory=dict)


def truth_sidecar_path(path: str | Path) -> Path:
    """Where the truth of a data file is kept when the format has no room for it."""
    path = Path(path)
    return path.with_name(path.name + TRUTH_SIDECAR_SUFFIX)


# ----- reading ---------------------------------------------------------------------------------------

def read_data(path: str | Path) -> Dataset:
    """Read a data file by its extension.

    Parameters
    ----------
    path : str or Path
        A .csv/.txt, .dta, .sav, .xlsx/.xls or .parquet file.

    Returns
    -------
    Dataset
        With the truth when the file (or its sidecar) carries one.

    Raises
    ------
    UserInputError
        Missing or unreadable file, unknown extension, or no rows: one line naming the file.
    """
    path = Path(path)
    extension = path.suffix.lower()
    if extension not in READ_EXTENSIONS:
        raise UserInputError(
            f"{path}: unknown file type {extension or '(no extension)'!r}; use {', '.join(READ_EXTENSIONS)}")
    if not path.is_file():
        raise UserInputError(f"{path}: no such file")
    reader = {".csv": _read_text, ".txt": _read_text, ".dta": _read_dta, ".sav": _read_sav,
              ".xlsx": _read_excel, ".xls": _read_excel, ".parquet": _read_parquet}[extension]
    try:
        dataset = reader(path)
    except UserInputError:
        raise
    except Exception as error:  # any parser failure: the user needs the file name and the reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserInputError(f"cannot read {path}: {reason}") from error
    if dataset.frame.shape[1] == 0 or len(dataset.frame) == 0:
        raise UserInputError(f"{path}: the file holds no data rows")
    _integers_beyond_int64_as_labels(dataset.frame)
    dataset.source = str(path)
    if dataset.truth is None:
        dataset.truth = _read_sidecar(path)
    return dataset


def _read_text(path: Path) -> Dataset:
    with path.open("rb") as handle:
        head = handle.read(_SAMPLE_BYTES)
    _refuse_binary(path, head)
    encoding = "utf-8"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the sample's end is still UTF-8; anything else is taken as
        # Latin-1, which spreadsheets on Windows often save.
        if error.start < len(head) - 3:
            encoding = "latin-1"
    text = head.decode(encoding, errors="ignore")
    if text.startswith("\ufeff"):  # Excel's UTF-8 byte-order mark
        text, encoding = text[1:], "utf-8-sig"
    lines = [line for line in text.splitlines() if line.strip()]
    if len(head) == _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the sample may end inside a line
    if not lines:
        raise UserInputError(f"{path}: the file is empty")
    separator = _detect_separator(lines)
    header = _split_line(lines[0], separator)
    _refuse_repeated_names(path, header)
    _refuse_truncated_last_line(path, separator, len(header), encoding)
    try:
        frame = pd.read_csv(path, sep=separator, encoding=encoding)
    except UnicodeDecodeError:  # a Latin-1 character after the sample
        encoding = "latin-1"
        frame = pd.read_csv(path, sep=separator, encoding=encoding)
    _refuse_merged_zero_padded_codes(path, frame, separator, encoding)
    big_integers = [name for name in frame.columns if _integers_beyond_float_precision(frame[name])]
    if big_integers:
        # Ids with more than 15 digits and a missing value are read as floats, which merges
        # neighbouring ids: read them again as text labels.
        text_columns = pd.read_csv(path, sep=separator, encoding=encoding, usecols=big_integers, dtype=str)
        for name in big_integers:
            frame[name] = text_columns[name]
    return Dataset(frame=frame)


#: Bytes read from the start of a text file to find its separator and check its header.
_SAMPLE_BYTES = 1 << 16
#: Separators tried, in order of preference when several split every sampled line alike.
_SEPARATORS = ("\t", ";", ",", "|")
_COMPRESSED_SIGNATURES = {b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "a zip archive (an Excel .xlsx?)",
                          b"BZh": "bzip2-compressed", b"\xfd7zXZ\x00": "xz-compressed",
                          b"\x28\xb5\x2f\xfd": "zstd-compressed", b"\xd0\xcf\x11\xe0": "an old Excel/Office file",
                          b"PAR1": "a Parquet file", b"%PDF": "a PDF document"}


def _refuse_binary(path: Path, head: bytes) -> None:
    """A compressed or binary file named .csv/.txt is refused, saying what it looks like."""
    for signature, kind in _COMPRESSED_SIGNATURES.items():
        if head.startswith(signature):
            raise UserInputError(f"{path}: not a text CSV file: it is {kind}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserInputError(f"{path}: not a text CSV file: it is UTF-16 text; save it as UTF-8 CSV")
    if b"\x00" in head:
        raise UserInputError(f"{path}: not a text CSV file: it holds binary data (NUL bytes)")


def _split_line(line: str, separator: str) -> list[str]:
    if separator == r"\s+":
        return line.split()
    return next(csv.reader([line], delimiter=separator))


def _detect_separator(lines: list[str]) -> str:
    """The separator that splits the header and every sampled line into the same number (> 1) of
    fields: tab, semicolon, comma or bar, in that order of preference (so ``x;y`` in a comma
    file's header is a name, and ``1,5`` in a semicolon file a decimal comma). Else runs of
    whitespace when they split consistently, else the comma (one column)."""
    for separator in (*_SEPARATORS, r"\s+"):
        counts = {len(_split_line(line, separator)) for line in lines}
        if len(counts) == 1 and counts.pop() > 1:
            return separator
    # No consistent split: the separator giving the header the most fields; rows that differ
    # are then reported by the reader (more fields) or by the truncation check (fewer).
    best = max(_SEPARATORS, key=lambda sep: len(_split_line(lines[0], sep)))
    return best if len(_split_line(lines[0], best)) > 1 else ","


def _refuse_truncated_last_line(path: Path, separator: str, expected: int, encoding: str) -> None:
    """A last line with fewer fields than the header is a file cut off while being written (or
    copied); pandas would fill the missing fields with NaN and the fit would drop the row
    silently."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - _SAMPLE_BYTES))
        tail = handle.read().decode(encoding, errors="ignore")
    lines = [line for line in tail.splitlines() if line.strip()]
    if len(lines) < 2 or lines[-1].count('"') % 2:  # only a header, or inside a quoted field
        return
    fields = _split_line(lines[-1], separator)
    if len(fields) < expected:
        shown = lines[-1] if len(lines[-1]) <= 60 else lines[-1][:57] + "..."
        raise UserInputError(
            f"{path}: the last line has {len(fields)} of the header's {expected} fields ({shown!r}): "
            "the file looks truncated; complete or remove that line")


def _refuse_merged_zero_padded_codes(path: Path, frame: pd.DataFrame, separator: str, encoding: str) -> None:
    """Codes such as '007' and '7' in one column are both read as the number 7, merging two
    groups without a word; refuse, naming the column and the two texts."""
    integer_columns = [name for name in frame.columns if frame[name].dtype.kind in "iu"]
    if not integer_columns or not _has_zero_padded_field(path, separator):
        return  # the usual case: no second read of the file
    texts = pd.read_csv(path, sep=separator, encoding=encoding, usecols=integer_columns, dtype=str)
    for name in integer_columns:
        distinct = pd.Series(texts[name].dropna().str.strip().unique())
        padded = distinct[distinct.str.match(r"^[+-]?0\d")]
        if padded.empty:
            continue
        numbers = pd.to_numeric(distinct, errors="coerce")
        for text in padded:
            same = distinct[(numbers == int(text)) & (distinct != text)]
            if not same.empty:
                raise UserInputError(
                    f"{path}: column {name!r} holds both {text!r} and {same.iloc[0]!r}, which read as the same "
                    f"number {int(text)}; make the codes consistent (or quote them as text) in the file")


def _has_zero_padded_field(path: Path, separator: str) -> bool:
    """Whether some field of the file starts with a zero followed by a digit ('007', '-01')."""
    field_start = rb"(?:^|" + re.escape(separator.encode()) + rb")[ \t]*\"?[+-]?0[0-9]"
    return re.search(field_start, path.read_bytes(), re.MULTILINE) is not None


def _integers_beyond_int64_as_labels(frame: pd.DataFrame) -> None:
    """Unsigned integers beyond the int64 range (ids from other systems) become text labels:
    as numbers they overflow wherever ids are shifted or combined into codes."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "u" and len(column) and int(column.max()) > np.iinfo(np.int64).max:
            frame[name] = column.astype(str)


def _integers_beyond_float_precision(column: pd.Series) -> bool:
    """Whole numbers read as floats beyond 2**53, where neighbouring values become equal."""
    if not pd.api.types.is_float_dtype(column):
        return False
    present = column.dropna().to_numpy()
    return present.size > 0 and bool(np.all(np.mod(present, 1) == 0)) and float(np.abs(present).max()) >= 2**53


def _read_dta(path: Path) -> Dataset:
    import pyreadstat

    # pandas reads the data fast and keeps Stata's integer types; pyreadstat's metadata maps
    # variables to their value-label sets, which pandas only exposes by set name.
    with pd.io.stata.StataReader(path) as reader:
        frame = reader.read(convert_categoricals=False, convert_missing=False)
    _, meta = pyreadstat.read_dta(str(path), metadataonly=True)
    return Dataset(frame=frame, value_labels=_plain_value_labels(meta.variable_value_labels),
                   variable_labels={k: v for k, v in meta.column_names_to_labels.items() if v})


def _read_sav(path: Path) -> Dataset:
    import pyreadstat

    frame, meta = pyreadstat.read_sav(str(path))
    # SPSS stores every number as a double; columns formatted without decimals were integers.
    for name, spss_format in meta.original_variable_types.items():
        column = frame[name]
        if _SPSS_INTEGER_FORMAT.fullmatch(spss_format) and column.dtype.kind == "f" and column.notna().all():
            frame[name] = column.astype("int64")
    return Dataset(frame=frame, value_labels=_plain_value_labels(meta.variable_value_labels),
                   variable_labels={k: v for k, v in meta.column_names_to_labels.items() if v})


def _read_excel(path: Path) -> Dataset:
    if path.suffix.lower() == ".xls":
        try:
            import xlrd  # noqa: F401
        except ImportError:
            raise UserInputError(f"{path}: reading old .xls files needs the xlrd package; save it as .xlsx") from None
    # One opening of the workbook: every sheet's first row for the checks, then the first sheet.
    with pd.ExcelFile(path) as workbook:
        headers = {name: workbook.parse(name, header=None, nrows=1) for name in workbook.sheet_names}
        _refuse_several_data_sheets(path, headers)
        first_name, header = next(iter(headers.items()))
        _refuse_repeated_names(path, [str(name) for name in header.iloc[0].tolist()] if len(header) else [])
        return Dataset(frame=workbook.parse(first_name))


def _refuse_several_data_sheets(path: Path, headers: dict[str, pd.DataFrame]) -> None:
    """Only the first sheet is read: a workbook whose other sheets are laid out like it (one
    sheet per wave or per school: the same header) would be fitted on the first sheet without a
    word. Sheets of another layout (a codebook, notes) are left alone. ``headers``: each sheet's
    first row, in the workbook's order."""
    first = next(iter(headers.values()))
    alike = [name for name, header in headers.items()
             if not header.dropna(how="all").empty and header.shape == first.shape and header.equals(first)]
    if len(alike) > 1:
        raise UserInputError(
            f"{path}: the workbook has data on {len(alike)} sheets with the same columns "
            f"({', '.join(repr(n) for n in alike)}) and only the first is read; put the rows on one sheet, "
            "or save the sheet to analyse as its own .xlsx or .csv file")


def _refuse_repeated_names(path: Path, header: list[str]) -> None:
    """pandas renames a repeated column name (x, x.1) without a word; the user would then fit x
    without knowing that another column had the same name."""
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UserInputError(
            f"{path}: column name(s) used more than once: {', '.join(repr(n) for n in repeated)}; "
            "give every column its own name")


def _read_parquet(path: Path) -> Dataset:
    # fastparquet, not pyarrow (80 MB in the packaged program); it reads the files pyarrow wrote too,
    # whose schema metadata arrive among the file's key-value metadata.
    from fastparquet import ParquetFile

    parquet = ParquetFile(str(path))
    metadata = parquet.key_value_metadata or {}
    truth = Truth.from_json(metadata[_PARQUET_TRUTH_KEY]) if _PARQUET_TRUTH_KEY in metadata else None
    frame = parquet.to_pandas()
    if not isinstance(frame.index, pd.RangeIndex):  # a file written with its index: keep it as columns
        frame = frame.reset_index()
    for name in frame.columns:
        # Text comes back as Python objects; give it the string type read_csv gives text columns.
        if frame[name].dtype == object and pd.api.types.infer_dtype(frame[name], skipna=True) == "string":
            frame[name] = frame[name].astype("str")
    return Dataset(frame=frame, truth=truth)


def _read_sidecar(path: Path) -> Truth | None:
    sidecar = truth_sidecar_path(path)
    if not sidecar.is_file():
        return None
    try:
        return Truth.from_json(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserInputError(f"{sidecar}: not a readable truth file ({error})") from error


def _plain_value_labels(labels: dict) -> dict[str, dict]:
    """Integral float keys (SPSS stores 1 as 1.0) become ints."""
    return {name: {(int(k) if isinstance(k, float) and k.is_integer() else k): v for k, v in mapping.items()}
            for name, mapping in (labels or {}).items()}


# ----- writing ---------------------------------------------------------------------------------------

def write_data(frame: pd.DataFrame, path: str | Path, truth: Truth | None = None, *,
               value_labels: dict[str, dict] | None = None,
               variable_labels: dict[str, str] | None = None,
               progress: Callable[[float], None] | None = None) -> list[Path]:
    """Write ``frame`` to .csv, .dta, .sav or .parquet, with ``truth`` when given.

    Parameters
    ----------
    frame : DataFrame
    path : str or Path
        The extension chooses the format.
    truth : Truth, optional
        Stored in the file (Parquet) or in ``<file>.truth.json``. Without it, a stale sidecar
        of an earlier file at ``path`` is removed so that it cannot be mistaken for this data's.
    value_labels, variable_labels : dict, optional
        Labels for the .dta and .sav formats.
    progress : callable, optional
        ``progress(fraction)`` as CSV and Parquet files are written, from 0 to 1.

    Returns
    -------
    list of Path
        The files written (the data, then the sidecar if any).

    Notes
    -----
    Each file is written under a temporary name in the same folder and renamed when complete
    (:mod:`engine.atomic_write`): an interrupted write never leaves a partial file under ``path``.
    A .dta file is refused when a column name is not a valid Stata name (over 32 characters,
    spaces, ...), as Stata would otherwise get renamed or truncated columns.
    """
    path = Path(path)
    extension = path.suffix.lower()
    if extension not in WRITE_EXTENSIONS:
        raise UserInputError(
            f"{path}: cannot write {extension or 'files without an extension'}; use {', '.join(WRITE_EXTENSIONS)}")
    if not path.parent.is_dir():
        raise UserInputError(f"{path}: the folder {path.parent} does not exist")
    if extension == ".dta":
        _check_stata_names(frame, path)
    truth_in_file = extension == ".parquet"
    report = progress or (lambda _fraction: None)
    sidecar = truth_sidecar_path(path)
    with atomic_path(path) as temporary:
        try:
            if extension == ".csv":
                _write_csv(frame, temporary, report)
            elif extension == ".dta":
                frame.to_stata(temporary, write_index=False, version=118,
                               data_label=_DTA_DATA_LABEL if truth is not None else None,
                               variable_labels=variable_labels or None, value_labels=value_labels or None)
            elif extension == ".sav":
                _write_sav(frame, temporary, value_labels, variable_labels)
            else:
                _write_parquet(frame, temporary, truth, report)
        except OSError as error:
            raise UserInputError(f"cannot write {path}: {error.strerror or error}") from error
        except (ValueError, TypeError) as error:  # e.g. a column Stata or SPSS cannot hold
            raise UserInputError(f"cannot write {path}: {str(error).splitlines()[0]}") from error
        # The sidecar is complete before the data appear under their name, so the pair is never
        # seen with a stale truth.
        if truth is not None and not truth_in_file:
            write_text_atomically(sidecar, truth.to_json() + "\n")
    report(1.0)
    written = [path]
    if truth is not None and not truth_in_file:
        written.append(sidecar)
    elif sidecar.exists():
        sidecar.unlink()
    return written


#: Rows per piece when CSV and Parquet files are written, so that progress can be shown.
_WRITE_PIECE_ROWS = 1_000_000
_STATA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


def _check_stata_names(frame: pd.DataFrame, path: Path) -> None:
    """pandas renames columns Stata cannot hold (cutting long names to 32 characters, replacing
    spaces) with only a Python warning; refuse instead, naming the column."""
    for name in frame.columns:
        text = str(name)
        if len(text) > 32:
            raise UserInputError(
                f"cannot write {path}: column {text!r} has {len(text)} characters and Stata allows 32; "
                "rename it, or write .csv or .parquet")
        if not _STATA_NAME.fullmatch(text):
            raise UserInputError(
                f"cannot write {path}: column {text!r} is not a Stata variable name (letters, digits and _, "
                "not starting with a digit); rename it, or write .csv or .parquet")


def _write_csv(frame: pd.DataFrame, path: Path, progress: Callable[[float], None]) -> None:
    # pandas writes floats with round-trip precision (repr); pieces let the progress show.
    rows = max(len(frame), 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        for start in range(0, rows, _WRITE_PIECE_ROWS):
            frame.iloc[start:start + _WRITE_PIECE_ROWS].to_csv(handle, index=False, header=start == 0)
            progress(min(1.0, (start + _WRITE_PIECE_ROWS) / rows))


def _write_sav(frame: pd.DataFrame, path: Path, value_labels, variable_labels) -> None:
    import pyreadstat

    # SPSS has doubles only; a format without decimals marks the integer columns for read_data.
    integer_formats = {str(name): "F12.0" for name, dtype in frame.dtypes.items() if dtype.kind in "iub"}
    pyreadstat.write_sav(frame, str(path), variable_value_labels=value_labels or None,
                         column_labels=variable_labels or None, variable_format=integer_formats or None)


def _write_parquet(frame: pd.DataFrame, path: Path, truth: Truth | None,
                   progress: Callable[[float], None]) -> None:
    from fastparquet import write

    metadata = {_PARQUET_TRUTH_KEY: truth.to_json()} if truth is not None else None
    frame = frame.reset_index(drop=True)
    rows = max(len(frame), 1)
    # One row group per piece, the first creating the file (with the truth), the others appended.
    for start in range(0, rows, _WRITE_PIECE_ROWS):
        write(str(path), frame.iloc[start:start + _WRITE_PIECE_ROWS], write_index=False,
              compression="SNAPPY", custom_metadata=metadata if start == 0 else None, append=start > 0)
        progress(min(1.0, (start + _WRITE_PIECE_ROWS) / rows))
