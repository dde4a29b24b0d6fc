"""Is a chr20 task's test region other sequence than its training region, and who pays for it?

    python benchmarks/composition_shift.py                  # the tables (seconds), from data/tasks and runs/tasks
    python benchmarks/composition_shift.py --write-matched runs/exp/splice_chr20_gc_matched.csv.gz   # that file only
    python benchmarks/composition_shift.py --write-matched runs/exp/splice_chr20_gc_sides.csv.gz \
        --match-parts 2 --match-bins 5                                    # each half matched
    python benchmarks/composition_shift.py --runs runs/gcm --splice-table runs/exp/splice_chr20_gc_matched.csv.gz \
        --table benchmarks/results/tasks/composition_shift_gc_matched.md     # runs trained on it

The chr20 tasks split by region: genes in the first 70% of the chromosome train, 70-90%
validate, the last 10% (20q13.3, gene-dense and GC-rich) test. This prints, per split and class,
how GC-rich the windows are, and for each fine-tuned method found in ``RUNS/<task>/<method>/seed*``
how often it calls a negative window (a splice decoy, a background window) positive in each GC
bin of the test split, and its test MCC within each bin. The predictions are the runs'
``test_predictions.tsv``: calibrated on the validation split where the run was (``hyenadna
calibrate`` rewrites them), so a shift that validation cannot see shows in them. A last table
splits splice windows in halves (a site's exon and intron sides): does a model read composition
by position, or the window's as a whole?

``--write-matched PATH`` writes ``splice_chr20`` with its training decoys replaced by decoys of
the training sites' GC histogram (GT decoys matched to donors, AG decoys to acceptors, 10 bins,
from a pool drawn as the task draws its decoys); validation and test stay as they are. Training
on it asks whether a model's decoy calls come from composition it learned where the training
mix allowed it. ``--match-parts 2`` matches each half's GC jointly (a site's exon and intron
sides) instead of the window's.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import statistics
from pathlib import Path

import numpy as np

from hyenadna.data.composition import gc_content, gc_matched, split_parts
from hyenadna.io.atomic import atomic_write, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
NEGATIVE = {"splice_chr20": "neither", "promoters_chr20": "background"}
EDGES = (0.0, 0.4, 0.5, 0.6, 1.0)
BIN_NAMES = ("< 0.40", "0.40-0.50", "0.50-0.60", ">= 0.60")
POOL_PER_SITE = 25
MATCH_BINS = 10


def read_task(task: str, tables: dict[str, Path]) -> list[dict]:
    """The task's rows, from ``tables[task]`` where given (``--splice-table``), else the bundled table."""
    with gzip.open(tables.get(task, ROOT / "data" / "tasks" / f"{task}.csv.gz"), "rt") as fh:
        return list(csv.DictReader(fh))


def gc_bin(seq: str) -> int:
    return min(int(np.searchsorted(EDGES, gc_content(seq), side="right")) - 1, len(BIN_NAMES) - 1)


def composition_table(tasks: list[str], tables: dict[str, Path]) -> str:
    lines = ["| task | split | class | windows | mean GC | GC >= 0.60 |", "|---|---|---|---:|---:|---:|"]
    for task in tasks:
        rows = read_task(task, tables)
        for split in ("train", "val", "test"):
            for label in sorted({r["label"] for r in rows}):
                gc = [gc_content(r["sequence"]) for r in rows if r["split"] == split and r["label"] == label]
                if not gc:
                    continue
                rich = sum(g >= 0.6 for g in gc) / len(gc)
                lines.append(f"| {task} | {split} | {label} | {len(gc):,} | {statistics.fmean(gc):.3f} | {rich:.1%} |")
    return "\n".join(lines)


def seed_runs(runs: Path, task: str, method: str) -> tuple[list[Path], str]:
    """The seeds' ``test_predictions.tsv`` of one method, and its name for a table (marked
    calibrated where every seed was)."""
    files = sorted((runs / task / method).glob("seed*/test_predictions.tsv"))
    metrics = [json.loads((f.parent / "metrics.json").read_text()) for f in files]
    calibrated = bool(metrics) and all("calibration" in m for m in metrics)
    return files, method + (" (calibrated)" if calibrated else "")


def mean_sd(values: list[float], fmt: str) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.fmean(values), fmt)} ± {format(sd, fmt)}"


def method_table(task: str, runs: Path, methods: list[str], tables: dict[str, Path]) -> str:
    """Per method: the negatives called positive in each GC bin, and the MCC within each bin,
    mean ± sd over the seeds found."""
    from sklearn.metrics import matthews_corrcoef

    test = {r["name"]: r for r in read_task(task, tables) if r["split"] == "test"}
    bins = {name: gc_bin(r["sequence"]) for name, r in test.items()}
    negative = NEGATIVE[task]
    lines = [f"**{task}**, test split: {negative} windows called another class, and MCC, by window GC", "",
             "| method | seeds | " + " | ".join(f"called, GC {b}" for b in BIN_NAMES) + " | "
             + " | ".join(f"MCC, GC {b}" for b in BIN_NAMES) + " |",
             "|---|---:|" + "---:|" * (2 * len(BIN_NAMES))]  # fmt: skip
    for method in methods:
        files, name = seed_runs(runs, task, method)
        if not files:
            continue
        called: list[list[float]] = [[] for _ in BIN_NAMES]
        mcc: list[list[float]] = [[] for _ in BIN_NAMES]
        for path in files:
            with path.open() as fh:
                predictions = list(csv.DictReader(fh, delimiter="\t"))
            for b in range(len(BIN_NAMES)):
                in_bin = [p for p in predictions if bins[p["name"]] == b]
                negatives = [p for p in in_bin if p["label"] == negative]
                if negatives:
                    called[b].append(sum(p["predicted"] != negative for p in negatives) / len(negatives))
                if len({p["label"] for p in in_bin}) > 1:
                    mcc[b].append(matthews_corrcoef([p["label"] for p in in_bin], [p["predicted"] for p in in_bin]))
        cells = [mean_sd(v, ".1%") if v else "" for v in called] + [mean_sd(v, ".3f") if v else "" for v in mcc]
        lines.append(f"| {name} | {len(files)} | " + " | ".join(cells) + " |")
    if len(lines) == 4:
        return ""  # no run of any method here
    counts = [sum(b == i and test[n]["label"] == negative for n, b in bins.items()) for i in range(len(BIN_NAMES))]
    windows = [sum(b == i for b in bins.values()) for i in range(len(BIN_NAMES))]
    lines.append("| (windows in the bin) | | " + " | ".join(f"{c:,}" for c in counts + windows) + " |")
    return "\n".join(lines)


SIDES = ("neither", "left only", "right only", "both")


def side_of(seq: str) -> str:
    """Which halves of a window are GC-rich (GC >= 0.60): the left (a donor's exon side, an
    acceptor's intron side), the right, both or neither."""
    left, right = split_parts(seq, 2)
    return SIDES[int(gc_content(left) >= 0.6) + 2 * int(gc_content(right) >= 0.6)]


def side_table(task: str, runs: Path, methods: list[str], tables: dict[str, Path]) -> str:
    """Composition by position: each class's GC on the window's left and right halves per split,
    and for each method the test decoys called donor or acceptor by which half is GC-rich. A model
    that read the exon side's composition would call left-rich decoys donors and right-rich ones
    acceptors; one that read the window's composition calls both alike."""
    rows = read_task(task, tables)
    lines = [f"**{task}**, GC of the window's halves (left: bases before the centre)", "",
             "| split | class | left GC | right GC | left - right |", "|---|---|---:|---:|---:|"]  # fmt: skip
    for split in ("train", "val", "test"):
        for label in sorted({r["label"] for r in rows}):
            seqs = [r["sequence"] for r in rows if r["split"] == split and r["label"] == label]
            if not seqs:
                continue
            left, right = (statistics.fmean(gc_content(split_parts(s, 2)[i]) for s in seqs) for i in (0, 1))
            lines.append(f"| {split} | {label} | {left:.3f} | {right:.3f} | {left - right:+.3f} |")
    negative = NEGATIVE[task]
    test = {r["name"]: side_of(r["sequence"]) for r in rows if r["split"] == "test" and r["label"] == negative}
    title = (f"Test {negative} windows called donor / acceptor, by which half is GC-rich (>= 0.60), mean over "
             "seeds; in brackets donor and acceptor together, mean ± sd")  # fmt: skip
    header = ["", title, "",
              "| method | " + " | ".join(f"{s} ({sum(v == s for v in test.values()):,})" for s in SIDES) + " |",
              "|---|" + "---:|" * len(SIDES)]  # fmt: skip
    body = []
    for method in methods:
        files, name = seed_runs(runs, task, method)
        if not files:
            continue
        calls = {s: {"donor": [], "acceptor": [], "site": []} for s in SIDES}
        for path in files:
            with path.open() as fh:
                predictions = [p for p in csv.DictReader(fh, delimiter="\t") if p["name"] in test]
            if {p["name"] for p in predictions} != set(test):
                raise SystemExit(f"{path} does not predict the test {negative} windows of the table read")
            for s in SIDES:
                in_side = [p["predicted"] for p in predictions if test[p["name"]] == s]
                for label in ("donor", "acceptor"):
                    calls[s][label].append(in_side.count(label) / len(in_side))
                calls[s]["site"].append(calls[s]["donor"][-1] + calls[s]["acceptor"][-1])
        cells = [f"{statistics.fmean(calls[s]['donor']):.1%} / {statistics.fmean(calls[s]['acceptor']):.1%} "
                 f"({mean_sd(calls[s]['site'], '.1%')})" for s in SIDES if calls[s]["site"]]  # fmt: skip
        body.append(f"| {name} ({len(files)} seeds) | " + " | ".join(cells) + " |")
    return "\n".join(lines + (header + body if body else []))


def write_matched_splice(path: Path, seed: int = 1, bins: int = MATCH_BINS, parts: int = 1) -> dict[str, int]:
    """splice_chr20 with GC-matched training decoys (see the module docstring; ``parts=2`` matches
    each half's GC jointly, ``bins`` per half); returns counts."""
    from hyenadna.data.genome import Genome
    from hyenadna.tasks import CHR20, spliceai_wheel
    from hyenadna.tasks.annotation import RegionSplit, read_spliceai_annotation
    from hyenadna.tasks.builders import splice_decoy_pool

    rows = read_task("splice_chr20", {})  # the task as built
    train = [r for r in rows if r["split"] == "train" and r["label"] != "neither"]
    genome = Genome(CHR20)
    genes = read_spliceai_annotation(spliceai_wheel(), chrom="20")
    regions = RegionSplit.by_fraction(genome.length("20"), 0.2, 0.1)
    pool = splice_decoy_pool(genome, genes, regions, "train", POOL_PER_SITE * len(train), seed=seed)
    decoys = []
    for kind, label in (("GT", "donor"), ("AG", "acceptor")):
        candidates = [d for d in pool if d.name.endswith(f":{kind}")]
        sites = [r["sequence"] for r in train if r["label"] == label]
        n = sum(r["split"] == "train" and r["name"].endswith(f":{kind}") for r in rows)
        for i in gc_matched([c.sequence for c in candidates], sites, n=n, bins=bins, seed=seed, parts=parts):
            c = candidates[i]
            decoys.append({"name": c.name, "sequence": c.sequence, "label": c.label, "split": c.split})
    kept = train + decoys + [r for r in rows if r["split"] != "train"]

    def write(tmp: str) -> None:
        with gzip.open(tmp, "wt", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["name", "sequence", "label", "split"])
            writer.writeheader()
            writer.writerows(kept)

    atomic_write(path, write)
    return {"train_sites": len(train), "train_decoys": len(decoys), "pool": len(pool), "rows": len(kept)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(ROOT / "runs/tasks"), help="the suite's run folders")
    parser.add_argument("--methods", nargs="+", default=["cnn-tuned", "hyena-tuned"])
    parser.add_argument("--table", default=str(ROOT / "benchmarks/results/tasks/composition_shift.md"))
    parser.add_argument("--splice-table", help="the splice_chr20 table the runs trained on (default: the task's)")
    parser.add_argument("--write-matched", help="only write splice_chr20 with GC-matched training decoys here")
    parser.add_argument("--match-parts", type=int, default=1, help="2: match each half's GC (the sites' two sides)")
    parser.add_argument("--match-bins", type=int, default=MATCH_BINS, help="GC bins (per part) of the match")
    args = parser.parse_args()
    if args.write_matched:
        if Path(args.write_matched).resolve() == (ROOT / "data" / "tasks" / "splice_chr20.csv.gz").resolve():
            parser.error(f"--write-matched {args.write_matched} is the task table it reads; write elsewhere")
        counts = write_matched_splice(Path(args.write_matched), bins=args.match_bins, parts=args.match_parts)
        print(json.dumps(counts, indent=2))
        return
    tables = {"splice_chr20": Path(args.splice_table)} if args.splice_table else {}
    read = [ROOT / "data" / "tasks" / f"{t}.csv.gz" for t in (*NEGATIVE, "elements_chr20")] + list(tables.values())
    if any(Path(args.table).resolve() == path.resolve() for path in read):
        parser.error(f"--table {args.table} is a task table it reads; write elsewhere")
    parts = [composition_table([*NEGATIVE, "elements_chr20"], tables)]
    parts += [method_table(task, Path(args.runs), args.methods, tables) for task in NEGATIVE]
    parts.append(side_table("splice_chr20", Path(args.runs), args.methods, tables))
    text = "\n\n".join(part for part in parts if part) + "\n"
    print(text)
    atomic_write_text(args.table, text)


if __name__ == "__main__":
    main()
