"""The check before Qt starts on X11: missing system libraries give one install line and exit 2."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gui import platform_check
from gui.platform_check import (MissingLibraries, distribution_family, needed_libraries, qt_folder,
                                uses_xcb)

ROOT = Path(__file__).resolve().parents[1]
XCB_PLUGIN = qt_folder() / "plugins" / "platforms" / "libqxcb.so"


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf (binutils) is not installed")
def test_needed_libraries_match_readelf():
    listing = subprocess.run(["readelf", "-d", str(XCB_PLUGIN)], capture_output=True, text=True, check=True).stdout
    assert needed_libraries(XCB_PLUGIN) == re.findall(r"\(NEEDED\).*\[(.+)\]", listing)


def test_xcb_plugin_links_the_libraries_the_issue_names():
    needed = needed_libraries(XCB_PLUGIN)
    for name in ("libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-xkb.so.1", "libxkbcommon-x11.so.0"):
        assert name in needed


@pytest.mark.parametrize("environ, expected", [
    ({"DISPLAY": ":0"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland;xcb"}, False),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, False),
    ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "x11"}, True),
    ({}, False),
])
def test_uses_xcb_only_when_qt_would_pick_it(environ, expected, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    assert uses_xcb(environ) is expected


def test_offscreen_skips_the_check(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(platform_check, "library_loads", lambda name: False)
    assert platform_check.check_xcb_libraries() is None


def test_missing_libraries_are_found_and_named(monkeypatch):
    monkeypatch.setattr(platform_check, "library_loads", lambda name: name not in ("libxcb-icccm.so.4",
                                                                                  "libxcb-keysyms.so.1"))
    monkeypatch.setattr(platform_check, "distribution_family", lambda: "debian")
    missing = platform_check.missing_xcb_libraries()
    assert missing.libraries == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert missing.install_lines() == ["sudo apt install libxcb-icccm4 libxcb-keysyms1"]


def test_all_loadable_means_no_message(monkeypatch):
    monkeypatch.setattr(platform_check, "library_loads", lambda name: True)
    assert platform_check.missing_xcb_libraries() is None


def test_install_lines_per_distribution():
    libraries = ["libxcb-cursor.so.0", "libxcb-xkb.so.1", "libxcb-shape.so.0", "libxkbcommon-x11.so.0"]
    assert MissingLibraries(libraries, "fedora").install_lines() == [
        "sudo dnf install xcb-util-cursor libxcb libxkbcommon-x11"]
    assert MissingLibraries(libraries, "").install_lines() == [
        "sudo apt install libxcb-cursor0 libxcb-xkb1 libxcb-shape0 libxkbcommon-x11-0",
        "sudo dnf install xcb-util-cursor libxcb libxkbcommon-x11"]


@pytest.mark.parametrize("text, family", [
    ('ID=ubuntu\nID_LIKE=debian\n', "debian"),
    ('ID=debian\n', "debian"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora"),
    ('ID=fedora\n', "fedora"),
    ('ID=arch\n', ""),
])
def test_distribution_family(tmp_path, text, family):
    (tmp_path / "os-release").write_text(text)
    assert distribution_family(tmp_path / "os-release") == family


def test_window_start_with_a_missing_library_prints_the_line_and_exits_2(tmp_path):
    """A fresh process with an X display named: the loader is made to miss one library."""
    script = (
        "import sys\n"
        "from gui import platform_check\n"
        "platform_check.library_loads = lambda name: name != 'libxcb-keysyms.so.1'\n"
        "platform_check.distribution_family = lambda: 'debian'\n"
        "from gui.launch import launch\n"
        "code = launch()\n"
        "print('qt imported' if any(m.startswith('PySide6.Qt') for m in sys.modules) else 'qt not imported')\n"
        "sys.exit(code)\n")
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")}
    environment.update(DISPLAY=":97", PYTHONPATH=str(ROOT))
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=environment,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2, completed.stderr
    assert "libxcb-keysyms.so.1" in completed.stderr
    assert "    sudo apt install libxcb-keysyms1\n" in completed.stderr
    assert completed.stdout.strip() == "qt not imported"


def test_readme_install_line_covers_the_xcb_plugin():
    """The README's run section names, in one apt line, every package the xcb plugin links to."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    run_section = readme.split("## Run it")[1].split("\n## ")[0]
    apt_lines = [line for line in run_section.splitlines() if "sudo apt install" in line]
    assert len(apt_lines) == 1
    named = set(apt_lines[0].split("sudo apt install")[1].split())
    qt = qt_folder()
    needed = [name for relative in platform_check.QT_FILES if (qt / relative).is_file()
              for name in needed_libraries(qt / relative) if name in platform_check.SYSTEM_PACKAGES]
    assert {platform_check.SYSTEM_PACKAGES[name][0] for name in needed} - named == set()
    assert any("sudo dnf install" in line for line in run_section.splitlines())
