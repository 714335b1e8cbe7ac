"""Run-time hook of the packaged program: empty stand-ins for two modules the spec leaves out.

Both are imported by libraries the program uses, but only for features it never uses:

* ``PySide6.QtOpenGL`` (9 MB): pyqtgraph imports it when it loads, for its optional OpenGL
  drawing, which the program never turns on (``useOpenGL`` stays False);
* ``numpy.f2py``, numpy's Fortran-wrapper generator (a build tool): scipy's array-API layer
  touches every attribute of numpy when it loads, which imports f2py (60 ms at every start).

A finder consulted after every other one answers those imports with a module that has no
attributes, so any real use fails loudly instead of doing something else.
"""

import sys
from importlib.machinery import ModuleSpec

_ABSENT = ("PySide6.QtOpenGL", "numpy.f2py")


class _AbsentModule:
    @staticmethod
    def find_spec(fullname, path=None, target=None):
        return ModuleSpec(fullname, _AbsentModule) if fullname in _ABSENT else None

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        name = module.__name__

        def __getattr__(attribute):
            raise AttributeError(f"{name}.{attribute}: HLM Explorer is packaged without {name}")

        module.__getattr__ = __getattr__


sys.meta_path.append(_AbsentModule)
