"""The strip above the tabs that shows the last error, in the engine's own words."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton


class ErrorBar(QFrame):
    """A dismissible strip above the tabs with the last error, in the engine's words."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setStyleSheet("ErrorBar { background: #f2dede; border: 1px solid #ebccd1; border-radius: 3px; }"
                           "QLabel { color: #a94442; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("Dismiss")
        close.setToolTip("Hide this message.")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_error(self, message: str) -> None:
        self.label.setText(message)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""
