"""``compare``: fit OLS, fixed effects, random effects and mixed models side by side, against the truth.

Examples::

    main.py compare --preset tutoring --seed 1
    main.py compare data.csv --model "perform tutoring" --estimator ols \\
        --estimator "fe student_id" --estimator "mixed || school_id: || student_id:, reml"
"""

from __future__ import annotations

import argparse

from engine.errors import UserInputError


def register(subparsers) -> None:
    """Add the ``compare`` subcommand."""
    from engine.presets import PRESETS

    parser = subparsers.add_parser(
        "compare", help="fit several estimators side by side and compare them with the truth",
        description="Fit OLS, fixed-effects, random-effects and mixed models to the same outcome and "
                    "predictors and print the treatment coefficient, its SE, whether its 95% CI covers "
                    "the truth, the variance components and the fit times side by side. Data come from "
                    "a file (with --model) or are simulated from a preset. Examples: "
                    "'compare --preset tutoring --seed 1'; "
                    "'compare data.csv --model \"perform tutoring\" --estimator ols --estimator \"fe student_id\" "
                    "--estimator \"mixed || school_id: || student_id:, reml\"'.")
    parser.add_argument("data", nargs="?", help="data file (.csv, .dta, .sav, .xlsx, .parquet); "
                        "or use --preset")
    parser.add_argument("--preset", help=f"simulate from a built-in design instead: {', '.join(PRESETS)}")
    parser.add_argument("--units", metavar="LEVEL=N", action="append", default=[],
                        help="with --preset: fixed number of units per parent at a level (repeatable)")
    parser.add_argument("--seed", type=int, default=None, help="with --preset: random seed (default: a fresh one)")
    parser.add_argument("--model", help="outcome and predictors, outcome first, e.g. \"perform tutoring\" "
                        "(with --preset the design's outcome, treatment and covariates by default)")
    parser.add_argument("--estimator", action="append", default=[], metavar="SPEC",
                        help="repeatable: 'ols', 'fe GROUP', 're GROUP' (optionally ', vce(robust)' or "
                             "', vce(cluster COLUMN)'), 'mixed || LEVEL: [|| LEVEL: ...] [, reml|ml]'; for binary "
                             "and count outcomes 'logit', 'probit', 'poisson' or 'melogit || LEVEL: [...]' (also "
                             "meprobit, mepoisson; ML, Laplace unless intpoints(n)), 'xtlogit GROUP, re' (also xtprobit, "
                             "xtpoisson: one level, 12-point quadrature; ', fe' is not offered). "
                             "Default with --preset (or data carrying its design): ols, fe and re at the "
                             "bottom level, mixed with the bottom level, mixed with all levels by REML and ML; when "
                             "something is crossed (units move, crossed factors), also the nested model without "
                             "the level units move between and the crossed model (_all: R.x), and a line per "
                             "nested fit says where it put the crossed factor's variance. A binary or count design "
                             "gets their counterparts, compared with the truth on the latent scale: logit (probit, "
                             "poisson), melogit with the bottom level, melogit with all levels (and the nested and "
                             "crossed melogit models when something is crossed); linear estimators asked for on such "
                             "data get no truth cells (they estimate on the probability or count scale)")
    parser.add_argument("--dfmethod", metavar="NAME",
                        help="t tests of the mixed models with small-sample df (Stata's dfmethod()): residual, repeated, "
                             "anova, satterthwaite or kroger (the last two need REML: the default mixed models are "
                             "then fitted by REML); adds the t, df and p rows to the table")
    parser.add_argument("--treatment", help="the coefficient to follow (default: the first predictor)")
    parser.add_argument("--reports", action="store_true", help="also print each estimator's full report")
    parser.add_argument("--json", metavar="PATH", help="also write the comparison as JSON ('-' for standard output)")
    parser.add_argument("--quiet", action="store_true", help="print no table (with --json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load or simulate the data, fit the estimators, print the table and write the JSON."""
    from engine.cli.fit import write_json
    from engine.compare import compare, default_estimators, design_model, format_comparison
    from engine.estimators import parse_estimator, parse_model_terms
    from engine.report import format_fit_report

    from engine.cli._options import check_outputs, check_seed

    check_seed(args.seed)
    check_outputs([("--json", args.json)], [("DATA", args.data)])
    estimators = [parse_estimator(text) for text in args.estimator]
    frame, truth, design = load_or_simulate(args)
    if args.model:
        outcome, predictors = parse_model_terms(args.model)
    elif design is not None:
        outcome, predictors = design_model(design)
    else:
        raise UserInputError("give the outcome and predictors with --model, e.g. --model \"perform tutoring\"")
    if not estimators:
        if design is None:
            raise UserInputError("give the estimators with --estimator, e.g. --estimator ols "
                                 "--estimator \"fe student_id\" --estimator \"mixed || student_id:\"")
        estimators = default_estimators(design)
        if args.dfmethod:
            estimators = reml_defaults(estimators, args.dfmethod)

    comparison = compare(frame, outcome, predictors, estimators, truth=truth, treatment=args.treatment,
                         dfmethod=args.dfmethod)
    if not args.quiet:
        print(format_comparison(comparison))
        if args.reports:
            for number, result in enumerate(comparison.estimators, start=1):
                print(f"===== ({number}) {result.name} " + "=" * max(0, 60 - len(result.name)))
                print(format_fit_report(result))
    if args.json:
        write_json(comparison.to_dict(), args.json)
    return 0


def reml_defaults(estimators: list, dfmethod: str) -> list:
    """The default estimators for a df method that needs REML (satterthwaite, kroger): the mixed
    models fitted by REML (one copy of each), with a note saying so."""
    import sys

    from engine.estimators import parse_estimator
    from engine.mixed.ddf import REML_ONLY_DF_METHODS
    from engine.model_spec import parse_dfmethod

    method = parse_dfmethod(dfmethod)
    if method not in REML_ONLY_DF_METHODS:
        return estimators
    changed, texts = [], []
    for spec in estimators:
        # Binary and count models (melogit ...) are fitted by ML and report z tests: left as they are.
        if spec.estimator == "mixed" and not spec.is_glmm and spec.method != "REML":
            head = spec.random_part.split(",")[0].strip()
            spec = parse_estimator(f"mixed {head}, reml")
        if spec.text not in texts:
            texts.append(spec.text)
            changed.append(spec)
    if [spec.text for spec in changed] != [spec.text for spec in estimators]:
        print(f"note: dfmethod({method}) needs REML, so the default mixed models are fitted by REML", file=sys.stderr)
    return changed


def load_or_simulate(args: argparse.Namespace):
    """The data frame, its truth and its design (each None when unknown) from DATA or --preset.

    Returns
    -------
    frame : pandas.DataFrame
    truth : Truth or None
    design : Design or None
        The preset, or the design stored with the truth of a simulated data file.
    """
    from engine.cli._options import apply_units
    from engine.presets import get_preset
    from engine.simulate import simulate

    if args.data and args.preset:
        raise UserInputError("give a data file or --preset, not both")
    if args.data:
        if args.units or args.seed is not None:
            raise UserInputError("--units and --seed are for --preset; a data file is used as it is")
        from engine.data_io import read_data

        dataset = read_data(args.data)
        truth = dataset.truth
        design = truth.source_design() if truth is not None else None
        return dataset.frame, truth, design
    if not args.preset:
        raise UserInputError("give a data file (with --model) or --preset NAME, e.g. --preset tutoring")
    design = apply_units(get_preset(args.preset), args.units)
    data = simulate(design, args.seed)
    return data.frame, data.truth, data.design
