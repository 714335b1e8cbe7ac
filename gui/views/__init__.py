"""The window's tabs (one view each) and the panes inside them; no statistics."""
