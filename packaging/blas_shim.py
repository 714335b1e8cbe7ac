"""One OpenBLAS and one Fortran runtime instead of two each in the packaged program (Linux).

The numpy and scipy wheels each bundle an OpenBLAS (25 MB each): numpy's is built with 64-bit
integers (symbols ``scipy_dgemm_64_``, ``scipy_cblas_dgemm64_``), scipy's with 32-bit ones
(``scipy_dgemm_``, ``scipy_cblas_dgemm``), so neither can load in the other's place. numpy calls
only 57 routines (CBLAS for dot/matmul, LAPACK for numpy.linalg), so ``openblas64_shim.c``
defines exactly those under numpy's names, narrows the integer arguments to 32 bits and calls
scipy's library. Compiled with the C compiler under numpy's soname and put where numpy's library
was, it saves 25 MB; numpy's and scipy's computations then run on one OpenBLAS (and one thread
pool).

The build checks that the shim defines every symbol the bundled binaries import from numpy's
library (a newer numpy calling one more routine would otherwise fail to load); if not, or with no
C compiler or binutils, the spec keeps numpy's library and says why. numpy's own linalg and
dot/matmul test suites pass with the shim (packaging/README.md, "Size and time").

The two wheels also bring two builds of the GNU Fortran runtime (libgfortran.so.5, 2.8 MB each,
with their quad-precision maths library): ``share_fortran_runtime`` points scipy's name at numpy's
build when that defines every versioned symbol scipy's modules import from theirs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

SHIM_SOURCE = Path(__file__).with_name("openblas64_shim.c")
NUMPY_BLAS = re.compile(r"(^|[\\/])numpy\.libs[\\/]libscipy_openblas64_[^\\/]*\.so$")
SCIPY_BLAS = re.compile(r"(^|[\\/])scipy\.libs[\\/]libscipy_openblas-[^\\/]*\.so$")


def _run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def needed_libraries(path: str) -> set[str]:
    """The sonames an ELF file lists as NEEDED (empty for anything else)."""
    try:
        return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _run("readelf", "-d", path)))
    except (subprocess.CalledProcessError, OSError):
        return set()


def dynamic_symbols(path: str, *, defined: bool) -> set[str]:
    """The dynamic symbols an ELF file defines (``defined=True``) or imports."""
    option = "--defined-only" if defined else "--undefined-only"
    return {line.split()[-1].split("@")[0] for line in _run("nm", "-D", option, path).splitlines() if line.strip()}


def soname(path: str) -> str:
    found = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", _run("readelf", "-d", path))
    return found.group(1) if found else Path(path).name


def build_shim(scipy_library: Path, name: str, rpath: str, destination: Path, compiler: str) -> None:
    """Compile openblas64_shim.c into ``destination`` (soname ``name``) linked to scipy's OpenBLAS,
    which the loader finds at ``rpath`` (relative to ``$ORIGIN``)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([compiler, "-O2", "-fPIC", "-shared", "-o", str(destination), str(SHIM_SOURCE),
                    f"-Wl,-soname,{name}", "-Wl,--no-undefined", f"-Wl,-rpath,$ORIGIN/{rpath}",
                    f"-L{scipy_library.parent}", f"-l:{scipy_library.name}"],
                   check=True, capture_output=True, text=True)


def shim_numpy_blas(binaries: list, folder: Path) -> tuple[list, str]:
    """PyInstaller's (dest, source, typecode) list with numpy's OpenBLAS replaced by the shim built
    in ``folder``, and a line saying what was done (or why numpy's library was kept)."""
    numpy_entry = next((entry for entry in binaries if NUMPY_BLAS.search(entry[0])), None)
    scipy_entry = next((entry for entry in binaries if SCIPY_BLAS.search(entry[0])), None)
    if numpy_entry is None or scipy_entry is None:
        return binaries, "kept numpy's OpenBLAS: numpy's or scipy's OpenBLAS is not among the binaries"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or shutil.which("nm") is None or shutil.which("readelf") is None:
        return binaries, "kept numpy's OpenBLAS: the shim needs a C compiler (cc), nm and readelf"
    numpy_dest, numpy_source, _typecode = numpy_entry
    name = soname(numpy_source)
    provided = dynamic_symbols(numpy_source, defined=True)
    needed = set()
    for dest, source, typecode in binaries:
        if typecode != "SYMLINK" and dest != numpy_dest and name in needed_libraries(source):
            needed |= dynamic_symbols(source, defined=False) & provided
    rpath = Path(os.path.relpath(Path(scipy_entry[0]).parent, Path(numpy_dest).parent)).as_posix()
    shim = folder / Path(numpy_dest).name
    try:
        build_shim(Path(scipy_entry[1]), name, rpath, shim, compiler)
    except subprocess.CalledProcessError as error:
        return binaries, f"kept numpy's OpenBLAS: the shim did not build ({error.stderr.strip()[:300]})"
    missing = needed - dynamic_symbols(str(shim), defined=True)
    if missing:
        return binaries, f"kept numpy's OpenBLAS: the shim lacks {', '.join(sorted(missing))}"
    saved = Path(numpy_source).stat().st_size - shim.stat().st_size
    result = [(dest, str(shim), typecode) if dest == numpy_dest else (dest, source, typecode)
              for dest, source, typecode in binaries]
    return result, (f"numpy's OpenBLAS replaced by a {shim.stat().st_size // 1000} kB shim onto scipy's "
                    f"({len(needed)} routines, {saved / 1e6:.1f} MB saved)")


def _versioned_symbols(path: Path) -> tuple[set[str], set[str]]:
    """(imported, defined) dynamic symbols of an ELF file as ``name@VERSION`` (``objdump -T``;
    a symbol without a version, or of version ``Base``, as ``name@``)."""
    imported, defined = set(), set()
    for line in _run("objdump", "-T", str(path)).splitlines():
        left, tab, right = line.partition("\t")
        fields = right.split()
        if not tab or len(fields) < 2:
            continue
        version = fields[1].strip("()") if len(fields) >= 3 else ""
        symbol = f"{fields[-1]}@{'' if version == 'Base' else version}"
        (imported if "*UND*" in left else defined).add(symbol)
    return imported, defined


def share_fortran_runtime(internal: Path) -> str:
    """In the built folder ``internal`` (``_internal/``): make scipy's Fortran runtime a relative
    symbolic link to numpy's, and drop the quad-precision library only scipy's runtime needed.
    Returns a line saying what was done, or why not."""
    numpy_runtime = sorted((internal / "numpy.libs").glob("libgfortran-*.so.5*"))
    scipy_runtime = [path for path in sorted((internal / "scipy.libs").glob("libgfortran-*.so.5*"))
                     if not path.is_symlink()]
    if len(numpy_runtime) != 1 or len(scipy_runtime) != 1 or shutil.which("objdump") is None:
        return "kept both Fortran runtimes (not exactly one real libgfortran.so.5 in each of numpy.libs, scipy.libs, or no objdump)"
    ours, theirs = numpy_runtime[0], scipy_runtime[0]
    users = [path for path in internal.rglob("*.so*") if path.is_file() and not path.is_symlink()
             and path != theirs and theirs.name in needed_libraries(str(path))]
    wanted = set()
    for user in users:
        wanted |= {symbol for symbol in _versioned_symbols(user)[0] if "@GFORTRAN" in symbol}
    missing = wanted - _versioned_symbols(ours)[1]
    if missing:
        return f"kept both Fortran runtimes: numpy's lacks {', '.join(sorted(missing)[:5])}"
    companions = needed_libraries(str(theirs)) - needed_libraries(str(ours))
    theirs.unlink()
    os.symlink(Path("..") / "numpy.libs" / ours.name, theirs)
    dropped = []
    for name in sorted(companions):  # e.g. scipy's libquadmath, now needed by nothing
        candidate = internal / "scipy.libs" / name
        if candidate.is_file() and not candidate.is_symlink() and not any(
                name in needed_libraries(str(path)) for path in internal.rglob("*.so*")
                if path.is_file() and not path.is_symlink() and path != candidate):
            candidate.unlink()
            dropped.append(name)
            link = internal / name  # PyInstaller's link to it at the top of the folder
            if link.is_symlink():
                link.unlink()
    return (f"scipy's Fortran runtime {theirs.name} is now a link to numpy's {ours.name} "
            f"({len(users)} modules use it); dropped {', '.join(dropped) or 'nothing else'}")
