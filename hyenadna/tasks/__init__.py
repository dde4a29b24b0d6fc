"""The task suite's labelled sets, built from real files installed on the machine.

``python -m hyenadna.tasks build --out data/tasks`` rebuilds every set from its sources (see
:data:`TASKS`) and writes, per task, ``<task>.csv.gz`` (columns name, sequence, label, split;
gzip without a timestamp, so a rebuild gives the same bytes), or for a task of genome positions
read at any context ``<task>.bed`` (name, label and split in columns 4, 7 and 8), and
``<task>.json``: the sources
with their sha256, the builder's parameters, the counts per split and label, and the sha256 of
the table. ``benchmarks/tasks.py`` fine-tunes on them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hyenadna.data.fasta import fasta_text
from hyenadna.data.files import file_sha256
from hyenadna.errors import HyenaDNAError
from hyenadna.io.atomic import atomic_write, atomic_write_text
from hyenadna.tasks.builders import RegionRow, TaskRow

CHR20 = "/usr/share/doc/vt/examples/ref/20.fa.gz"
RAGOUT = "/usr/share/doc/ragout/examples"
SPLICEAI_WHEEL_ENV = "HYENADNA_SPLICEAI_WHEEL"
TEST_DATA_CACHE = Path.home() / ".cache" / "hyenadna" / "test-data"
BUNDLED = Path(__file__).resolve().parents[2] / "data"


def spliceai_wheel() -> Path:
    """The spliceai 1.3.1 wheel: ``$HYENADNA_SPLICEAI_WHEEL`` or the test-data cache where
    ``.ci/install-test-data`` downloads it (``pip download --no-deps spliceai==1.3.1``)."""
    env = os.environ.get(SPLICEAI_WHEEL_ENV)
    path = Path(env) if env else TEST_DATA_CACHE / "spliceai-1.3.1-py2.py3-none-any.whl"
    if not path.is_file():
        raise HyenaDNAError(f"{path}: no spliceai wheel; run .ci/install-test-data or set ${SPLICEAI_WHEEL_ENV}")
    return path


@dataclass
class TaskSpec:
    """A task: its builder, what it reads, and how it is described."""

    description: str
    sources: Callable[[], dict[str, Path]]
    build: Callable[[dict[str, Path]], list[TaskRow] | list[RegionRow]]
    parameters: dict = field(default_factory=dict)
    stretches: Callable[[dict[str, Path], str], Iterator[tuple[str, str, str]]] | None = None
    """For tasks cut from whole genomes: ``(label, name, sequence)`` of every stretch in a split."""


BACTERIA = {
    "E_coli": "E.Coli/references/MG1655-K12.fasta.gz",
    "H_pylori": "H.Pylori/references/G27.fasta.gz",
    "S_aureus": "S.Aureus/references/COL.fasta.gz",
    "V_cholerae": "V.Cholerae/references/O1_Inaba.fasta.gz",
}
SPLICE_TRAIN_PER_LABEL = 2000
"""Training windows kept per class (of about 3,500 donors): what a 2-core CPU fine-tunes in minutes."""
TF_VAL, TF_TEST = ("chr11", "chr12"), ("chr8", "chr9", "chr10")


def _chr20_sources() -> dict[str, Path]:
    return {"genome": Path(CHR20), "annotation": spliceai_wheel()}


def _chr20_setup(sources: dict[str, Path]):
    from hyenadna.data.genome import Genome
    from hyenadna.tasks.annotation import RegionSplit, read_spliceai_annotation

    genome = Genome(sources["genome"])
    genes = read_spliceai_annotation(sources["annotation"], chrom="20")
    # test = the last 10% of chr20, exactly the region configs/pretrain_tiny1k_chr20.yaml holds out;
    # val = the 20% before it (the stretch 80-90% alone is gene-poor: 56 promoters)
    return genome, genes, RegionSplit.by_fraction(genome.length("20"), 0.2, 0.1)


def _build_splice(sources: dict[str, Path]) -> list[TaskRow]:
    from hyenadna.tasks.builders import at_most_per_label, splice_sites

    rows = splice_sites(*_chr20_setup(sources), **TASKS["splice_chr20"].parameters)
    return at_most_per_label(rows, "train", SPLICE_TRAIN_PER_LABEL, seed=0)


def _build_promoters(sources: dict[str, Path]) -> list[TaskRow]:
    from hyenadna.tasks.builders import promoters

    return promoters(*_chr20_setup(sources), **TASKS["promoters_chr20"].parameters)


def _build_tf(sources: dict[str, Path]) -> list[TaskRow]:
    from hyenadna.tasks.builders import tf_binding_by_chromosome

    files = {tf: [sources[f"{tf.lower()}_train"], sources[f"{tf.lower()}_test"]] for tf in ("Oct4", "MafK")}
    return tf_binding_by_chromosome(files, TF_VAL, TF_TEST)


def _build_bacteria(sources: dict[str, Path]) -> list[TaskRow]:
    from hyenadna.tasks.builders import genome_windows

    return genome_windows(sources, **TASKS["bacteria4"].parameters)


def _build_genic(sources: dict[str, Path]) -> list[RegionRow]:
    from hyenadna.tasks.gene_regions import gene_body_centres

    return gene_body_centres(*_chr20_setup(sources), **TASKS["genic_chr20"].parameters)


def _build_elements(sources: dict[str, Path]) -> list[TaskRow]:
    from hyenadna.tasks.gene_regions import genomic_elements

    return genomic_elements(*_chr20_setup(sources), **TASKS["elements_chr20"].parameters)


def _bacteria_stretches(sources: dict[str, Path], split: str) -> Iterator[tuple[str, str, str]]:
    from hyenadna.tasks.builders import genome_split_stretches

    return genome_split_stretches(sources, split)


TASKS: dict[str, TaskSpec] = {
    "splice_chr20": TaskSpec(
        "splice donor / acceptor / neither (GT/AG decoys), 200 bp, human chr20 (GRCh37), test = last 10%, "
        f"{SPLICE_TRAIN_PER_LABEL} training windows per class",
        _chr20_sources, _build_splice, {"half": 100, "seed": 0}),
    "promoters_chr20": TaskSpec(
        "promoter (-200..+50 of the TSS) / background (gene body or intergenic), 250 bp, human chr20, test = last 10%",
        _chr20_sources, _build_promoters, {"upstream": 200, "downstream": 50, "seed": 0}),
    "tf_oct4_mafk": TaskSpec(
        f"Oct4- vs MafK-bound ChIP-seq peaks (janggu), 200 bp, val = {', '.join(TF_VAL)}, test = {', '.join(TF_TEST)}",
        lambda: {f"{tf}_{part}": BUNDLED / "tf_binding" / f"{tf}_{part}.fa" for tf in ("oct4", "mafk")
                 for part in ("train", "test")},
        _build_tf),
    "bacteria4": TaskSpec(
        "which of 4 bacterial genomes a 200-bp window (random strand) comes from, split by genome region",
        lambda: {label: Path(RAGOUT) / rel for label, rel in BACTERIA.items()},
        _build_bacteria, {"per_split": {"train": 1500, "val": 250, "test": 250}, "width": 200, "seed": 0},
        _bacteria_stretches),
    "genic_chr20": TaskSpec(
        "gene body / intergenic at a position of human chr20 (>= 2 kb from any transcript end), read at any "
        "context up to 32 kb, test = last 10%",
        _chr20_sources, _build_genic,
        {"per_label": {"train": 500, "val": 100, "test": 200}, "max_context": 32768, "boundary_gap": 2000,
         "max_n_fraction": 0.01, "seed": 0}),
    "elements_chr20": TaskSpec(
        "exon / intron / intergenic, 200 bp on a random strand, human chr20, test = last 10%: a task no "
        "recipe was written for (hyenadna tune's new-task check)",
        _chr20_sources, _build_elements,
        {"per_label": {"train": 3000, "val": 600, "test": 600}, "width": 200, "splice_margin": 50,
         "intergenic_gap": 2000, "seed": 0}),
}  # fmt: skip


def table_bytes(rows: list[TaskRow]) -> bytes:
    """The rows as a gzip CSV with a fixed (zero) timestamp, so equal rows give equal bytes."""
    text = "name,sequence,label,split\n" + "".join(f"{r.name},{r.sequence},{r.label},{r.split}\n" for r in rows)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.encode("ascii"))
    return buffer.getvalue()


def bed_bytes(rows: list[RegionRow]) -> bytes:
    """The positions as BED: contig, start, end, name, score 0, strand ".", label, split."""
    lines = (f"{r.contig}\t{r.start}\t{r.end}\t{r.name}\t0\t.\t{r.label}\t{r.split}\n" for r in rows)
    return "".join(lines).encode("ascii")


def _task_sources(name: str) -> tuple[TaskSpec, dict[str, Path]]:
    """Task ``name`` and its source files, each checked to exist."""
    if name not in TASKS:
        raise HyenaDNAError(f"unknown task {name!r}; the suite has {sorted(TASKS)}")
    spec = TASKS[name]
    sources = spec.sources()
    for label, path in sources.items():
        if not Path(path).is_file():
            raise HyenaDNAError(f"task {name}: source {label} not found: {path} (see ../shared/DATA.md)")
    return spec, sources


def build_task(name: str, out: str | os.PathLike) -> dict:
    """Build one task into ``out``; returns its provenance (also written as ``<name>.json``)."""
    spec, sources = _task_sources(name)
    rows = spec.build(sources)
    if any("," in r.name for r in rows):
        raise HyenaDNAError(f"task {name}: a record name holds a comma")
    positions = bool(rows) and isinstance(rows[0], RegionRow)
    data = bed_bytes(rows) if positions else table_bytes(rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = out / f"{name}.bed" if positions else out / f"{name}.csv.gz"
    atomic_write(table, lambda tmp: Path(tmp).write_bytes(data))
    counts = Counter((r.split, r.label) for r in rows)
    provenance = {
        "task": name,
        "description": spec.description,
        "table": table.name,
        "table_sha256": hashlib.sha256(data).hexdigest(),
        "sources": {k: {"path": str(v), "sha256": file_sha256(v)} for k, v in sources.items()},
        "parameters": spec.parameters,
        "counts": {s: {lab: n for (sp, lab), n in sorted(counts.items()) if sp == s} for s in ("train", "val", "test")},
    }
    if not positions:
        provenance["lengths"] = sorted({len(r.sequence) for r in rows})
    atomic_write(out / f"{name}.json", lambda tmp: Path(tmp).write_text(json.dumps(provenance, indent=2) + "\n"))
    return provenance


def write_split_fasta(name: str, split: str, out: str | os.PathLike, line_width: int = 80) -> dict[str, Path]:
    """Write the ``split`` stretches of genome task ``name`` as one FASTA per label,
    ``<out>/<label>.<split>.fa``; returns label -> file.

    The training stretches are the corpus for pretraining on the task's own genomes (see
    ``configs/pretrain_tiny1k_bacteria4.yaml``) without a base of its validation or test windows.
    """
    spec, sources = _task_sources(name)
    if spec.stretches is None:
        genome_tasks = sorted(n for n, t in TASKS.items() if t.stretches is not None)
        raise HyenaDNAError(f"task {name} is not cut from whole genomes by region; those that are: {genome_tasks}")
    by_label: dict[str, list[tuple[str, str]]] = {}
    for label, record, sequence in spec.stretches(sources, split):
        by_label.setdefault(label, []).append((record, sequence))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for label, records in by_label.items():
        written[label] = out / f"{label}.{split}.fa"
        atomic_write_text(written[label], fasta_text(records, line_width))
    return written
