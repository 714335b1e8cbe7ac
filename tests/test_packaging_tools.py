"""The build helpers in packaging/: size report, ICU data trimming, safe stripping."""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import size_report  # noqa: E402
import strip_binaries  # noqa: E402
import trim_icu  # noqa: E402


def test_size_report_groups_by_component_and_enforces_the_limit(tmp_path, capsys):
    folder = tmp_path / "hlm-explorer"
    files = {"hlm-explorer": 3_000_000, "_internal/pyarrow/libarrow.so": 5_000_000,
             "_internal/pyarrow/lib.so": 1_000_000, "_internal/PySide6/Qt/lib/libQt6Gui.so.6": 2_000_000,
             "_internal/PySide6/Qt/plugins/platforms/libqxcb.so": 500_000, "_internal/PySide6/QtCore.abi3.so": 400_000}
    for relative, size in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
    (folder / "_internal" / "libQt6Gui.so.6").symlink_to("PySide6/Qt/lib/libQt6Gui.so.6")  # counts nothing
    assert size_report.component_of("_internal/PySide6/Qt/plugins/platforms/libqxcb.so") == "PySide6/Qt/plugins/platforms"
    assert size_report.component_of("_internal/pyarrow/lib.so") == "pyarrow"
    assert size_report.main([str(folder), "--limit-mb", "12"]) == 0
    out = capsys.readouterr().out
    assert "11.9 MB in 6 files" in out
    assert "6.0 MB  pyarrow" in out
    assert size_report.main([str(folder), "--limit-mb", "11.8"]) == 1
    assert "OVER the limit of 11.8 MB" in capsys.readouterr().out


def synthetic_package(names: list[str]) -> bytes:
    header = struct.pack("<HBB", 32, 0xDA, 0x27) + struct.pack("<HHBBBB", 20, 0, 0, 0, 2, 0) + b"CmnD"
    header += b"\0" * (32 - len(header))
    items = [(name, f"data of {name}".encode() * 3) for name in names]
    return trim_icu.build_package(header, items)


def test_icu_package_round_trip_and_filter():
    names = ["icudt73l/brkitr/cjdict.dict", "icudt73l/cnvalias.icu", "icudt73l/coll/de.res",
             "icudt73l/coll/root.res", "icudt73l/de.res", "icudt73l/en.res", "icudt73l/ibm-5348_P100-1997.cnv",
             "icudt73l/root.res", "icudt73l/zoneinfo64.res"]
    header, items = trim_icu.package_items(synthetic_package(names))
    assert [name for name, _ in items] == names
    assert all(item.startswith(f"data of {name}".encode() * 3) for name, item in items)
    kept = [name for name, _ in trim_icu.kept(items)]
    assert kept == ["icudt73l/cnvalias.icu", "icudt73l/coll/root.res", "icudt73l/en.res", "icudt73l/root.res",
                    "icudt73l/zoneinfo64.res"]
    # A package built from the kept items reads back the same items (16-byte aligned).
    rebuilt_header, rebuilt = trim_icu.package_items(trim_icu.build_package(header, trim_icu.kept(items)))
    assert rebuilt_header == header
    assert [(n, i[:len(d)]) for (n, i), (_, d) in zip(rebuilt, trim_icu.kept(items))] == trim_icu.kept(items)


def qt_icu_library() -> Path | None:
    from gui.platform_check import qt_folder

    libraries = sorted((qt_folder() / "lib").glob("libicudata.so.*")) if qt_folder() else []
    return libraries[0] if libraries else None


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("cc") is None or qt_icu_library() is None,
                    reason="Linux with a C compiler and PySide6's ICU library")
def test_trimmed_icu_library_holds_the_kept_items_unchanged(tmp_path):
    source = qt_icu_library()
    target = tmp_path / source.name
    trim_icu.trimmed_icu_library(source, target)
    symbol, common = trim_icu.read_common_data(target)
    original_symbol, original = trim_icu.read_common_data(source)
    assert symbol == original_symbol
    _, items = trim_icu.package_items(common)
    originals = dict(trim_icu.package_items(original)[1])
    assert len(items) > 20 and "icudt" in items[0][0]
    for name, item in items:
        assert item[:len(originals[name])] == originals[name]
    assert target.stat().st_size < source.stat().st_size / 5


def elf_with_segment(path: Path, offset: int, address: int) -> Path:
    """A minimal ELF64 header with one PT_LOAD program header."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)           # program headers right after the header
    struct.pack_into("<HH", header, 0x36, 56, 1)        # one entry of 56 bytes
    segment = struct.pack("<IIQQQQQQ", 1, 5, offset, address, address, 0x100, 0x100, 0x1000)
    path.write_bytes(bytes(header) + segment)
    return path


def test_load_segment_check_follows_the_loader_rule(tmp_path):
    assert strip_binaries.load_segments_aligned(elf_with_segment(tmp_path / "good.so", 0x1000, 0x401000))
    assert not strip_binaries.load_segments_aligned(elf_with_segment(tmp_path / "bad.so", 0x1010, 0x401000))
    assert not strip_binaries.load_segments_aligned(tmp_path.joinpath("text").write_text("x") and tmp_path / "text")
    import _ctypes

    assert strip_binaries.load_segments_aligned(Path(_ctypes.__file__))  # a library the loader accepted
