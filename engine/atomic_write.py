"""Write output files atomically and refuse outputs that would overwrite an input.

Every file the program writes (data, truth sidecars, JSON results, designs, projects, Monte Carlo
records) goes first to a hidden temporary file in the destination's folder, which is renamed over
the destination only when it is complete. An interrupted write (Ctrl-C, a crash, a full disk)
therefore leaves the previous file, or none, under the final name, never a partial one. (A
destination that is a device or a pipe, such as /dev/null, is written in place instead.) The
temporary file is removed on any error or interruption that Python sees; only a hard kill
(SIGKILL, power loss) can leave one behind, under its hidden ``.NAME.partial-*`` name.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from engine.errors import UserInputError

PARTIAL_MARKER = ".partial-"


@contextmanager
def atomic_path(path: str | Path, what: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or Path
        The final destination. Its folder must exist.
    what : str
        How errors name the file, e.g. ``"project file"`` (default: just the path).

    Yields
    ------
    Path
        A fresh, empty, hidden file in the same folder and with the same extension (some writers
        choose the format by extension); write the whole content to it.

    Raises
    ------
    UserInputError
        When the folder does not exist or cannot be written, naming the path.
    """
    path = Path(path)
    label = f"{what} {path}".strip()
    if _is_special_file(path):
        yield from _through_special_file(path, label)
        return
    folder = path.parent if str(path.parent) else Path(".")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.stem}{PARTIAL_MARKER}", suffix=path.suffix,
                                        dir=folder)
    except OSError as error:
        raise UserInputError(f"cannot write {label}: {error.strerror or error}") from None
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        _keep_permissions_of(path, temporary)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise UserInputError(f"cannot write {label}: {error.strerror or error}") from None
    except BaseException:  # also Ctrl-C and SystemExit: no half-written file stays behind
        temporary.unlink(missing_ok=True)
        raise


def _is_special_file(path: Path) -> bool:
    """/dev/null, /dev/stdout, a named pipe: an existing target that is neither a file nor a folder.
    Renaming over it would replace the device (as root) or fail (otherwise)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _through_special_file(path: Path, label: str) -> Iterator[Path]:
    """Write to a private temporary file, then stream it into the special file ``path``."""
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}{PARTIAL_MARKER}", suffix=path.suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb") as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target)
    except OSError as error:
        raise UserInputError(f"cannot write {label}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: str | Path, text: str, what: str = "") -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`; returns ``path``."""
    with atomic_path(path, what) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def check_writable(path: str | Path, option: str = "") -> None:
    """Fail now, before a long computation, if ``path`` could not be written later.

    The folder must exist and be writable, and ``path`` must not be a folder. ``option`` (e.g.
    ``"--json"``) starts the message. ``"-"`` (standard output) is always fine.
    """
    if str(path) == "-":
        return
    path = Path(path)
    label = f"{option} {path}".strip()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserInputError(f"{label}: is a folder; give a file name")
    if not folder.is_dir():
        raise UserInputError(f"{label}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserInputError(f"{label}: the folder {folder} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserInputError(f"{label}: the file exists and is read-only")


def refuse_overwriting(outputs: Iterable[tuple[str, str | Path | None]],
                       inputs: Iterable[tuple[str, str | Path | None]]) -> None:
    """Refuse an output that is one of the inputs, or two outputs to the same file.

    Parameters
    ----------
    outputs, inputs : iterable of (option, path)
        E.g. ``[("--json", args.json)]`` and ``[("DATA", args.data)]``; None, empty and ``"-"``
        paths are skipped. Paths are compared after resolving links and ``..``.
    """
    seen: dict[Path, str] = {}
    for option, path in inputs:
        if path and str(path) != "-":
            seen.setdefault(_identity(path), option)
    inputs_seen = dict(seen)
    for option, path in outputs:
        if not path or str(path) == "-" or _is_special_file(Path(path)):  # /dev/null may take several outputs
            continue
        key = _identity(path)
        if key in inputs_seen:
            raise UserInputError(
                f"{option} {path} is also the input {inputs_seen[key]}; writing there would destroy it: "
                "choose another file")
        if key in seen:
            raise UserInputError(f"{option} {path} is also {seen[key]}: give each output its own file")
        seen[key] = option


def _identity(path: str | Path) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _keep_permissions_of(path: Path, temporary: Path) -> None:
    """mkstemp creates files readable by the owner only; give the new file the old file's mode, or
    the mode a plainly created file would have."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(temporary, mode)
