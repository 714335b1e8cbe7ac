#!/usr/bin/env bash
# Build the packaged program with PyInstaller and smoke-test it, as CI does on every submission.
#
#   bash packaging/build_and_smoke.sh [VENV]      (VENV defaults to .venv)
#
# Installs the project's `build` extra (PyInstaller) into VENV, builds the one-folder program
# into dist/hlm-explorer from a fresh build/ directory, prints the build time and folder size,
# then runs packaging/smoke_test.py on it (--version, fit, file formats, compare, montecarlo,
# --self-test offscreen). Exits non-zero if the build or any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
if [ -x "$VENV/bin/python" ]; then
    PYTHON="$VENV/bin/python"
else
    PYTHON="$VENV/Scripts/python.exe"  # a Windows venv under Git Bash
fi

"$PYTHON" -m pip install --quiet -e '.[build]'

start=$(date +%s)
rm -rf build/hlm-explorer dist/hlm-explorer
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN --workpath build --distpath dist packaging/hlm-explorer.spec
seconds=$(( $(date +%s) - start ))
echo "packaging: built dist/hlm-explorer in ${seconds} s; folder size $(du -sh dist/hlm-explorer | cut -f1)"

QT_QPA_PLATFORM=offscreen "$PYTHON" packaging/smoke_test.py
