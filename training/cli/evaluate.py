"""`python -m training evaluate`: hold out watches, train on the rest, score the posterior.

The fitted posterior is published like any other version (so it becomes `latest`), with
the evaluation report and plots stored beside it under `evaluation/`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from common.jsonable import jsonable
from training.cli.data_flags import load_from_args
from training.cli.gate_flags import thresholds_from_args
from training.cli.train import add_train_arguments, configure, settings_from_args, user_errors
from training.run.gate import PUBLISH_REFUSED_EXIT_CODE, PublishRefused

__all__ = [
    "REPORT_FILE",
    "add_evaluate",
    "cmd_evaluate",
]

REPORT_FILE = "evaluation/report.json"


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="train on a hold-out split and score the posterior against held-out watches",
        description="Hold out a share of each user's watches (seeded), train on the rest with "
        "any preset, then report HR@10, Recall@20 and NDCG@10 for four rankers, calibration "
        "(reliability diagram, Brier score) and pick entropy against history.",
    )
    add_train_arguments(p)
    p.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        help="share of each user's watches held out, at least one (default 0.2)",
    )
    p.add_argument(
        "--split",
        choices=("random", "latest"),
        default="random",
        help="hold out random watches, or each user's latest (needs timestamps; default random)",
    )
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    run = settings_from_args(args)
    try:
        config = configure(args)
        thresholds = thresholds_from_args(args)
        from training.evaluation import evaluate_posterior, holdout_split
        from training.evaluation.plots import evaluation_pngs
        from training.evaluation.split import describe_ties

        data = load_from_args(config.data, run, args)
        split = holdout_split(data, fraction=args.holdout, strategy=args.split, seed=config.seed)
        tie_warning = describe_ties(split.ties, scored_users=int(split.scored_users.size))
        if tie_warning:
            print(f"warning: {tie_warning}", file=sys.stderr)
        reports: list[dict[str, Any]] = []

        def evaluation_files(result) -> dict[str, bytes]:
            evaluation = evaluate_posterior(result.samples, split, full=data, seed=config.seed)
            report = jsonable(evaluation.report)  # JSON has no NaN: undefined figures are null
            report["split"].update(
                {"strategy": args.split, "fraction": args.holdout, "seed": config.seed}
            )
            if split.ties is not None:
                report["split"]["ties"] = split.ties
            report["data"] = data.source
            reports.append(report)
            return {**evaluation_pngs(evaluation), REPORT_FILE: json.dumps(report).encode()}

        from training.run.fit import fit_and_publish

        version, _ = fit_and_publish(
            run, config, split.train, thresholds=thresholds, extra_files=evaluation_files
        )
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except PublishRefused as e:
        print(f"error: {e}", file=sys.stderr)
        return PUBLISH_REFUSED_EXIT_CODE
    if version is None or not reports:
        print("stopped early or not process 0: nothing was evaluated", file=sys.stderr)
        return 0
    report = {**reports[0], "version": version}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"published version {version} with its evaluation to {run.store}")
    print(f"{'ranker':<16}{'HR@10':>8}{'Recall@20':>11}{'NDCG@10':>9}")
    for name, m in report["rankers"].items():
        print(f"{name:<16}{m['hr@10']:>8.3f}{m['recall@20']:>11.3f}{m['ndcg@10']:>9.3f}")
    cal, unc = report["calibration"], report["uncertainty"]
    print(f"Brier score {cal['brier']:.4f} on {cal['pairs']} held-out pairs")
    print(
        f"pick entropy vs watch count: Spearman {unc['spearman_entropy_vs_watch_count']:.3f} "
        f"(lightest quartile {unc['mean_entropy_bits_lightest_quartile']:.2f} bits, "
        f"heaviest {unc['mean_entropy_bits_heaviest_quartile']:.2f} bits)"
    )
    return 0
