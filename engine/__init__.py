"""HLM Explorer's computational core: plain Python, no Qt."""

__version__ = "0.1.0"
