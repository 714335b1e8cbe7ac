"""Monte Carlo and sample-size studies: does more data help?

Simulate a design many times, fit one or more models to every replication and summarise how
well each recovers the truth (bias, empirical SD against the mean SE, RMSE, CI coverage, power,
failed and boundary fits), optionally as a design value is swept. Plain Python: a Qt worker
drives :func:`run_study` through its ``progress`` and ``should_stop`` callables.
"""

from engine.montecarlo.replicate import RECORD_COLUMNS, run_replications
from engine.montecarlo.runner import StudyResult, run_study, write_records
from engine.montecarlo.study import Study, Sweep, replication_seed
from engine.montecarlo.summary import SummaryRow, format_summary, summarise_records, summary_frame

__all__ = [
    "RECORD_COLUMNS", "Study", "StudyResult", "SummaryRow", "Sweep", "format_summary", "replication_seed",
    "run_replications", "run_study", "summarise_records", "summary_frame", "write_records",
]
