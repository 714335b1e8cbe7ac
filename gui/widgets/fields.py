"""Form fields that show their own problem: a red frame and the reason in the tooltip."""

from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLineEdit, QWidget

INVALID_STYLE = "border: 2px solid #c9302c; border-radius: 3px; background: #fdecea;"


def mark_invalid(widget: QWidget, reason: str | None) -> None:
    """Show (or clear, with None) a problem at a field; the plain-words help stays first."""
    help_text = widget.property("help_text")
    if help_text is None:
        help_text = widget.toolTip()
        widget.setProperty("help_text", help_text)
    widget.setProperty("invalid_reason", reason or "")
    widget.setStyleSheet(INVALID_STYLE if reason else "")
    widget.setToolTip(f"{help_text}\n\n⚠ {reason}" if reason else help_text)


def invalid_reason(widget: QWidget) -> str:
    return widget.property("invalid_reason") or ""


def format_value(value) -> str:
    """How numbers appear in form fields: no trailing zeros, whole numbers without a point."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_number(text: str) -> float | int:
    """A number typed in a field (whole numbers stay int). Raises ValueError otherwise."""
    text = text.strip().replace(",", "")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


class NumberField(QLineEdit):
    """A line edit for one number. ``value_edited`` carries the parsed number; text that is not
    a number is kept as typed and marked at the field (``parse_failed``)."""

    value_edited = Signal(object)
    parse_failed = Signal(str)

    def __init__(self, label: str, help_text: str, parent=None):
        super().__init__(parent)
        self.label = label
        self.setToolTip(help_text)
        self.setProperty("help_text", help_text)
        self.textEdited.connect(self._on_text_edited)

    def set_value(self, value) -> None:
        self.setText(format_value(value))
        mark_invalid(self, None)

    def value(self):
        return parse_number(self.text())

    def _on_text_edited(self, text: str) -> None:
        try:
            number = parse_number(text)
        except ValueError:
            reason = f"{self.label} must be a number, got {text.strip()!r}"
            mark_invalid(self, reason)
            self.parse_failed.emit(reason)
            return
        mark_invalid(self, None)
        self.value_edited.emit(number)
