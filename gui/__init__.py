"""HLM Explorer's Qt front end. Holds no statistics: it collects settings, runs the engine on a
worker thread and shows what comes back."""
