"""Application plumbing: settings, the exception hook, the guide file."""

import logging
import sys

import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from PySide6.QtCore import QSettings

from gui.exception_handler import configure_logging, install_exception_hook
from gui.dialogs.help_dialogs import GUIDE_PATH, guide_html
from gui.settings import MAX_RECENT_FILES, Settings


def test_recent_files_are_typed_deduplicated_and_capped(tmp_path):
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert settings.get("recent_files") == [] and settings.get("last_directory") == ""
    files = []
    for number in range(MAX_RECENT_FILES + 2):
        path = tmp_path / f"p{number}.hlmproj"
        path.write_text("{}")
        files.append(str(path.resolve()))
        settings.add_recent_file(path)
    settings.add_recent_file(files[-1])
    settings.sync()
    reread = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert reread.recent_files() == list(reversed(files))[:MAX_RECENT_FILES]
    assert reread.get("last_directory") == str(tmp_path.resolve())
    (tmp_path / "p9.hlmproj").unlink()
    assert files[-1] not in reread.recent_files()  # files gone from disk are not offered


def test_exception_hook_logs_and_shows_no_dialog_offscreen(qapp, tmp_path, monkeypatch, capsys):
    log_path = configure_logging(tmp_path / "app.log")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_exception_hook(log_path)
    try:
        raise RuntimeError("boom in a slot")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "boom in a slot" in log_path.read_text()
    assert "RuntimeError" in capsys.readouterr().err
    assert qapp.topLevelWidgets() == [] or all(not w.isVisible() or w.windowTitle() != "HLM Explorer: unexpected error"
                                               for w in qapp.topLevelWidgets())
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "baseFilename", "") == str(log_path)]:
        root.removeHandler(handler)
        handler.close()


def test_guide_is_read_from_its_file_at_run_time():
    assert GUIDE_PATH.is_file()
    assert guide_html() == GUIDE_PATH.read_text(encoding="utf-8")
