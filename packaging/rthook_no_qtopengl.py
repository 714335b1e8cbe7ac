"""Run-time hook of the packaged program: an empty ``PySide6.QtOpenGL`` in place of Qt's 9 MB one.

pyqtgraph imports PySide6.QtOpenGL when it loads (for its optional OpenGL drawing, which the
program never turns on: ``useOpenGL`` stays False) but uses it only inside OpenGL code paths. The
spec leaves the module out; this finder, consulted after every other one, answers that import
with a module that has no attributes, so a use would fail loudly instead of drawing wrongly.
"""

import sys
from importlib.machinery import ModuleSpec

_NAME = "PySide6.QtOpenGL"


class _AbsentQtOpenGL:
    @staticmethod
    def find_spec(fullname, path=None, target=None):
        return ModuleSpec(fullname, _AbsentQtOpenGL) if fullname == _NAME else None

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        def __getattr__(name):
            raise AttributeError(f"{_NAME}.{name}: HLM Explorer is packaged without Qt's OpenGL classes")

        module.__getattr__ = __getattr__


sys.meta_path.append(_AbsentQtOpenGL)
