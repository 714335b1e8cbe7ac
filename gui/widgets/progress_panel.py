"""The status-bar strip of a running job: what it does, a progress bar, the elapsed time and Cancel."""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

ELAPSED_REFRESH_MS = 100


class ProgressPanel(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.message_label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(180)
        self.bar.setTextVisible(False)
        self.elapsed_label = QLabel()
        self.elapsed_label.setToolTip("Time since the job started.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job (Esc). The data and results you have stay.")
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message_label)
        layout.addWidget(self.bar)
        layout.addWidget(self.elapsed_label)
        layout.addWidget(self.cancel_button)
        self._clock = QElapsedTimer()
        self._timer = QTimer(self, interval=ELAPSED_REFRESH_MS)
        self._timer.timeout.connect(self._show_elapsed)
        self.hide()

    def start(self, label: str) -> None:
        self.message_label.setText(f"{label}…")
        self.bar.setRange(0, 0)  # busy: most jobs cannot say how far they are
        self.cancel_button.setEnabled(True)
        self._clock.start()
        self._show_elapsed()
        self._timer.start()
        self.show()

    def update_progress(self, message: str, fraction: float | None) -> None:
        self.message_label.setText(message)
        if fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * max(0.0, min(1.0, fraction))))

    def cancelling(self) -> None:
        self.message_label.setText("Cancelling…")
        self.cancel_button.setEnabled(False)

    def stop(self) -> float:
        """Hide the strip; returns the seconds the job took."""
        self._timer.stop()
        self.hide()
        return self._clock.elapsed() / 1000 if self._clock.isValid() else 0.0

    def elapsed_seconds(self) -> float:
        return self._clock.elapsed() / 1000 if self._clock.isValid() else 0.0

    def _show_elapsed(self) -> None:
        self.elapsed_label.setText(f"{self._clock.elapsed() / 1000:.1f} s")
