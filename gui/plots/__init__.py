"""pyqtgraph plots of a fit: each plot in its own module, all built on ``PlotPanel``."""
