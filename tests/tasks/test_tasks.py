"""The task suite's builders on the real files (chr20, the spliceai annotation, ragout's bacteria,
the janggu peaks): rebuilt byte for byte, balanced, and with no overlap between splits."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from hyenadna.data.fasta import read_fasta
from hyenadna.data.genome import Genome
from hyenadna.data.tokenizer import reverse_complement
from hyenadna.errors import HyenaDNAError
from hyenadna.tasks import BUNDLED, CHR20, TASKS, build_task, spliceai_wheel, write_split_fasta
from hyenadna.tasks.annotation import Gene, RegionSplit, parse_spliceai_table, read_spliceai_annotation

TASK_DIR = BUNDLED / "tasks"
REPO = Path(__file__).resolve().parents[2]


def read_rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        header = fh.readline().strip().split(",")
        return [dict(zip(header, line.rstrip("\n").split(","))) for line in fh]


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("tasks")
    return {name: build_task(name, out) | {"folder": out} for name in TASKS}


@pytest.mark.parametrize("name", list(TASKS))
def test_rebuild_gives_the_bundled_bytes(rebuilt, name):
    bundled = json.loads((TASK_DIR / f"{name}.json").read_text())
    assert rebuilt[name]["table_sha256"] == bundled["table_sha256"]
    assert rebuilt[name]["counts"] == bundled["counts"]
    table = bundled["table"]  # <task>.csv.gz, or <task>.bed for a task of positions
    assert rebuilt[name]["table"] == table
    assert (rebuilt[name]["folder"] / table).read_bytes() == (TASK_DIR / table).read_bytes()
    for label, source in bundled["sources"].items():  # the provenance names every input by its hash
        assert rebuilt[name]["sources"][label]["sha256"] == source["sha256"]


SEQUENCE_TASKS = [name for name in TASKS if (TASK_DIR / f"{name}.csv.gz").is_file()]


@pytest.mark.parametrize("name", SEQUENCE_TASKS)
def test_splits_are_disjoint_balanced_and_clean(name):
    rows = read_rows(TASK_DIR / f"{name}.csv.gz")
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    names = Counter(r["name"] for r in rows)
    assert max(names.values()) == 1
    by_split = {s: {r["sequence"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["val"])
    assert all(set(r["sequence"]) <= set("ACGT") for r in rows)
    train = Counter(r["label"] for r in rows if r["split"] == "train")
    assert len(train) >= 2 and max(train.values()) <= 1.05 * min(train.values())  # balanced training classes
    for split in ("val", "test"):
        labels = Counter(r["label"] for r in rows if r["split"] == split)
        assert set(labels) == set(train) and min(labels.values()) >= 50


def _region_of(name: str) -> tuple[str, int]:
    fields = name.split(":")
    return fields[1], int(fields[2])


def test_splice_windows_sit_on_the_consensus_and_genes_never_cross_splits():
    rows = read_rows(TASK_DIR / "splice_chr20.csv.gz")
    counts = Counter(r["label"] for r in rows)
    assert counts["donor"] > 2500 and counts["acceptor"] > 2500 and counts["neither"] > 2500
    donors = [r["sequence"] for r in rows if r["label"] == "donor"]
    acceptors = [r["sequence"] for r in rows if r["label"] == "acceptor"]
    assert all(len(s) == 200 for s in donors + acceptors)
    # the intron starts at base 100 in transcript orientation: GT for ~99% of donors, AG ends it
    assert sum(s[100:102] == "GT" for s in donors) / len(donors) > 0.98
    assert sum(s[98:100] == "AG" for s in acceptors) / len(acceptors) > 0.98
    neither = [r for r in rows if r["label"] == "neither"]
    gt = [r for r in neither if r["name"].endswith(":GT")]
    assert {r["sequence"][100:102] for r in gt} == {"GT"}
    assert {r["sequence"][98:100] for r in neither if r["name"].endswith(":AG")} == {"AG"}
    for split in ("val", "test"):  # half GT, half AG decoys (the training split is subsampled)
        n = sum(r["split"] == split for r in neither)
        assert abs(sum(r["split"] == split for r in gt) - n / 2) <= 1
    genes: dict[str, set[str]] = {}
    for r in rows:
        genes.setdefault(r["name"].split(":")[0], set()).add(r["split"])
    assert all(len(splits) == 1 for name, splits in genes.items() if name not in ("genic", "intergenic"))
    regions = RegionSplit.by_fraction(Genome(CHR20).length("20"), 0.2, 0.1)
    for r in rows:
        _, position = _region_of(r["name"])
        assert (position >= regions.test_start) == (r["split"] == "test")


def test_a_decoy_pool_draws_as_the_task_does_and_gc_matches_the_sites():
    from hyenadna.data.composition import gc_content, gc_matched
    from hyenadna.tasks.builders import splice_decoy_pool

    genome, genes = Genome(CHR20), read_spliceai_annotation(spliceai_wheel(), chrom="20")
    regions = RegionSplit.by_fraction(genome.length("20"), 0.2, 0.1)
    pool = splice_decoy_pool(genome, genes, regions, "test", 1000, seed=5)
    assert pool == splice_decoy_pool(genome, genes, regions, "test", 1000, seed=5)
    assert len({r.name for r in pool}) == 1000 and {r.label for r in pool} == {"neither"}
    assert sum(r.name.endswith(":GT") and r.sequence[100:102] == "GT" for r in pool) == 500
    assert sum(r.name.endswith(":AG") and r.sequence[98:100] == "AG" for r in pool) == 500
    sites = sorted(b for g in genes for b in (*g.donors(), *g.acceptors()))
    for r in pool:
        _, position = _region_of(r.name)
        assert position >= regions.test_start and r.split == "test"
        assert min(abs(position - b) for b in sites) > 20
    donors = [r["sequence"] for r in read_rows(TASK_DIR / "splice_chr20.csv.gz")
              if r["split"] == "test" and r["label"] == "donor"][:60]  # fmt: skip
    picked = [pool[i].sequence for i in gc_matched([r.sequence for r in pool], donors, bins=4)]
    assert sorted(int(gc_content(s) * 4) for s in picked) == sorted(int(gc_content(s) * 4) for s in donors)


def test_promoter_windows_start_where_the_annotation_says():
    rows = read_rows(TASK_DIR / "promoters_chr20.csv.gz")
    genes = {g.name: g for g in read_spliceai_annotation(spliceai_wheel(), chrom="20")}
    genome = Genome(CHR20)
    from hyenadna.data.tokenizer import reverse_complement

    checked = 0
    for r in rows:
        if r["label"] != "promoter":
            continue
        gene = genes[r["name"].split(":")[0]]
        if gene.strand == "+":
            expected = genome.fetch("20", gene.tss - 200, gene.tss + 50).upper()
        else:
            expected = reverse_complement(genome.fetch("20", gene.tss - 49, gene.tss + 201).upper())
        assert r["sequence"] == expected  # base 200 is the TSS, on the gene's strand
        checked += 1
    assert checked > 400
    background = [r for r in rows if r["label"] == "background"]
    assert {r["name"].split(":")[0] for r in background} == {"genic", "intergenic"}


def test_gene_model_strands():
    gene = Gene("g", "20", "-", 100, 1000, ((100, 200), (400, 500), (800, 1000)))
    assert gene.tss == 999
    assert gene.donors() == [400, 800] and gene.acceptors() == [200, 500]
    plus = Gene("g", "20", "+", 100, 1000, ((100, 200), (400, 500), (800, 1000)))
    assert plus.tss == 100 and plus.donors() == [200, 500] and plus.acceptors() == [400, 800]


def test_bad_annotation_lines_are_named():
    lines = ["#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END", "A\t20\t+\t10\t50\t10,30,\t20,"]
    with pytest.raises(HyenaDNAError, match=r"ann.txt:2: 2 exon starts but 1 ends"):
        list(parse_spliceai_table(iter(lines), "ann.txt"))
    with pytest.raises(HyenaDNAError, match=r"ann.txt:1: strand"):
        list(parse_spliceai_table(iter(["A\t20\t*\t10\t50\t10,\t20,"]), "ann.txt"))


def test_region_split_matches_the_pretraining_hold_out():
    from hyenadna.data.corpus import Corpus

    corpus = Corpus([{"path": CHR20, "val_fraction": 0.1}])
    held_out = corpus.intervals("val")[0]
    regions = RegionSplit.by_fraction(Genome(CHR20).length("20"), 0.2, 0.1)
    assert regions.test_start == held_out.start and regions.length == held_out.end
    assert regions.of_span(held_out.start - 1, held_out.start + 10) is None


def test_genome_task_stretches_hold_their_split_windows_and_no_other(tmp_path):
    """The stretches a model may be pretrained on before bacteria4: the three splits partition
    each genome, and every task window lies in the stretches of its own split."""
    sources = TASKS["bacteria4"].sources()
    splits = ("train", "val", "test")
    stretches = {split: write_split_fasta("bacteria4", split, tmp_path, line_width=60) for split in splits}
    joined: dict[tuple[str, str], tuple[int, str]] = {}  # (label, split) -> (start in the genomes end to end, bases)
    for label, path in sources.items():
        genome = "".join(seq for _, seq in read_fasta(path)).upper()
        offset = 0
        for split in splits:
            records = list(read_fasta(stretches[split][label]))
            assert records and all(":" in name for name, _ in records)
            bases = "".join(seq for _, seq in records)
            assert genome[offset : offset + len(bases)] == bases
            joined[label, split] = offset, bases
            offset += len(bases)
        assert offset == len(genome)
        assert len(joined[label, "test"][1]) == round(0.1 * len(genome))
    rows = read_rows(TASK_DIR / "bacteria4.csv.gz")
    for row in rows:
        label, start = row["name"].rsplit(":", 1)
        lo, bases = joined[label, row["split"]]
        window = bases[int(start) - lo : int(start) - lo + 200]
        assert len(window) == 200 and row["sequence"] in (window, reverse_complement(window))
    config = yaml.safe_load((REPO / "configs/pretrain_tiny1k_bacteria4.yaml").read_text())
    assert sorted(Path(g["path"]).name for g in config["data"]["genomes"]) == sorted(
        p.name for p in stretches["train"].values()
    )  # the pretraining recipe reads the training stretches and nothing else
    with pytest.raises(HyenaDNAError, match="not cut from whole genomes"):
        write_split_fasta("splice_chr20", "train", tmp_path)
    with pytest.raises(HyenaDNAError, match="unknown split 'dev'"):
        write_split_fasta("bacteria4", "dev", tmp_path)


def test_genic_positions_are_labelled_by_the_annotation_and_their_windows_never_cross_splits():
    """genic_chr20: each position's label is what the annotation says, every transcript end is at
    least boundary_gap away, and the max_context window around it lies in its own split's region
    with at most 1% N, so reading it at any context up to 32 kb leaks nothing across splits."""
    from hyenadna.data.intervals import read_bed
    from hyenadna.data.labels import read_labelled

    params = TASKS["genic_chr20"].parameters
    genome = Genome(CHR20)
    genes = read_spliceai_annotation(spliceai_wheel(), chrom="20")
    regions = RegionSplit.by_fraction(genome.length("20"), 0.2, 0.1)
    half = params["max_context"] // 2
    bed = TASK_DIR / "genic_chr20.bed"
    rows = list(read_bed(bed))
    labels = Counter((r.extra[1], r.extra[0]) for r in rows)
    assert labels == Counter({(s, lab): n for s, n in params["per_label"].items() for lab in ("gene", "intergenic")})
    for r in rows:
        label, split = r.extra
        assert r.end == r.start + 1 and r.name == f"{label}:20:{r.start}"
        inside = any(g.tx_start <= r.start < g.tx_end for g in genes)
        assert label == ("gene" if inside else "intergenic")
        assert min(abs(r.start - x) for g in genes for x in (g.tx_start, g.tx_end)) > params["boundary_gap"]
        assert regions.of_span(r.start - half, r.start + half) == split
        window = genome.fetch("20", r.start - half, r.start + half).upper()
        assert window.count("N") <= params["max_n_fraction"] * len(window) and window[half] != "N"
    config = yaml.safe_load((REPO / "configs/tasks/genic_chr20.yaml").read_text())
    reader = config["data"]["reader"]
    records = read_labelled(bed, **{**reader, "length": 1000})
    assert [(x.label[0], x.split) for x in records] == [r.extra for r in rows]
    assert records[5].sequence == genome.fetch("20", rows[5].start - 500, rows[5].start + 500)


def test_gene_body_centres_on_a_small_genome(tmp_path):
    """The builder on a 40 kb synthetic chromosome: labels from the genes, the boundary gap, the
    N filter, whole windows inside the split region, and an error naming the split it cannot fill."""
    import numpy as np

    from hyenadna.tasks.gene_regions import gene_body_centres

    bases = np.random.default_rng(0).choice(list("ACGT"), 40_000)
    bases[30_000:31_000] = "N"
    fasta = tmp_path / "toy.fa"
    fasta.write_text(">c\n" + "".join(bases) + "\n")
    genes = [Gene("g1", "c", "+", 5_000, 15_000, ((5_000, 6_000), (14_000, 15_000)))]
    regions = RegionSplit(val_start=20_000, test_start=30_000, length=40_000)
    rows = gene_body_centres(Genome(fasta), genes, regions, {"train": 5}, max_context=2_000, boundary_gap=500)
    assert Counter(r.label for r in rows) == {"gene": 5, "intergenic": 5} and len({r.start for r in rows}) == 10
    for r in rows:
        assert (r.label == "gene") == (5_000 <= r.start < 15_000) and r.split == "train"
        assert min(abs(r.start - 5_000), abs(r.start - 15_000)) > 500 and 1_000 <= r.start <= 19_000
    with pytest.raises(HyenaDNAError, match="fewer than 5 clean 2000-base windows of each label in the test region"):
        gene_body_centres(Genome(fasta), genes, regions, {"test": 5}, max_context=2_000)  # no gene there, N in it


def test_element_windows_are_what_the_annotation_says_and_stay_in_their_split():
    """elements_chr20: an exon window is centred on the middle of an annotated exon; an intron
    window lies in a transcript with more than the splice margin between it and every exon of any
    gene; an intergenic window is the gap away from every transcript; each is the genome's bases
    on its strand, inside its split's region."""
    import numpy as np

    params = TASKS["elements_chr20"].parameters
    genome = Genome(CHR20)
    genes = read_spliceai_annotation(spliceai_wheel(), chrom="20")
    exon_start, exon_end = np.array([exon for g in genes for exon in g.exons]).T
    tx_start, tx_end = np.array([(g.tx_start, g.tx_end) for g in genes]).T
    middles = set(((exon_start + exon_end) // 2).tolist())
    regions = RegionSplit.by_fraction(genome.length("20"), 0.2, 0.1)
    width, margin, gap = params["width"], params["splice_margin"], params["intergenic_gap"]
    rows = read_rows(TASK_DIR / "elements_chr20.csv.gz")
    counts = Counter((r["split"], r["label"]) for r in rows)
    assert counts == {(s, lab): n for s, n in params["per_label"].items() for lab in ("exon", "intron", "intergenic")}
    strands = Counter()
    for r in rows:
        label, chrom, start, strand = r["name"].split(":")
        start, end = int(start), int(start) + width
        assert label == r["label"] and chrom == "20" and regions.of_span(start, end) == r["split"]
        forward = genome.fetch("20", start, end).upper()
        assert r["sequence"] == (forward if strand == "+" else reverse_complement(forward))
        strands[strand] += 1
        if label == "exon":
            assert start + width // 2 in middles
        elif label == "intron":  # more than `margin` bases between the window and every exon
            assert np.any((tx_start <= start) & (end <= tx_end))
            assert not np.any((exon_start - margin <= end) & (start <= exon_end + margin))
        else:
            assert not np.any((tx_start - gap < end) & (start < tx_end + gap))
    assert 0.45 < strands["+"] / len(rows) < 0.55  # the strand tells nothing


def test_genomic_elements_on_a_small_genome(tmp_path):
    """The builder on a synthetic chromosome: a two-intron gene with a one-exon gene of the other
    strand inside its second intron. Every label in its place, no intron window near the other
    gene's exon whatever the seed, and an error naming the split whose introns cannot fill it."""
    import numpy as np

    from hyenadna.tasks.gene_regions import genomic_elements

    fasta = tmp_path / "toy.fa"
    fasta.write_text(">c\n" + "".join(np.random.default_rng(0).choice(list("ACGT"), 30_000)) + "\n")
    genes = [Gene("g1", "c", "+", 4_000, 7_900, ((4_000, 4_300), (6_000, 6_150), (7_600, 7_900))),
             Gene("g2", "c", "-", 6_800, 6_900, ((6_800, 6_900),))]  # fmt: skip
    regions = RegionSplit(val_start=20_000, test_start=25_000, length=30_000)
    # the 200-base slots of g1's introns with more than 50 bases to every exon, g2's included
    allowed = {4_550, 4_750, 4_950, 5_150, 5_350, 5_550, 6_400, 7_000, 7_200}
    drawn = set()
    for seed in range(10):
        rows = genomic_elements(Genome(fasta), genes, regions, {"train": 4}, intergenic_gap=1_000, seed=seed)
        starts = {lab: sorted(int(r.name.split(":")[2]) for r in rows if r.label == lab) for lab in ("exon", "intron")}
        assert Counter(r.label for r in rows) == {"exon": 4, "intron": 4, "intergenic": 4}
        assert starts["exon"] == [4_050, 5_975, 6_750, 7_650]  # centred on each exon's middle
        drawn.update(starts["intron"])
        assert all(int(r.name.split(":")[2]) + 200 <= 3_000 or int(r.name.split(":")[2]) >= 8_900
                   for r in rows if r.label == "intergenic")  # fmt: skip
    assert drawn <= allowed and len(drawn) >= 6  # 10 seeds draw most allowed slots and no other
    short = Gene("g3", "c", "+", 4_000, 4_700, ((4_000, 4_200), (4_500, 4_700)))  # its one slot is 50 bases from both
    with pytest.raises(HyenaDNAError, match="only 0 clean intron windows in the train region, 2 wanted"):
        genomic_elements(Genome(fasta), [short], regions, {"train": 5})
