"""Qt table models over engine results, and table export (CSV, LaTeX, HTML)."""
