"""A smaller ICU data library for the packaged program (Linux): 32 MB down to about 2 MB.

Qt links ICU and ICU's data library, ``libicudata.so.NN``, holds all of ICU's data: every locale's
names of languages, currencies, units and regions, break-iteration dictionaries for Thai, Khmer
and Chinese, transliterators, and about 200 legacy code-page converters. Qt calls only ICU's
collation (QCollator), code-page conversion (QStringConverter for non-UTF encodings), time-zone
names (QTimeZone) and case mapping; HLM Explorer reads and writes its files through pandas, not
Qt. This keeps the root and English locale data, root collation, time-zone data, normalisation
and converter aliases, and leaves out the rest; another locale falls back to the root data, as
ICU does for any locale it lacks.

    python packaging/trim_icu.py SOURCE_LIBICUDATA DESTINATION

builds DESTINATION (same soname and symbol) with the C compiler (``cc``). The spec calls
:func:`trimmed_icu_library`; without a compiler it keeps the full library and says so.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

# Items kept, matched against the item's name without the "icudtNNl/" prefix.
KEEP = re.compile(r"""^(
      (coll/|zone/)?(root|en|en_US|en_US_POSIX|res_index|pool)\.res   # root and English locale data
    | coll/ucadata\.icu                                              # the root collation table
    | (zoneinfo64|metaZones|timezoneTypes|windowsZones|supplementalData|likelySubtags|keyTypeData
       |icuver|icustd|numberingSystems|plurals|dayPeriods|grammaticalFeatures|genderList
       |langInfo)\.res
    | cnvalias\.icu | [a-z_]+\.nrm | pnames\.icu | ulayout\.icu | uemoji\.icu | [a-z]+\.cfu
)$""", re.X)
ALIGNMENT = 16


def _elf_symbol(data: bytes, wanted: re.Pattern) -> tuple[str, int, int]:
    """(name, file offset, size) of the first dynamic symbol whose name matches ``wanted`` (ELF64 LE)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    section_offset, = struct.unpack_from("<Q", data, 0x28)
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, section_offset + i * entry_size) for i in range(count)]
    for section in sections:
        if section[1] != 11:  # SHT_DYNSYM
            continue
        strings = sections[section[6]][4]
        for position in range(section[4], section[4] + section[5], 24):
            name_offset, _info, _other, _index, value, size = struct.unpack_from("<IBBHQQ", data, position)
            name = data[strings + name_offset:data.index(b"\0", strings + name_offset)].decode()
            if wanted.fullmatch(name):
                for _n, _t, _f, address, offset, length, *_ in sections:  # address -> file offset
                    if address <= value < address + length and _t != 8:  # not SHT_NOBITS
                        return name, offset + value - address, size
    raise ValueError("no ICU data symbol (icudtNN_dat) in the library")


def read_common_data(library: Path) -> tuple[str, bytes]:
    """The ICU data symbol's name and its bytes (an ICU "common data" package)."""
    data = library.read_bytes()
    name, offset, size = _elf_symbol(data, re.compile(r"icudt\d+_dat"))
    return name, data[offset:offset + size]


def package_items(common: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Split a common-data package into its header and its (name, item) pairs, in table order."""
    header_size, magic1, magic2 = struct.unpack_from("<HBB", common, 0)
    if (magic1, magic2) != (0xDA, 0x27) or common[12:16] != b"CmnD":
        raise ValueError("not an ICU common data package")
    table = common[header_size:]
    count, = struct.unpack_from("<I", table, 0)
    entries = [struct.unpack_from("<II", table, 4 + 8 * i) for i in range(count)]
    items = []
    for i, (name_offset, data_offset) in enumerate(entries):
        end = entries[i + 1][1] if i + 1 < count else len(table)
        name = table[name_offset:table.index(b"\0", name_offset)].decode("ascii")
        items.append((name, table[data_offset:end]))
    return common[:header_size], items


def build_package(header: bytes, items: list[tuple[str, bytes]]) -> bytes:
    """A common-data package of ``items`` (kept in the given, sorted, order)."""
    names = b"".join(name.encode("ascii") + b"\0" for name, _ in items)
    table_size = 4 + 8 * len(items)
    offset = table_size + len(names)
    offset += -offset % ALIGNMENT
    entries, body, name_offset = [], bytearray(), table_size
    for name, item in items:
        entries.append(struct.pack("<II", name_offset, offset + len(body)))
        name_offset += len(name) + 1
        body += item + b"\0" * (-len(item) % ALIGNMENT)
    table = struct.pack("<I", len(items)) + b"".join(entries) + names
    table += b"\0" * (-len(table) % ALIGNMENT)
    return header + table + bytes(body)


def kept(items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(name, item) for name, item in items if KEEP.match(name.split("/", 1)[1])]


def write_library(symbol: str, soname: str, package: bytes, destination: Path, compiler: str) -> None:
    """A shared library exporting ``symbol`` = ``package`` (what libicudata is), built with ``compiler``."""
    with tempfile.TemporaryDirectory(prefix="hlm-icu-") as folder:
        data_file = Path(folder) / "icudata.bin"
        data_file.write_bytes(package)
        assembly = Path(folder) / "icudata.S"
        assembly.write_text(
            f'.section .rodata\n.globl {symbol}\n.type {symbol}, @object\n.balign 16\n{symbol}:\n'
            f'.incbin "{data_file}"\n.size {symbol}, . - {symbol}\n.section .note.GNU-stack,"",@progbits\n')
        subprocess.run([compiler, "-shared", "-nostdlib", "-o", str(destination), f"-Wl,-soname,{soname}",
                        str(assembly)], check=True, capture_output=True)


def trimmed_icu_library(source: Path, destination: Path) -> str:
    """Write the trimmed library to ``destination``; returns a line saying what was done.

    Raises RuntimeError when no C compiler is found (the caller then keeps the full library).
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) to build the trimmed ICU data library")
    symbol, common = read_common_data(source)
    header, items = package_items(common)
    keep = kept(items)
    package = build_package(header, keep)
    destination.parent.mkdir(parents=True, exist_ok=True)
    write_library(symbol, source.name, package, destination, compiler)
    return (f"ICU data: kept {len(keep)} of {len(items)} items, {len(common) / 1e6:.1f} MB -> "
            f"{destination.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(trimmed_icu_library(Path(sys.argv[1]), Path(sys.argv[2])))
