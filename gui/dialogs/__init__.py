"""Dialogs: open data, joint tests, models side by side, the guide and About."""
