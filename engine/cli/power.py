"""``power``: analytic power, MDES and units needed for cluster-randomised and multisite trials."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.errors import UserInputError


def register(subparsers) -> None:
    """Add the ``power`` subcommand."""
    from engine.power.analytic import DESIGNS

    parser = subparsers.add_parser(
        "power",
        help="analytic power and minimum detectable effect size of a trial (PowerUp! formulas)",
        description="Analytic power for balanced cluster-randomised (crt2, crt3, crt4) and multisite "
        "(msrt2, msrt3) trials, as PowerUp! computes it (noncentral t, two-sided). Either the textbook "
        "form, e.g. 'power crt2 --clusters 20 --per-cluster 25 --icc 0.15 --effect 0.3', or a design: "
        "'power --preset cluster_trial' / 'power --design FILE.json [--units LEVEL=N]'. Effects are in sd "
        "units of the outcome.",
    )
    parser.add_argument("kind", nargs="?", choices=DESIGNS, help="textbook design")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help="plan the treatment effect of a built-in design")
    source.add_argument("--design", metavar="FILE.json", help="plan the treatment effect of a saved design")
    parser.add_argument("--units", metavar="LEVEL=N", action="append", default=[],
                        help="with --preset/--design: units per parent at a level (repeatable)")
    parser.add_argument("--clusters", type=int, help="top-level units: clusters (crt) or sites (msrt)")
    parser.add_argument("--per-cluster", metavar="N[xN...]",
                        help="units per cluster at each lower level, top down, ending with individuals: "
                        "'25' (2 levels), '4x20' (3 levels: 4 per cluster, 20 in each)")
    parser.add_argument("--icc", type=float, help="ICC of the level above the individuals (2-level designs)")
    for level in (2, 3, 4):
        parser.add_argument(f"--icc-{level}", type=float, help=f"share of variance at level {level}")
    for level in (1, 2, 3, 4):
        parser.add_argument(f"--r2-{level}", type=float, default=0.0,
                            help=f"share of level-{level} variance explained by covariates")
    for level in (2, 3, 4):
        parser.add_argument(f"--covariates-{level}", type=int, default=0,
                            help=f"number of level-{level} covariates (those at the top level cost df)")
    parser.add_argument("--effect", type=float, help="effect size in sd units (for power and units needed)")
    parser.add_argument("--treated-share", type=float, default=0.5, help="share of units treated (default 0.5)")
    parser.add_argument("--omega", type=float, default=0.0,
                        help="multisite: variance of the effect across sites over the sites' intercept variance")
    parser.add_argument("--r2-effect", type=float, default=0.0,
                        help="multisite: share of the effect's variance across sites explained by site covariates")
    parser.add_argument("--treatment-level", type=int, choices=[1, 2],
                        help="msrt3: randomise level-2 units (2, default) or individuals (1) within sites")
    parser.add_argument("--alpha", type=float, default=0.05, help="two-sided significance level (default 0.05)")
    parser.add_argument("--target", type=float, default=0.8, help="target power (default 0.8)")
    parser.add_argument("--json", metavar="PATH", help="write {power, mdes, df, clusters_needed, ...} as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.power.analytic import answer, format_answer

    if args.json and Path(args.json).parent and not Path(args.json).parent.is_dir():
        raise UserInputError(f"--json {args.json}: the folder {Path(args.json).parent} does not exist")
    if args.kind and (args.preset or args.design):
        raise UserInputError(f"give either a textbook design ({args.kind}) or --preset/--design, not both")
    if args.kind:
        plan, notes = _textbook_plan(args), []
    elif args.preset or args.design:
        plan, notes = _design_plan(args)
    else:
        raise UserInputError("say what to plan: a textbook design (crt2, crt3, crt4, msrt2, msrt3) or "
                             "--preset NAME / --design FILE.json")
    result = answer(plan)
    result.notes = notes + result.notes
    print(format_answer(result))
    if args.json:
        payload = {"power": result.power, "mdes": result.mdes, "df": result.df,
                   "clusters_needed": result.clusters_needed, "standard_error": result.standard_error,
                   "plan": plan.to_dict(), "notes": result.notes}
        Path(args.json).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return 0


def _textbook_plan(args):
    from engine.power.analytic import LEVELS, TrialPlan

    kind = args.kind
    levels = LEVELS[kind]
    if args.clusters is None or args.per_cluster is None:
        raise UserInputError(f"{kind} needs --clusters and --per-cluster")
    lower = _parse_per_cluster(args.per_cluster)
    if len(lower) != levels - 1:
        example = "x".join(["4"] * (levels - 2) + ["20"])
        raise UserInputError(f"{kind} has {levels} levels: --per-cluster needs {levels - 1} count(s) joined by "
                             f"'x', e.g. {example}")
    icc_by_level = {2: args.icc_2, 3: args.icc_3, 4: args.icc_4}
    if args.icc is not None:
        if levels != 2:
            raise UserInputError(f"{kind} has {levels} levels: give --icc-2 ... --icc-{levels} instead of --icc")
        if args.icc_2 is not None and args.icc_2 != args.icc:
            raise UserInputError("--icc and --icc-2 disagree; give one")
        icc_by_level[2] = args.icc
    missing = [f"--icc-{lv}" for lv in range(levels, 1, -1) if icc_by_level[lv] is None]
    if missing:
        raise UserInputError(f"{kind} needs {' and '.join(missing)}" + (" (or --icc)" if levels == 2 else ""))
    extra = [f"--icc-{lv}" for lv in range(levels + 1, 5) if icc_by_level[lv] is not None]
    r2 = {1: args.r2_1, 2: args.r2_2, 3: args.r2_3, 4: args.r2_4}
    extra += [f"--r2-{lv}" for lv in range(levels + 1, 5) if r2[lv]]
    covariates = {2: args.covariates_2, 3: args.covariates_3, 4: args.covariates_4}
    extra += [f"--covariates-{lv}" for lv in range(2, 5) if covariates[lv] and lv != levels]
    if extra:
        raise UserInputError(f"{kind} has {levels} levels: {', '.join(extra)} do(es) not apply"
                             + (" (only top-level covariates change the test's df)" if any("cov" in e for e in extra)
                                else ""))
    return TrialPlan(kind, [args.clusters, *lower], [icc_by_level[lv] for lv in range(levels, 1, -1)],
                     effect=args.effect, treated_share=args.treated_share,
                     r2=[r2[lv] for lv in range(levels, 0, -1)], covariates_top=covariates[levels],
                     omega=args.omega, r2_effect=args.r2_effect, treatment_level=args.treatment_level,
                     alpha=args.alpha, target=args.target)


def _parse_per_cluster(text: str) -> list[int]:
    pieces = text.lower().replace("×", "x").split("x")
    try:
        counts = [int(piece) for piece in pieces]
    except ValueError:
        raise UserInputError(f"--per-cluster {text!r}: write whole numbers joined by 'x', e.g. 25 or 4x20") from None
    return counts


def _design_plan(args):
    from engine.cli._options import apply_units
    from engine.design import Design
    from engine.power.from_design import plan_from_design
    from engine.presets import get_preset

    textbook_only = [name for name in ("clusters", "per_cluster", "icc", "effect") if getattr(args, name) is not None]
    if textbook_only:
        flags = ", ".join("--" + name.replace("_", "-") for name in textbook_only)
        raise UserInputError(f"{flags}: the design sets these; change the design (or --units) instead")
    design = Design.load(args.design) if args.design else get_preset(args.preset)
    design = apply_units(design, args.units)
    return plan_from_design(design, alpha=args.alpha, target=args.target)
