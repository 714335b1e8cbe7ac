"""Make Qt's SVG output render the same everywhere (Chromium, librsvg, QSvgRenderer).

Qt's SVG generator writes a plot's data in the plot's own coordinates under a group transform
(e.g. ``matrix(70.4, 0, 0, -12.1, 109, 409)``) and marks the pens cosmetic with
``vector-effect="non-scaling-stroke"``. Renderers that ignore that attribute (librsvg) scale
the stroke width with the transform: a 1-pixel line becomes 70 pixels wide and markers blobs.
Here each such group's transform is applied to the coordinates of its shapes and dropped, so
stroke widths mean device pixels without relying on ``vector-effect``. The size is given in
pixels instead of millimetres, so every renderer draws it at the size of the plot on screen.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_MATRIX_RE = re.compile(r"^\s*matrix\(([^)]*)\)\s*$")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PATH_TOKEN_RE = re.compile(r"[A-Za-z]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SHAPES = {"path", "polyline", "polygon", "rect", "line", "ellipse", "circle"}
# Absolute path commands whose arguments are all (x, y) points, and how many points each takes.
_POINT_COMMANDS = {"M": 1, "L": 1, "T": 1, "C": 3, "S": 2, "Q": 2}


class _CannotFlatten(Exception):
    """A shape this module does not rewrite: its group keeps its transform."""


def portable_svg(content: bytes, width: float, height: float) -> bytes:
    """Qt-generated SVG with transforms of cosmetic-pen groups applied, and the size in pixels.

    Parameters
    ----------
    content : bytes
        The SVG document as QSvgGenerator wrote it.
    width, height : float
        The drawing's size in pixels (its view box).
    """
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.fromstring(content)
    root.set("width", _format(width))
    root.set("height", _format(height))
    for group in root.iter(f"{{{SVG_NS}}}g"):
        matrix = _matrix(group.get("transform"))
        children = list(group)
        if matrix is None or not children or not all(_is_cosmetic_shape(child) for child in children):
            continue
        try:
            rewritten = [_transformed(child, matrix) for child in children]
        except _CannotFlatten:
            continue
        for old, new in zip(children, rewritten):
            group.remove(old)
            group.append(new)
        del group.attrib["transform"]
    return b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + ET.tostring(root, encoding="utf-8")


def _is_cosmetic_shape(element: ET.Element) -> bool:
    return (element.tag.rsplit("}", 1)[-1] in _SHAPES
            and element.get("vector-effect") == "non-scaling-stroke")


def _matrix(transform: str | None) -> tuple[float, ...] | None:
    if not transform:
        return None
    match = _MATRIX_RE.match(transform)
    if match is None:
        return None
    values = [float(v) for v in _NUMBER_RE.findall(match.group(1))]
    return tuple(values) if len(values) == 6 else None


def _apply(matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = matrix
    return a * x + c * y + e, b * x + d * y + f


def _transformed(element: ET.Element, matrix) -> ET.Element:
    """A copy of ``element`` with ``matrix`` applied to its coordinates."""
    tag = element.tag.rsplit("}", 1)[-1]
    new = ET.Element(element.tag, dict(element.attrib))
    new.text, new.tail = element.text, element.tail
    a, b, c, d, _, _ = matrix
    axis_aligned = b == 0 and c == 0
    if tag == "path":
        new.set("d", _transformed_path(element.get("d", ""), matrix))
    elif tag in ("polyline", "polygon"):
        new.set("points", _points_text(_pairs(element.get("points", "")), matrix))
    elif tag == "line":
        x1, y1 = _apply(matrix, float(element.get("x1", 0)), float(element.get("y1", 0)))
        x2, y2 = _apply(matrix, float(element.get("x2", 0)), float(element.get("y2", 0)))
        for name, value in (("x1", x1), ("y1", y1), ("x2", x2), ("y2", y2)):
            new.set(name, _format(value))
    elif tag == "rect":
        x, y = float(element.get("x", 0)), float(element.get("y", 0))
        w, h = float(element.get("width", 0)), float(element.get("height", 0))
        corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        if axis_aligned and element.get("rx") is None:
            (x1, y1), (x2, y2) = _apply(matrix, x, y), _apply(matrix, x + w, y + h)
            new.set("x", _format(min(x1, x2)))
            new.set("y", _format(min(y1, y2)))
            new.set("width", _format(abs(x2 - x1)))
            new.set("height", _format(abs(y2 - y1)))
        else:
            new = ET.Element(f"{{{SVG_NS}}}polygon", {k: v for k, v in element.attrib.items()
                                                      if k not in ("x", "y", "width", "height")})
            new.set("points", _points_text(corners, matrix))
    elif tag in ("ellipse", "circle") and axis_aligned:
        cx, cy = _apply(matrix, float(element.get("cx", 0)), float(element.get("cy", 0)))
        rx = float(element.get("rx", element.get("r", 0))) * abs(a)
        ry = float(element.get("ry", element.get("r", 0))) * abs(d)
        attributes = {k: v for k, v in element.attrib.items() if k not in ("cx", "cy", "r", "rx", "ry")}
        new = ET.Element(f"{{{SVG_NS}}}ellipse", attributes)
        for name, value in (("cx", cx), ("cy", cy), ("rx", rx), ("ry", ry)):
            new.set(name, _format(value))
    else:
        raise _CannotFlatten(tag)
    new.tail = element.tail
    return new


def _transformed_path(data: str, matrix) -> str:
    tokens = _PATH_TOKEN_RE.findall(data)
    out: list[str] = []
    command = None
    numbers: list[float] = []

    def flush() -> None:
        if command is None:
            return
        if command == "Z":
            out.append("Z")
            return
        per = _POINT_COMMANDS.get(command)
        if per is None or len(numbers) % (2 * per) != 0:
            raise _CannotFlatten(command)  # relative, H/V or arc commands: Qt does not write them
        points = [_apply(matrix, numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2)]
        out.append(command + " ".join(f"{_format(x)},{_format(y)}" for x, y in points))

    for token in tokens:
        if token.isalpha():
            flush()
            command, numbers = token.upper() if token in "Zz" else token, []
        else:
            numbers.append(float(token))
    flush()
    return " ".join(out)


def _pairs(text: str) -> list[tuple[float, float]]:
    values = [float(v) for v in _NUMBER_RE.findall(text)]
    if len(values) % 2:
        raise _CannotFlatten("odd number of coordinates")
    return list(zip(values[0::2], values[1::2]))


def _points_text(points, matrix) -> str:
    return " ".join(f"{_format(x)},{_format(y)}" for x, y in (_apply(matrix, px, py) for px, py in points))


def _format(value: float) -> str:
    return f"{value:.6g}"
