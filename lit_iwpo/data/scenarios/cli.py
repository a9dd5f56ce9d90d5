"""``lit_iwpo scenario ...``: list the embedded scenarios or write one to disk.

    lit_iwpo scenario list
    lit_iwpo scenario write NAME --out DIR [--seed S] [--n-train N] [--n-val N] [--n-test N]
                                 [--severity X] [--shift T] [--holdout paraphrase|topic]
                                 [--format jsonl|parquet]
    lit_iwpo scenario from-dataset {saferlhf,shp,cali} --out DIR [--path HUB_ID_OR_BUILDER]
                                 [--data-files FILE ...] [--seed S] [--n-train N] [--n-val N] [--n-test N]
                                 [--severity X] [--format jsonl|parquet]

    lit_iwpo scenario judge-agreement FILE.jsonl [FILE.jsonl ...] [--scenario NAME]

``judge-agreement`` reports how often the scenario's oracle agrees with hand labels on pairs of generations
(:mod:`~lit_iwpo.data.scenarios.agreement`; the shipped sets are in ``tests/fixtures/generations/``: the
tuning set the rules were written against, and ``heldout/``, which they never were).

``from-dataset`` builds the paper's scenario from the real data (PKU-SafeRLHF, SHP, CALI): from the
hub by default, or offline with ``--path json --data-files rows.jsonl`` (``--path csv`` for CALI's TSV).

The main command calls ``scenario_main(sys.argv[2:])``.
"""

from __future__ import annotations

import argparse
import sys

from lit_iwpo.data.scenarios.adapters import load_cali, load_saferlhf, load_shp
from lit_iwpo.data.scenarios.agreement import agreement, read_labelled, report
from lit_iwpo.data.scenarios.engine import HOLDOUTS
from lit_iwpo.data.scenarios.io import FORMATS, write_scenario
from lit_iwpo.data.scenarios.registry import MATERIALS, SCENARIOS, build_scenario
from lit_iwpo.data.scenarios.splits import DEFAULT_SIZES, SHIFT_NAMES


LOADERS = {"saferlhf": load_saferlhf, "shp": load_shp, "cali": load_cali}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lit_iwpo scenario", description="Embedded preference scenarios under deployment distribution shift."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list scenarios and shift types")
    write = sub.add_parser("write", help="write train/val/test files and meta.json")
    write.add_argument("name", choices=sorted(SCENARIOS))
    write.add_argument("--out", required=True, help="output directory (created if missing)")
    write.add_argument("--seed", type=int, default=0)
    write.add_argument("--n-train", type=int, default=DEFAULT_SIZES["train"])
    write.add_argument("--n-val", type=int, default=DEFAULT_SIZES["val"])
    write.add_argument("--n-test", type=int, default=DEFAULT_SIZES["test"])
    write.add_argument("--severity", type=float, default=None, help="share of irrelevant training pairs (0..1)")
    write.add_argument(
        "--shift", choices=sorted(SHIFT_NAMES), default=None, help="shift type a-h (default: the scenario's)"
    )
    write.add_argument("--holdout", choices=HOLDOUTS, default="paraphrase")
    write.add_argument("--format", choices=FORMATS, default="jsonl", dest="fmt")
    agree = sub.add_parser("judge-agreement", help="the oracle's agreement with hand-labelled generation pairs")
    agree.add_argument("files", nargs="+", help="labelled JSONL files (id, prompt, policy, baseline, expected)")
    agree.add_argument("--scenario", choices=sorted(SCENARIOS), default=None,
                       help="the oracle to use (default: from each row id's prefix)")
    real = sub.add_parser("from-dataset", help="build a scenario from a real dataset (hub or local files)")
    real.add_argument("dataset", choices=sorted(LOADERS))
    real.add_argument("--out", required=True, help="output directory (created if missing)")
    real.add_argument("--path", default=None, help="hub id or datasets builder (json, csv); default: the hub id")
    real.add_argument("--data-files", nargs="+", default=None, help="local files for --path json/csv")
    real.add_argument("--seed", type=int, default=0)
    real.add_argument("--n-train", type=int, default=DEFAULT_SIZES["train"])
    real.add_argument("--n-val", type=int, default=DEFAULT_SIZES["val"])
    real.add_argument("--n-test", type=int, default=DEFAULT_SIZES["test"])
    real.add_argument("--severity", type=float, default=None)
    real.add_argument("--format", choices=FORMATS, default="jsonl", dest="fmt")
    return parser


def _from_dataset(args: argparse.Namespace):
    loader = LOADERS[args.dataset]
    kwargs = dict(seed=args.seed, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test, severity=args.severity)
    if args.dataset == "cali":  # a TSV (URL or local file), not a hub dataset
        source = args.data_files or args.path
        return loader(source, **kwargs) if source else loader(**kwargs)
    if args.path is not None:
        kwargs["path"] = args.path
    if args.data_files is not None:
        kwargs["data_files"] = args.data_files
    return loader(**kwargs)


def _list() -> None:
    for name, text in SCENARIOS.items():
        m = MATERIALS[name]
        print(f"{name}  (default shift {m.default_shift}, severity {m.default_severity})\n    {text}")
    print("shift types: " + "; ".join(f"{k} = {v}" for k, v in SHIFT_NAMES.items()))


def scenario_main(argv: list[str] | None = None) -> int:
    """Entry point of ``lit_iwpo scenario``; returns a process exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: argparse has already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if args.command == "list":
        _list()
        return 0
    if args.command == "judge-agreement":
        try:
            for path in args.files:
                print(report(path, agreement(read_labelled(path), args.scenario)))
        except (ValueError, OSError, KeyError) as err:
            print(f"lit_iwpo scenario judge-agreement: {err}", file=sys.stderr)
            return 2
        return 0
    try:
        if args.command == "from-dataset":
            splits = _from_dataset(args)
        else:
            splits = build_scenario(
                args.name, seed=args.seed, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                severity=args.severity, shift=args.shift, holdout=args.holdout,
            )  # fmt: skip
        paths = write_scenario(splits, args.out, fmt=args.fmt)
    except (ValueError, OSError) as err:
        print(f"lit_iwpo scenario {args.command}: {err}", file=sys.stderr)
        return 2
    meta = splits.meta
    print(
        f"wrote {splits.name} ("
        + (f"shift {meta['shift']}, severity {meta['severity']:.2f}, " if meta.get("severity") is not None else "")
        + f"seed {args.seed}): "
        + ", ".join(f"{k} {len(splits.split(k))}" for k in ("train", "val", "test"))
        + f" -> {paths['meta'].parent}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(scenario_main(sys.argv[1:]))
