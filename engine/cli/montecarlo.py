"""``montecarlo``: simulate a design many times, fit models to every replication, summarise.

Example: ``montecarlo --preset tutoring --models "perform tutoring || dist_id: || school_id: ||
teach_id: || student_id:, reml" --reps 500 --sweep dist_id=5,10,20 --json summary.json``.
"""

from __future__ import annotations

import argparse
import sys
import time

from engine.errors import UserInputError


def register(subparsers) -> None:
    """Add the ``montecarlo`` subcommand."""
    from engine.presets import PRESETS

    parser = subparsers.add_parser(
        "montecarlo",
        help="Monte Carlo study: bias, SE, coverage and power of models over many simulated data sets",
        description="Simulate a design REPS times (at each sweep value), fit every model to each replication and "
        "print, per model and parameter: truth, mean estimate, bias, empirical SD, mean SE, RMSE, coverage of the "
        "95% CI and power at 5% (fixed effects; --alpha sets the level), the share of failed and boundary fits, "
        "with Monte Carlo standard errors of bias and coverage. Runs on all local cores, or on a Dask cluster "
        "with --scheduler. Results "
        "depend only on the study and --seed, not on the number of workers.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help=f"built-in design: {', '.join(PRESETS)}")
    source.add_argument("--design", metavar="FILE.json", help="a design saved with 'simulate --save-design'")
    parser.add_argument("--units", metavar="LEVEL=N", action="append", default=[],
                        help="fixed number of units per parent at a level, e.g. dist_id=50 (repeatable)")
    source.add_argument("--from-fit", metavar="FIT.json",
                        help="plan the next study from a fit written by 'fit --json': its levels, sds, unit counts "
                        "and fixed effects become the design, its model the default --models")
    parser.add_argument("--models", metavar="MODEL", action="append",
                        help="a model to fit to every replication (repeatable): Stata mixed syntax, e.g. "
                        "\"perform tutoring || dist_id: || school_id:, reml\"; or an estimator string "
                        "(ols, 'fe student_id', 're student_id', 'mixed || student_id:, reml') fitted to the "
                        "design's outcome, treatment and covariates")
    parser.add_argument("--reps", type=int, required=True, help="replications (at each sweep value)")
    parser.add_argument("--sweep", metavar="SPEC",
                        help="vary one design value: LEVEL=5,10,20 (units per parent), sd:LEVEL=0,1,3 "
                        "(random-intercept sd; sd:Residual for the residual) or effect:VARIABLE=0,0.5,1")
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: a fresh one, printed)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="coverage of (1 - ALPHA) intervals and power of tests at level ALPHA (default 0.05)")
    parser.add_argument("--workers", type=int, default=None, help="local worker processes (default: all cores)")
    parser.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument("--json", metavar="PATH", help="write the summary as JSON ('-' for standard output)")
    parser.add_argument("--records", metavar="PATH",
                        help="write every estimate (one row per replication, model and parameter): .csv or .parquet")
    parser.add_argument("--quiet", action="store_true", help="print no table and no progress")
    parser.add_argument("--dfmethod", metavar="NAME",
                        help="t tests and intervals of every mixed model with denominator df (Stata's dfmethod()): "
                        "residual, repeated, anova, satterthwaite or kroger (the last two need reml in the model); "
                        "default: each model's own, z unless its text says dfmethod(...)")
    parser.add_argument("--data", metavar="FILE",
                        help="with --from-fit: the fitted data, to learn each covariate's level and distribution")
    parser.add_argument("--treatment", metavar="NAME",
                        help="with --from-fit: the fixed effect to simulate as a randomised 0/1 treatment")
    parser.add_argument("--treatment-level", metavar="LEVEL",
                        help="with --from-fit: the level whose units are randomised (default: where the treatment "
                        "varies in --data, else the top level)")
    parser.add_argument("--group-sizes", choices=("average", "observed"), default=None,
                        help="with --from-fit: units per parent below the top level as the data's average "
                        "(balanced; the default) or drawn from the data's own group sizes (observed; needs --data)")
    parser.add_argument("--precision", metavar="STAT=SE", action="append", default=[],
                        help="stop each sweep value once the Monte Carlo SE of STAT (power, coverage or bias; "
                        "STAT:PARAM for one parameter) is at most SE for every model and parameter concerned, "
                        "e.g. power=0.01 (repeatable; --reps is then the maximum)")
    parser.add_argument("--round-reps", type=int, default=None,
                        help="with --precision: replications per round between checks (default 100)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the study, run it with progress on stderr, print and write the summary."""
    import numpy as np

    from engine.cli.fit import write_json
    from engine.cli._options import apply_units, check_outputs, check_seed
    from engine.design import Design
    from engine.montecarlo import Study, Sweep, format_summary, run_study
    from engine.montecarlo.runner import check_records_path, local_cores, probe_scheduler
    from engine.presets import get_preset
    from engine.montecarlo.study import single_group_notes

    check_seed(args.seed)
    check_outputs([("--json", args.json), ("--records", args.records)], [("--design", args.design)])
    if args.records:
        check_records_path(args.records)
    if args.scheduler is not None:
        probe_scheduler(args.scheduler)  # before the banner: a wrong address is one line
    if args.workers is not None and args.scheduler is None:
        if args.workers < 1:
            raise UserInputError(f"--workers {args.workers}: give a whole number >= 1")
        if args.workers > local_cores():
            print(f"note: --workers {args.workers} is more than the {local_cores()} core(s) here; "
                  f"using {local_cores()} (more processes would only compete for the cores)", file=sys.stderr)
            args.workers = local_cores()
    if args.from_fit:
        design, fitted_model = _design_from_fit(args)
        args.models = args.models or [fitted_model]
    else:
        if args.data or args.treatment or args.treatment_level or args.group_sizes:
            raise UserInputError("--data, --treatment, --treatment-level and --group-sizes apply only with --from-fit")
        design = apply_units(Design.load(args.design) if args.design else get_preset(args.preset), args.units)
    if not args.models:
        raise UserInputError("give at least one --models (with --from-fit, the fitted model is the default)")
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    study = Study(design=design, models=list(args.models), reps=args.reps, seed=seed,
                  sweep=Sweep.parse(args.sweep) if args.sweep else None, name=design.name, alpha=args.alpha)
    study.dfmethod = args.dfmethod
    study.precision = _stopping_rule(args)
    study.validate()
    show_progress = not args.quiet and sys.stderr.isatty()
    where = args.scheduler or (f"{args.workers} local worker(s)" if args.workers else "all local cores")
    if not args.quiet:
        most = "at most " if study.precision is not None else ""
        print(f"{most}{study.total_replications} replications x {len(study.models)} model(s), seed {seed}, on {where}"
              + (f", dfmethod({study.dfmethod})" if study.dfmethod else ""), file=sys.stderr)
    result = run_study(study, workers=args.workers, scheduler=args.scheduler,
                       progress=_progress_printer(time.perf_counter()) if show_progress else None)
    if show_progress:
        print(file=sys.stderr)
    if result.interrupted:
        where = " ".join(f"{option} {path}" for option, path in (("--json", args.json), ("--records", args.records))
                         if path)
        print(f"note: interrupted: the study stopped after {result.completed} of {result.total} replications"
              + (f"; the summary and {where} hold those" if where else "; the summary covers those"),
              file=sys.stderr)
    analytic = _analytic_beside_simulated(study, result)
    if not args.quiet:
        print(format_summary(result.summary, study.sweep.label if study.sweep else None))
        if study.alpha != 0.05:
            print(f"\ncoverage of {_percent(1 - study.alpha)} intervals; power of tests at level {study.alpha:g}")
        if study.dfmethod:
            print(f"Mixed models' tests and intervals: dfmethod({study.dfmethod}) (t with its df)")
        if study.precision is not None:
            print("\n" + result.format_stopping())
        if analytic["text"]:
            print("\n" + analytic["text"])
        print(f"\n{result.completed} replications in {result.seconds:.1f} s "
              f"({result.completed / max(result.seconds, 1e-9):.1f} per second, {result.workers} workers)")
        _report_failures(result.records)
        for note in single_group_notes(study):
            print(f"note: {note}", file=sys.stderr)
    if args.json:
        write_json({**result.to_dict(), "analytic_power": analytic["json"]}, args.json)
    if args.records:
        result.write_records(args.records)
    return 130 if result.interrupted else 0


def _percent(level: float) -> str:
    return f"{100 * level:.10g}%"


def _design_from_fit(args):
    """The design and model of a fit file (--from-fit), with --units as chosen balanced counts;
    what was assumed or dropped goes to stderr."""
    from engine.cli._options import parse_units
    from engine.power.from_fit import design_from_fit, load_fit

    fit = load_fit(args.from_fit)
    data = None
    if args.data:
        from engine.data_io import read_data

        data = read_data(args.data).frame
    units = dict(parse_units(text) for text in args.units)
    design, model, notes = design_from_fit(fit, data, treatment=args.treatment, treatment_level=args.treatment_level,
                                           units=units, name=f"from {args.from_fit}",
                                           group_sizes=args.group_sizes or "average")
    if not args.quiet:
        print(f"design from the fit in {args.from_fit}; model: {model}", file=sys.stderr)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    return design, model


def _stopping_rule(args):
    """The --precision targets as a stopping rule (None without them)."""
    from engine.montecarlo.precision import StoppingRule

    if not args.precision:
        if args.round_reps is not None:
            raise UserInputError("--round-reps applies only with --precision")
        return None
    return StoppingRule.parse(args.precision, args.round_reps)


def _analytic_beside_simulated(study, result) -> dict:
    """The textbook power of the treatment beside the simulated power, as text and JSON
    (JSON null when the design has no treatment)."""
    from engine.power.study_curve import analytic_power_curve, compare_power, format_comparison

    curve = analytic_power_curve(study)
    comparisons = compare_power(curve, result.summary)
    text = format_comparison(curve, comparisons, study.sweep.label if study.sweep else None, study.models)
    payload = None if curve is None else {**curve.to_dict(),
                                          "comparisons": [item.to_dict() for item in comparisons]}
    return {"text": text, "json": payload}


def _progress_printer(started: float):
    def show(done: int, total: int, _summary) -> None:
        print(f"\r{done}/{total} replications, {time.perf_counter() - started:.1f} s", end="", file=sys.stderr,
              flush=True)
    return show


def _report_failures(records) -> None:
    """Say how many fits of each model raised (with the first error) or did not converge."""
    fits = records.drop_duplicates(["model", "sweep_index", "rep"])
    for model, rows in fits.groupby("model", sort=False):
        errors = rows[rows["error"] != ""]
        if len(errors):
            print(f"note: {len(errors)} fit(s) of {model!r} raised an error; the first: {errors['error'].iloc[0]}",
                  file=sys.stderr)
        unconverged = int((~rows["converged"] & (rows["error"] == "")).sum())
        if unconverged:
            print(f"note: {unconverged} fit(s) of {model!r} did not converge; they count as failed",
                  file=sys.stderr)
