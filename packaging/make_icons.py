"""Draw the application icon (a three-level hierarchy) and write it as PNG, ICO and ICNS.

The icons are committed in resources/; run this only to change them. It needs Pillow, which
the program itself does not use, so install it somewhere apart rather than in the venv:

    .venv/bin/pip install --target /tmp/pil pillow
    PYTHONPATH=/tmp/pil .venv/bin/python packaging/make_icons.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
SIZE = 1024
BACKGROUND = (32, 74, 135, 255)     # deep blue
LINE = (220, 232, 247, 255)
LEVEL_COLOURS = [(255, 196, 61, 255), (110, 200, 160, 255), (240, 240, 240, 255)]


def draw(size: int = SIZE) -> Image.Image:
    """A rounded square with one top node, two middle nodes and four leaves."""
    scale = 4  # draw large and shrink, for smooth edges
    n = size * scale
    image = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    margin = n * 0.04
    pen.rounded_rectangle((margin, margin, n - margin, n - margin), radius=n * 0.18, fill=BACKGROUND)

    levels = [
        [(0.5, 0.24)],
        [(0.30, 0.50), (0.70, 0.50)],
        [(0.18, 0.76), (0.42, 0.76), (0.58, 0.76), (0.82, 0.76)],
    ]
    width = int(n * 0.03)
    for parent_level, child_level in zip(levels, levels[1:]):
        per_parent = len(child_level) // len(parent_level)
        for i, (cx, cy) in enumerate(child_level):
            px, py = parent_level[i // per_parent]
            pen.line((px * n, py * n, cx * n, cy * n), fill=LINE, width=width)
    radii = [0.105, 0.085, 0.065]
    for level, colour, radius in zip(levels, LEVEL_COLOURS, radii):
        for x, y in level:
            r = radius * n
            pen.ellipse((x * n - r, y * n - r, x * n + r, y * n + r), fill=colour, outline=LINE,
                        width=int(n * 0.012))
    return image.resize((size, size), Image.LANCZOS)


def main() -> None:
    RESOURCES.mkdir(exist_ok=True)
    image = draw()
    image.resize((256, 256), Image.LANCZOS).save(RESOURCES / "icon.png")
    image.save(RESOURCES / "icon.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    image.save(RESOURCES / "icon.icns")
    for name in ("icon.png", "icon.ico", "icon.icns"):
        print(f"{RESOURCES / name}: {(RESOURCES / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
