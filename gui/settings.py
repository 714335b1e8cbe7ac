"""What the program remembers between sessions (QSettings): recent projects, last folder,
window layout. One dictionary of defaults; every read is typed by its default's type."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "HLM Explorer"
APPLICATION = "HLM Explorer"
MAX_RECENT_FILES = 8

DEFAULTS: dict[str, object] = {
    "recent_files": [],
    "last_directory": "",
    "window/geometry": QByteArray(),
    "window/state": QByteArray(),
}


class Settings:
    """Typed access to QSettings; pass a QSettings (e.g. an .ini file in tests) to isolate it."""

    def __init__(self, store: QSettings | None = None):
        self._store = store if store is not None else QSettings(ORGANIZATION, APPLICATION)

    def get(self, key: str):
        default = DEFAULTS[key]
        value = self._store.value(key, default)
        if isinstance(default, list):
            # QSettings gives a bare string for a one-item list and None for an empty one (ini files).
            if value is None:
                return []
            return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        if isinstance(default, QByteArray):
            return value if isinstance(value, QByteArray) else QByteArray()
        return type(default)(value) if value is not None else default

    def set(self, key: str, value) -> None:
        if key not in DEFAULTS:
            raise KeyError(f"unknown setting {key!r}")
        self._store.setValue(key, value)

    def sync(self) -> None:
        self._store.sync()

    # ----- recent files ----------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        return [path for path in self.get("recent_files") if Path(path).exists()]

    def add_recent_file(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        files = [path] + [p for p in self.get("recent_files") if p != path]
        files = files[:MAX_RECENT_FILES]
        self.set("recent_files", files)
        self.set("last_directory", str(Path(path).parent))
        return files

    def clear_recent_files(self) -> None:
        self.set("recent_files", [])
