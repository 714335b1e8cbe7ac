"""Entry point of the packaged (PyInstaller) program: the same as ``python main.py``.

``multiprocessing.freeze_support()`` must run first in a frozen program: the Monte Carlo
runner starts its local workers with the ``spawn`` method, which re-runs this executable with
multiprocessing's own arguments, and freeze_support turns such a run into a worker instead of
a second copy of the application.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from main import main

    sys.exit(main())
