"""Before Qt starts on X11: are the system libraries its xcb platform plugin links to installed?

Qt aborts with a misleading message when one is missing (it names libxcb-cursor0 whichever library
is absent). This module reads the libraries the plugin and Qt's GUI libraries ask for (their ELF
``DT_NEEDED`` entries), tries to load each one the system must provide, and words the single
``apt``/``dnf`` line that installs the missing ones. Standard library only: it runs before Qt
is imported.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

# System library -> (Debian/Ubuntu package, Fedora package). Qt's own libraries and the C/C++
# runtime are not listed: the first come with PySide6 (or the packaged folder), the second with
# every system.
SYSTEM_PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libz.so.1": ("zlib1g", "zlib"),
}
# The Qt files whose links are checked, relative to PySide6/Qt: the xcb plugin, its integration
# library and the GUI libraries every window loads first (D-Bus among them: the packaged program takes
# libdbus from the system).
QT_FILES = ("plugins/platforms/libqxcb.so", "lib/libQt6XcbQpa.so.6", "lib/libQt6Gui.so.6",
            "lib/libQt6Widgets.so.6", "lib/libQt6DBus.so.6")
# Libraries Qt's xcb integration needs even where a build does not list them as links.
ALWAYS_CHECKED = ("libxcb-cursor.so.0",)
# Provided by the C and C++ runtimes of any Linux system.
RUNTIME_PREFIXES = ("libc.so", "libm.so", "libdl.so", "librt.so", "libpthread.so", "libstdc++.so",
                    "libgcc_s.so", "ld-linux")


@dataclass
class MissingLibraries:
    """System libraries Qt's xcb plugin cannot find, and the command that installs them."""

    libraries: list[str]
    distribution: str  # "debian", "fedora" or "" (unknown: both lines are printed)

    def packages(self, family: str) -> list[str]:
        column = 0 if family == "debian" else 1
        names: list[str] = []
        for library in self.libraries:
            package = SYSTEM_PACKAGES.get(library, (library, library))[column]
            if package not in names:
                names.append(package)
        return names

    def install_lines(self) -> list[str]:
        lines = []
        if self.distribution in ("debian", ""):
            lines.append("sudo apt install " + " ".join(self.packages("debian")))
        if self.distribution in ("fedora", ""):
            lines.append("sudo dnf install " + " ".join(self.packages("fedora")))
        return lines

    def message(self) -> str:
        listed = ", ".join(self.libraries)
        install = "\n".join("    " + line for line in self.install_lines())
        return (f"HLM Explorer cannot open its window: Qt's X11 (xcb) platform needs system libraries "
                f"that are not installed: {listed}.\n"
                f"Install them with:\n{install}\n"
                "then start it again. Meanwhile the subcommands work (--help lists them), and on a Wayland "
                "desktop the window opens without these libraries with QT_QPA_PLATFORM=wayland.")


def uses_xcb(environ: dict | None = None) -> bool:
    """Whether Qt will pick its X11 (xcb) platform plugin in this environment (Linux only)."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:  # Qt tries the names in order ("wayland;xcb"): only the first counts for a start
        return chosen.split(";")[0].split(":")[0] == "xcb"
    if environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"):
        return False  # Qt 6 prefers its Wayland plugin in a Wayland session
    return bool(environ.get("DISPLAY"))


def needed_libraries(path: Path) -> list[str]:
    """The ``DT_NEEDED`` entries of an ELF shared library (the libraries it links to), in order."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        raise ValueError(f"{path} is not an ELF file")
    is_64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is_64:
        section_offset, = struct.unpack_from(endian + "Q", data, 0x28)
        entry_size, count = struct.unpack_from(endian + "HH", data, 0x3A)
        section_format, dynamic_format = endian + "IIQQQQIIQQ", endian + "qQ"
    else:
        section_offset, = struct.unpack_from(endian + "I", data, 0x20)
        entry_size, count = struct.unpack_from(endian + "HH", data, 0x2E)
        section_format, dynamic_format = endian + "IIIIIIIIII", endian + "iI"
    sections = [struct.unpack_from(section_format, data, section_offset + i * entry_size) for i in range(count)]
    needed: list[str] = []
    for section in sections:
        if section[1] != 6:  # SHT_DYNAMIC
            continue
        offset, size, link = section[4], section[5], section[6]
        strings_offset = sections[link][4]
        step = struct.calcsize(dynamic_format)
        for position in range(offset, offset + size, step):
            tag, value = struct.unpack_from(dynamic_format, data, position)
            if tag == 0:  # DT_NULL
                break
            if tag == 1:  # DT_NEEDED
                end = data.index(b"\0", strings_offset + value)
                needed.append(data[strings_offset + value:end].decode())
    return needed


def qt_folder() -> Path | None:
    """PySide6/Qt of this installation or of the packaged folder, found without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "Qt"
        if folder.is_dir():
            return folder
    return None


def library_loads(name: str) -> bool:
    """Whether the dynamic loader finds and loads ``name`` (the check Qt's loading will face)."""
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def bundled_folders(qt: Path) -> list[Path]:
    """Folders whose libraries ship with the program (the packaged folder holds system libraries too)."""
    folders = [qt / "lib"]
    if getattr(sys, "frozen", False):
        folders.append(Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)))
    return folders


def distribution_family(os_release: Path = Path("/etc/os-release")) -> str:
    """"debian", "fedora" or "" from /etc/os-release (ID and ID_LIKE)."""
    try:
        text = os_release.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        fields[key.strip()] = value.strip().strip('"').lower()
    words = (fields.get("ID", "") + " " + fields.get("ID_LIKE", "")).split()
    if any(word in ("debian", "ubuntu") for word in words):
        return "debian"
    if any(word in ("fedora", "rhel", "centos") for word in words):
        return "fedora"
    return ""


def missing_xcb_libraries() -> MissingLibraries | None:
    """The system libraries the xcb plugin links to that cannot be loaded; None if all load.

    Returns None as well when PySide6 or its xcb plugin cannot be found (Qt then reports it).
    """
    qt = qt_folder()
    if qt is None or not (qt / QT_FILES[0]).is_file():
        return None
    wanted: list[str] = []
    for relative in QT_FILES:
        path = qt / relative
        for name in (needed_libraries(path) if path.is_file() else []):
            if name not in wanted:
                wanted.append(name)
    wanted += [name for name in ALWAYS_CHECKED if name not in wanted]
    folders = bundled_folders(qt)
    missing = [name for name in wanted
               if not name.startswith("libQt6") and not name.startswith(RUNTIME_PREFIXES)
               and not any((folder / name).exists() for folder in folders) and not library_loads(name)]
    if not missing:
        return None
    return MissingLibraries(missing, distribution_family())


def check_xcb_libraries() -> str | None:
    """The message to print instead of starting Qt, or None when the window can start."""
    if not uses_xcb():
        return None
    missing = missing_xcb_libraries()
    return missing.message() if missing else None
