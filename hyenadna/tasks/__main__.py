"""Rebuild the task suite's sets, or write the genome stretches of one split of a genome task.

``python -m hyenadna.tasks build [--out data/tasks] [TASK ...]``
``python -m hyenadna.tasks regions TASK --split train --out DIR`` (``DIR/<label>.<split>.fa``)
"""

from __future__ import annotations

import argparse
import json

from hyenadna.tasks import BUNDLED, TASKS, build_task, write_split_fasta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hyenadna.tasks", description=__doc__)
    parser.add_argument("command", choices=["build", "regions"])
    parser.add_argument("tasks", nargs="*", default=list(TASKS), help=f"tasks (default: all of {list(TASKS)})")
    parser.add_argument("--out", default=None, help="output folder (build: default data/tasks)")
    parser.add_argument("--split", default="train", choices=["train", "val", "test"], help="regions: the split")
    args = parser.parse_intermixed_args(argv)
    if args.command == "regions":
        if len(args.tasks) != 1 or args.out is None:
            parser.error("regions takes one task and --out")
        for label, path in write_split_fasta(args.tasks[0], args.split, args.out).items():
            print(json.dumps({"label": label, "split": args.split, "fasta": str(path)}))
        return
    args.out = args.out or str(BUNDLED / "tasks")
    for name in args.tasks:
        provenance = build_task(name, args.out)
        print(json.dumps({"task": name, "counts": provenance["counts"], "sha256": provenance["table_sha256"]}))


if __name__ == "__main__":
    main()
