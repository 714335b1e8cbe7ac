"""Where the packaged folder's size goes, and whether it stays under the limit.

    python packaging/size_report.py [FOLDER] [--limit-mb N] [--top N]

FOLDER defaults to dist/hlm-explorer. Prints the total, the size of each component (a top-level
package or library of the bundle; PySide6's Qt libraries, plugins and Python modules separately)
and the largest files, in MB (10^6 bytes, as ``du --si``). With ``--limit-mb`` it exits 1 when the
folder is larger. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = ROOT / "dist" / "hlm-explorer"


def file_sizes(folder: Path) -> dict[str, int]:
    """Path inside the folder -> bytes, for every regular file (symbolic links count nothing)."""
    sizes = {}
    for directory, _subfolders, names in os.walk(folder):
        for name in names:
            path = Path(directory) / name
            if not path.is_symlink():
                sizes[path.relative_to(folder).as_posix()] = path.stat().st_size
    return sizes


def component_of(relative: str) -> str:
    """The component a file belongs to: its top-level folder or file inside the bundle, and for
    Qt each library and each plugin folder on its own."""
    parts = relative.split("/")
    if parts[0] == "_internal":  # PyInstaller's folder of libraries and data
        parts = parts[1:]
    if parts[:2] == ["PySide6", "Qt"] and len(parts) > 3:
        return "/".join(parts[:4])
    return parts[0]


def report(folder: Path, top: int) -> int:
    sizes = file_sizes(folder)
    total = sum(sizes.values())
    components: dict[str, int] = defaultdict(int)
    for relative, size in sizes.items():
        components[component_of(relative)] += size
    print(f"{folder}: {total / 1e6:.1f} MB in {len(sizes)} files")
    print(f"\nComponents (largest {top}):")
    for name, size in sorted(components.items(), key=lambda item: -item[1])[:top]:
        print(f"  {size / 1e6:8.1f} MB  {name}")
    print(f"\nFiles (largest {top}):")
    for relative, size in sorted(sizes.items(), key=lambda item: -item[1])[:top]:
        print(f"  {size / 1e6:8.1f} MB  {relative}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--limit-mb", type=float, help="exit 1 when the folder is larger than this")
    parser.add_argument("--top", type=int, default=25, help="components and files to list (default 25)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder; build it first", file=sys.stderr)
        return 2
    total = report(args.folder, args.top)
    if args.limit_mb is not None:
        verdict = "within" if total <= args.limit_mb * 1e6 else "OVER"
        print(f"\nsize: {total / 1e6:.1f} MB, {verdict} the limit of {args.limit_mb:g} MB")
        if verdict == "OVER":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
