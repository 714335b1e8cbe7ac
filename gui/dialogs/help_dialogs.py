"""Help > Guide (a page read from resources/guide.html at run time) and Help > About."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

from engine import __version__

GUIDE_PATH = Path(__file__).resolve().parents[1] / "resources" / "guide.html"


def guide_html() -> str:
    try:
        return GUIDE_PATH.read_text(encoding="utf-8")
    except OSError:
        return f"<p>The guide could not be found at {GUIDE_PATH}; the installation may be incomplete.</p>"


class GuideDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("HLM Explorer guide")
        self.resize(720, 640)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setHtml(guide_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)


def about_text() -> str:
    return (f"<h3>HLM Explorer {__version__}</h3>"
            "<p>Design, simulate and fit hierarchical linear (multilevel) models: nested mixed models by REML "
            "or ML, pooled OLS, fixed and random effects, compared against the truth of simulated data.</p>"
            "<p>The same engine runs from the command line: <code>python main.py --help</code>.</p>")


def show_about(parent: QWidget | None) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, "About HLM Explorer", about_text(), parent=parent)
    box.setModal(False)
    box.show()
    return box
