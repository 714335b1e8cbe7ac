"""HLM Explorer's Qt front end. Holds no statistics: it collects settings, runs the engine on a
worker thread and shows what comes back.

Where things are: the app shell at the top (``main_window``, ``launch``, ``session``,
``settings``, ``worker`` and ``jobs``); ``views/`` one view per tab and the panes inside them;
``tables/`` Qt table models over engine results and table export; ``plots/`` the plot panels;
``dialogs/``; ``widgets/`` small widgets the views share.
"""
