"""packaging/install-desktop.sh registers the packaged program in the user's desktop menu."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def packaged_folder(base: Path) -> Path:
    """A folder laid out like dist/hlm-explorer (a stand-in executable, the real resources)."""
    folder = base / "HLM Explorer 0.1"  # a space, as an unpacked download's name may have
    resources = folder / "_internal" / "resources"
    resources.mkdir(parents=True)
    for name in ("hlm-explorer.desktop", "icon.png"):
        shutil.copy2(ROOT / "resources" / name, resources / name)
    executable = folder / "hlm-explorer"
    executable.write_text("#!/bin/sh\nexit 0\n")
    executable.chmod(0o755)
    shutil.copy2(ROOT / "packaging" / "install-desktop.sh", folder / "install-desktop.sh")
    return folder


def run(folder: Path, data_home: Path, *args: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, XDG_DATA_HOME=str(data_home))
    return subprocess.run(["sh", str(folder / "install-desktop.sh"), *args], capture_output=True, text=True,
                          env=environment, timeout=60)


def desktop_fields(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_install_writes_the_entry_and_icon_then_uninstall_removes_them(tmp_path):
    folder = packaged_folder(tmp_path)
    data_home = tmp_path / "data"
    completed = run(folder, data_home)
    assert completed.returncode == 0, completed.stderr
    entry = data_home / "applications" / "hlm-explorer.desktop"
    icon = data_home / "icons" / "hicolor" / "256x256" / "apps" / "hlm-explorer.png"
    fields = desktop_fields(entry)
    assert fields["Exec"] == f'"{folder / "hlm-explorer"}"'
    assert fields["Icon"] == str(icon)
    assert fields["Name"] == "HLM Explorer" and fields["Type"] == "Application" and fields["Terminal"] == "false"
    assert icon.read_bytes() == (ROOT / "resources" / "icon.png").read_bytes()
    if shutil.which("desktop-file-validate"):
        validation = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert validation.returncode == 0, validation.stdout + validation.stderr

    completed = run(folder, data_home, "--uninstall")
    assert completed.returncode == 0, completed.stderr
    assert not entry.exists() and not icon.exists()


def test_install_outside_the_packaged_folder_explains_itself(tmp_path):
    script = tmp_path / "install-desktop.sh"
    shutil.copy2(ROOT / "packaging" / "install-desktop.sh", script)
    completed = run(tmp_path, tmp_path / "data")
    assert completed.returncode == 2
    assert "packaged program's folder" in completed.stderr
    assert not (tmp_path / "data" / "applications").exists()
