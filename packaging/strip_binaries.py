"""Strip symbol tables and debug sections from the packaged shared libraries (Linux), safely.

Stripping saves about 30 MB (libpython alone carries 17 MB of debug information), but
``strip`` rewrites libraries that ``patchelf`` had edited (the ones wheels vendor under
``numpy.libs/``, ``scipy.libs/`` ...) into files the loader refuses ("ELF load command
address/offset not page-aligned"); PyInstaller's own ``strip=True`` does exactly that. So each
library is stripped into a copy, the copy's loadable segments are checked the way the loader
checks them, and the copy is used only when it passes and is smaller.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

PAGE_SIZE = 4096  # the smallest page size the loader may use (x86-64, most aarch64 kernels)
PT_LOAD = 1


def load_segments_aligned(path: Path) -> bool:
    """Whether every loadable segment satisfies the loader's rule: (address - offset) is a whole
    number of pages and of the segment's own alignment. False for anything that is not ELF64 LE."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    header_offset, = struct.unpack_from("<Q", data, 0x20)
    entry_size, count = struct.unpack_from("<HH", data, 0x36)
    for i in range(count):
        kind, _flags, offset, address, _p, _file_size, _memory_size, alignment = struct.unpack_from(
            "<IIQQQQQQ", data, header_offset + i * entry_size)
        if kind != PT_LOAD:
            continue
        if (address - offset) % PAGE_SIZE or (alignment > 1 and (address - offset) % alignment):
            return False
    return True


def is_elf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


def stripped_copy(source: Path, destination: Path, strip: str) -> bool:
    """Write ``source`` stripped to ``destination``; True if the copy is usable and smaller."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)
    destination.chmod(0o755)
    result = subprocess.run([strip, "--strip-unneeded", str(destination)], capture_output=True)
    if result.returncode != 0 or not load_segments_aligned(destination):
        return False
    return destination.stat().st_size < source.stat().st_size


def strip_binaries(binaries: list, folder: Path) -> tuple[list, str]:
    """PyInstaller's (dest, source, typecode) list with the safely stripped copies in ``folder``.

    Returns the new list and a line saying how much was saved and how many libraries were kept
    as they are.
    """
    strip = shutil.which("strip")
    if strip is None:
        return binaries, "no 'strip' program (binutils): libraries left as they are"
    result, saved, refused = [], 0, []
    for dest, source, typecode in binaries:
        path = Path(source)
        if typecode in ("BINARY", "EXTENSION") and path.is_file() and is_elf(path):
            copy = folder / dest
            if stripped_copy(path, copy, strip):
                saved += path.stat().st_size - copy.stat().st_size
                source = str(copy)
            elif load_segments_aligned(path) and not load_segments_aligned(copy):
                refused.append(Path(dest).name)
        result.append((dest, source, typecode))
    return result, (f"stripped the shared libraries: {saved / 1e6:.1f} MB saved; kept {len(refused)} as they "
                    f"were, whose stripped copy the loader would refuse ({', '.join(sorted(refused)[:6])}"
                    f"{', ...' if len(refused) > 6 else ''})")
