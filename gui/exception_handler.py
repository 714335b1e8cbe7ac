"""Unexpected errors: written to a log file with their traceback, and shown in a dialog.

Installed as ``sys.excepthook`` by ``launch()``: an exception escaping a Qt slot would otherwise
only reach the console, which a desktop user never sees. Offscreen (tests, the self-test) there
is nobody to click a dialog, so the message goes to stderr only.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

log = logging.getLogger("hlm_explorer")


def log_file_path() -> Path:
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    path = Path(folder or Path.home() / ".hlm-explorer")
    path.mkdir(parents=True, exist_ok=True)
    return path / "hlm-explorer.log"


def configure_logging(path: Path | None = None) -> Path:
    path = path or log_file_path()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def install_exception_hook(log_path: Path) -> None:
    """Route uncaught exceptions to the log and to a (non-blocking) error dialog."""

    def hook(kind, error, trace):
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, error, trace)
            return
        details = "".join(traceback.format_exception(kind, error, trace))
        log.error("uncaught exception\n%s", details)
        print(details, file=sys.stderr)
        app = QApplication.instance()
        if app is None or QGuiApplication.platformName() in ("offscreen", "minimal"):
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "HLM Explorer: unexpected error",
                          f"Something went wrong that should not have: {kind.__name__}: {error}\n\n"
                          f"Your work is still open. Details are in {log_path}.")
        box.setDetailedText(details)
        box.setModal(False)
        box.finished.connect(lambda _=None: _open_boxes.remove(box))
        _open_boxes.append(box)  # a non-modal box needs a Python reference to stay alive
        box.show()

    sys.excepthook = hook


_open_boxes: list[QMessageBox] = []
