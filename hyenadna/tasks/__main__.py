"""``python -m hyenadna.tasks build [--out data/tasks] [TASK ...]``: rebuild the task suite's sets."""

from __future__ import annotations

import argparse
import json

from hyenadna.tasks import BUNDLED, TASKS, build_task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hyenadna.tasks", description=__doc__)
    parser.add_argument("command", choices=["build"])
    parser.add_argument("tasks", nargs="*", default=list(TASKS), help=f"tasks to build (default: all of {list(TASKS)})")
    parser.add_argument("--out", default=str(BUNDLED / "tasks"), help="output folder (default: data/tasks)")
    args = parser.parse_intermixed_args(argv)
    for name in args.tasks:
        provenance = build_task(name, args.out)
        print(json.dumps({"task": name, "counts": provenance["counts"], "sha256": provenance["table_sha256"]}))


if __name__ == "__main__":
    main()
