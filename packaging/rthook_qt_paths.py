"""Run-time hook of the packaged program, in place of PyInstaller's hook for PySide6.

PyInstaller's hook imports PySide6.QtCore at every start, to register a qt.conf that the PySide6
wheel registers itself anyway: that loads Qt and its ICU libraries before even ``--help`` or a
``fit`` on the command line, which need no Qt. This sets only what Qt reads when it does start:
where the bundled plugins are.
"""

import os
import sys

# The PySide6 wheels keep Qt's plugins in PySide6/plugins on Windows and PySide6/Qt/plugins elsewhere.
_QT_FOLDER = ("PySide6",) if sys.platform.startswith("win") else ("PySide6", "Qt")
os.environ["QT_PLUGIN_PATH"] = os.path.join(sys._MEIPASS, *_QT_FOLDER, "plugins")
