"""The packaged program: build it with PyInstaller and run packaging/smoke_test.py on it.

A build takes one to two minutes, so this test runs only when asked for:

* ``HLM_BUILD_TESTS=1 pytest tests/test_packaging.py`` (fails, rather than skips, when
  PyInstaller is missing: the build was asked for), or
* ``pytest -m packaging`` with PyInstaller installed (``pip install -e '.[build]'``).

A plain ``pytest`` skips it. The build goes to a temporary work and dist folder, so dist/ is
never touched or trusted; HLM_PACKAGED_EXECUTABLE=PATH tests an already built program instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "hlm-explorer.spec"
SMOKE_TEST = ROOT / "packaging" / "smoke_test.py"
EXE_SUFFIX = ".exe" if sys.platform.startswith("win") else ""

pytestmark = pytest.mark.packaging


def _selected_by_marker(config: pytest.Config) -> bool:
    """True when the run's -m expression asks for the packaging marker (and not 'not packaging')."""
    expression = config.getoption("markexpr", default="") or ""
    return bool(re.search(r"(?<!not )\bpackaging\b", expression))


@pytest.fixture(scope="module")
def packaged_executable(request, tmp_path_factory) -> Path:
    given = os.environ.get("HLM_PACKAGED_EXECUTABLE")
    if given:
        return Path(given)
    asked = os.environ.get("HLM_BUILD_TESTS") == "1"
    have_pyinstaller = importlib.util.find_spec("PyInstaller") is not None
    if not asked and not (_selected_by_marker(request.config) and have_pyinstaller):
        pytest.skip("builds the executable (minutes): set HLM_BUILD_TESTS=1, "
                    "or run 'pytest -m packaging' with the build extra installed")
    if not have_pyinstaller:
        pytest.fail("HLM_BUILD_TESTS=1 but PyInstaller is not installed: pip install -e '.[build]'")
    folder = tmp_path_factory.mktemp("pyinstaller")
    completed = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--workpath", str(folder / "build"), "--distpath", str(folder / "dist"), str(SPEC)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert completed.returncode == 0, f"PyInstaller failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}"
    executable = folder / "dist" / "hlm-explorer" / f"hlm-explorer{EXE_SUFFIX}"
    assert executable.is_file(), f"no {executable} after the build"
    return executable


def test_packaged_program_passes_smoke_test(packaged_executable):
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    completed = subprocess.run([sys.executable, str(SMOKE_TEST), str(packaged_executable)], cwd=ROOT,
                               env=environment, capture_output=True, text=True, timeout=1800)
    print(completed.stdout)
    assert completed.returncode == 0, f"smoke test failed:\n{completed.stdout}\n{completed.stderr}"
    assert re.search(r"^\d+ passed, 0 failed", completed.stdout, re.M)


def test_packaged_program_reports_engine_version(packaged_executable):
    from engine import __version__

    completed = subprocess.run([str(packaged_executable), "--version"], capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"HLM Explorer {__version__}"
