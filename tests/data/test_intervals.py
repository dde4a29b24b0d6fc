"""BED and region tables to sequences on real genomes: strand, resizing, clipping, errors naming lines."""

from __future__ import annotations

import pyfaidx
import pytest

from hyenadna.data.genome import Genome
from hyenadna.data.intervals import Region, read_bed, read_region_table, read_regions, region_sequence, resize
from hyenadna.data.tokenizer import reverse_complement
from hyenadna.errors import HyenaDNAError


def test_pysam_bed_regions_match_pyfaidx(real):
    regions = list(read_bed(real.ex1_bed))
    assert [(r.contig, r.start, r.end) for r in regions][:2] == [("chr1", 10, 100), ("chr1", 100, 1000)]
    genome = Genome(real.ex1_fa)
    fasta = pyfaidx.Fasta(str(real.ex1_fa))
    for r in regions:
        assert region_sequence(genome, r) == str(fasta[r.contig][r.start : r.end])


def test_bed6_strand_columns_and_extra_fields(real, tmp_path):
    bed = tmp_path / "genes.bed"
    bed.write_text(
        "track name=test\n# comment\n"
        "CHROMOSOME_I\t1000\t1050\tgeneA\t0\t+\textra1\n"
        "CHROMOSOME_I\t2000\t2037\tgeneB\t5\t-\textra2\textra3\n"
    )
    a, b = list(read_bed(bed))
    assert (a.name, a.strand, a.extra, a.where) == ("geneA", "+", ("extra1",), f"{bed}, line 3")
    assert (b.score, b.strand, b.extra) == ("5", "-", ("extra2", "extra3"))
    genome = Genome(real.ce_fa)
    fasta = pyfaidx.Fasta(str(real.ce_fa))
    assert region_sequence(genome, a) == str(fasta["CHROMOSOME_I"][1000:1050])
    assert region_sequence(genome, b) == reverse_complement(str(fasta["CHROMOSOME_I"][2000:2037]))
    assert region_sequence(genome, b, strand_aware=False) == str(fasta["CHROMOSOME_I"][2000:2037])


def test_resize_policies():
    r = Region("c", 100, 110)
    assert (resize(r, 20, "center").start, resize(r, 20, "center").end) == (95, 115)
    assert (resize(r, 5, "center").start, resize(r, 5, "center").end) == (102, 107)
    assert resize(r, 5, "extend") == r and resize(r, 20, "truncate") == r
    assert resize(r, 20, "extend").length == 20 and resize(r, 5, "truncate").length == 5
    assert resize(r, 20, "none") == r
    odd = resize(Region("c", 100, 111), 14, "center")
    assert (odd.start, odd.end) == (98, 112)
    with pytest.raises(HyenaDNAError, match="resize policy"):
        resize(r, 5, "grow")


def test_resized_windows_clip_and_pad_at_contig_ends(real):
    genome = Genome(real.ex1_fa)
    size = genome.contigs["chr1"]
    near_start = Region("chr1", 2, 6)
    seq = region_sequence(genome, near_start, length=10, policy="center")
    assert seq == "N" + genome.fetch("chr1", 0, 9)
    near_end = Region("chr1", size - 4, size, strand="-")
    seq = region_sequence(genome, near_end, length=10, policy="center")
    assert seq == reverse_complement(genome.fetch("chr1", size - 7, size) + "NNN")
    flanked = region_sequence(genome, Region("chr1", 10, 20), flank=5)
    assert flanked == genome.fetch("chr1", 5, 25)


def test_regions_off_the_genome_name_the_line(real, tmp_path):
    genome = Genome(real.ex1_fa)
    bed = tmp_path / "bad.bed"
    bed.write_text("chr1\t0\t10\nchrZ\t0\t10\nchr2\t0\t999999\n")
    regions = list(read_bed(bed))
    with pytest.raises(HyenaDNAError, match=rf"{bed}, line 2: contig 'chrZ' is not in"):
        region_sequence(genome, regions[1])
    with pytest.raises(HyenaDNAError, match=rf"{bed}, line 3: chr2:0-999999 runs past the contig's end"):
        region_sequence(genome, regions[2])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("chr1\t10\n", "at least 3 columns"),
        ("chr1\tten\t20\n", "must be integers"),
        ("chr1\t30\t20\n", "bad interval"),
        ("chr1\t10\t20\tn\t0\tx\n", "strand must be"),
    ],
)
def test_malformed_bed_lines(tmp_path, line, message):
    bed = tmp_path / "bad.bed"
    bed.write_text("chr1\t0\t5\n" + line)
    with pytest.raises(HyenaDNAError, match=rf"{bed}, line 2: .*{message}"):
        list(read_bed(bed))


def test_empty_bed_is_an_error(tmp_path):
    bed = tmp_path / "empty.bed"
    bed.write_text("# nothing\n")
    with pytest.raises(HyenaDNAError, match="no regions"):
        list(read_bed(bed))


def test_region_tables_csv_and_tsv(real, tmp_path):
    csv_path = tmp_path / "regions.csv"
    csv_path.write_text("chrom,start,end,strand,name,score\nchr2,5,25,-,r1,0.5\nchr1,0,4,+,r2,1\n")
    regions = list(read_regions(csv_path))
    assert [(r.contig, r.start, r.end, r.strand, r.name, r.extra) for r in regions] == [
        ("chr2", 5, 25, "-", "r1", ("0.5",)),
        ("chr1", 0, 4, "+", "r2", ("1",)),
    ]
    tsv_path = tmp_path / "regions.tsv"
    tsv_path.write_text("contig\tfrom\tto\nchr2\t5\t25\n")
    (region,) = read_region_table(tsv_path, contig_col="contig", start_col="from", end_col="to")
    genome = Genome(real.ex1_fa)
    assert region_sequence(genome, region) == reverse_complement(region_sequence(genome, regions[0]))
    with pytest.raises(HyenaDNAError, match=r"no column\(s\) \['chrom', 'start', 'end'\]"):
        list(read_regions(tsv_path))
