"""packaging/openblas64_shim.c: numpy's 64-bit-integer BLAS/LAPACK calls served by scipy's OpenBLAS.

The shim is compiled here against the installed scipy's OpenBLAS and called through ctypes with
numpy's (64-bit) argument conventions; each answer is checked against numpy, whose own OpenBLAS
is a separate library in this process. The build's use of it (packaging/hlm-explorer.spec) is
checked by the packaging smoke test.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import blas_shim  # noqa: E402

SCIPY_LIBS = Path(__import__("scipy").__file__).resolve().parents[1] / "scipy.libs"
NUMPY_LIBS = Path(np.__file__).resolve().parents[1] / "numpy.libs"
SCIPY_BLAS = sorted(SCIPY_LIBS.glob("libscipy_openblas-*.so"))
NUMPY_BLAS = sorted(NUMPY_LIBS.glob("libscipy_openblas64_*.so"))

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not SCIPY_BLAS or not NUMPY_BLAS
    or not (shutil.which("cc") or shutil.which("gcc")) or not shutil.which("nm") or not shutil.which("readelf"),
    reason="Linux with the scipy-openblas wheels, a C compiler and binutils only")

I64 = ctypes.c_int64
P = ctypes.POINTER


@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shim")
    path = folder / NUMPY_BLAS[0].name
    rpath = os.path.relpath(SCIPY_LIBS, folder)
    blas_shim.build_shim(SCIPY_BLAS[0], blas_shim.soname(str(NUMPY_BLAS[0])), rpath, path,
                         shutil.which("cc") or shutil.which("gcc"))
    return path


@pytest.fixture(scope="module")
def library(shim):
    return ctypes.CDLL(str(shim))


def pointer(array: np.ndarray):
    return array.ctypes.data_as(ctypes.c_void_p)


def ref(value: int):
    return ctypes.byref(I64(value))


def test_the_shim_defines_every_routine_numpys_modules_import_from_their_openblas(shim):
    provided = blas_shim.dynamic_symbols(str(NUMPY_BLAS[0]), defined=True)
    needed = set()
    for module in (Path(np.__file__).parent).rglob("*.so"):
        if NUMPY_BLAS[0].name in blas_shim.needed_libraries(str(module)):
            needed |= blas_shim.dynamic_symbols(str(module), defined=False) & provided
    assert {"scipy_cblas_dgemm64_", "scipy_dgesv_64_", "scipy_dsyevd_64_"} <= needed
    assert needed <= blas_shim.dynamic_symbols(str(shim), defined=True)
    assert blas_shim.soname(str(shim)) == blas_shim.soname(str(NUMPY_BLAS[0]))


def test_dgemm_matches_numpy(library):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((5, 3))
    c = np.zeros((7, 3))
    library.scipy_cblas_dgemm64_.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, I64, I64, I64, ctypes.c_double,
                                             ctypes.c_void_p, I64, ctypes.c_void_p, I64, ctypes.c_double,
                                             ctypes.c_void_p, I64]
    # row-major (101), no transposes (111)
    library.scipy_cblas_dgemm64_(101, 111, 111, 7, 3, 5, 1.0, pointer(a), 5, pointer(b), 3, 0.0, pointer(c), 3)
    np.testing.assert_allclose(c, a @ b, rtol=1e-13)


def test_dgesv_solves_and_returns_64_bit_pivots(library):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 5))
    b = rng.standard_normal((5, 2))
    lu, x = np.asfortranarray(a.copy()), np.asfortranarray(b.copy())
    pivots = np.full(5, -99, dtype=np.int64)
    info = I64(-99)
    library.scipy_dgesv_64_(ref(5), ref(2), pointer(lu), ref(5), pointer(pivots), pointer(x), ref(5), ctypes.byref(info))
    assert info.value == 0
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-12)
    # LAPACK's 1-based pivots: applying their row swaps to a gives L @ U
    permuted = a.copy()
    for row, pivot in enumerate(pivots):
        permuted[[row, pivot - 1]] = permuted[[pivot - 1, row]]
    lower = np.tril(lu, -1) + np.eye(5)
    np.testing.assert_allclose(lower @ np.triu(lu), permuted, atol=1e-12)


def test_a_workspace_query_answers_in_64_bits(library):
    # dsyevd with jobz='V' needs an integer workspace of 3 + 5n (LAPACK's documented minimum).
    n = 6
    a = np.asfortranarray(np.eye(n))
    w, work = np.zeros(n), np.zeros(1)
    iwork = np.full(1, -1, dtype=np.int64)
    info = I64(-99)
    library.scipy_dsyevd_64_(ctypes.c_char_p(b"V"), ctypes.c_char_p(b"L"), ref(n), pointer(a), ref(n), pointer(w),
                             pointer(work), ref(-1), pointer(iwork), ref(-1), ctypes.byref(info))
    assert info.value == 0
    assert iwork[0] == 3 + 5 * n
    assert work[0] >= 1 + 6 * n + 2 * n * n


def test_a_wrapped_stride_copies_backwards_from_the_start(library):
    # numpy.linalg passes a stride of -2 elements as (2**64 - 16) // 8 (an unsigned division); the
    # 64-bit library walks back from the pointer by wrapping around: the shim must do the same.
    x = np.arange(6.0)
    y = np.zeros(3)
    wrapped = (2**64 - 2 * 8) // 8
    library.scipy_dcopy_64_(ref(3), ctypes.c_void_p(x.ctypes.data + 4 * 8), ref(wrapped), pointer(y), ref(1))
    assert y.tolist() == [4.0, 2.0, 0.0]
    # an ordinary negative stride keeps BLAS's meaning (the vector is read from its far end)
    library.scipy_dcopy_64_(ref(3), pointer(x), ref(-2), pointer(y), ref(1))
    assert y.tolist() == [4.0, 2.0, 0.0]


def test_a_dimension_beyond_32_bits_stops_with_a_message(shim):
    script = (
        "import ctypes, sys\n"
        f"lib = ctypes.CDLL({str(shim)!r})\n"
        "value = ctypes.c_int64(2**31)\n"
        "lib.scipy_dcopy_64_(ctypes.byref(value), None, ctypes.byref(ctypes.c_int64(1)), None,"
        " ctypes.byref(ctypes.c_int64(1)))\n"
        "print('returned')\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0
    assert "returned" not in completed.stdout
    assert "scipy_dcopy_64_: a matrix dimension of 2147483648 is beyond what the bundled BLAS takes" in completed.stderr


def test_the_spec_step_replaces_numpys_library_only(tmp_path):
    module = next(path for path in (Path(np.__file__).parent / "_core").glob("_multiarray_umath*.so"))
    binaries = [(f"numpy.libs/{NUMPY_BLAS[0].name}", str(NUMPY_BLAS[0]), "BINARY"),
                (f"scipy.libs/{SCIPY_BLAS[0].name}", str(SCIPY_BLAS[0]), "BINARY"),
                (f"numpy/_core/{module.name}", str(module), "EXTENSION")]
    result, message = blas_shim.shim_numpy_blas(binaries, tmp_path)
    assert result[0] == (binaries[0][0], str(tmp_path / NUMPY_BLAS[0].name), "BINARY")
    assert result[1:] == binaries[1:]
    assert "22 routines" in message  # the CBLAS routines numpy's core module imports
    assert blas_shim.needed_libraries(result[0][1]) >= {SCIPY_BLAS[0].name}
