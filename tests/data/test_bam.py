"""Reads and coverage from real SAM/BAM/CRAM files, checked against samtools and pysam."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pysam
import pytest

from hyenadna.data.bam import ReadFilter, count_reads, coverage, iter_reads
from hyenadna.data.datasets import CoverageWindows
from hyenadna.data.tokenizer import reverse_complement
from hyenadna.errors import HyenaDNAError


def samtools(*args: str) -> str:
    exe = shutil.which("samtools")
    if exe is None:
        pytest.fail("samtools is missing: install the Debian package samtools (see .ci/run)")
    return subprocess.run([exe, *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize(
    ("kwargs", "args"),
    [
        ({}, ["-F", "0xF04"]),
        ({"filters": ReadFilter(min_mapq=30)}, ["-F", "0xF04", "-q", "30"]),
        ({"filters": ReadFilter(drop_unmapped=False)}, ["-F", "0xF00"]),
        ({"region": "chr1:100-2000"}, ["-F", "0xF04"]),
        ({"region": "chr2"}, ["-F", "0xF04"]),
    ],
)
def test_read_counts_match_samtools(real, kwargs, args):
    region = [kwargs["region"]] if "region" in kwargs else []
    expected = int(samtools("view", "-c", *args, str(real.ex1_bam), *region))
    assert count_reads(real.ex1_bam, **kwargs) == expected
    assert expected > 0


def test_min_length_counts_match_samtools(real):
    expected = int(samtools("view", "-c", "-F", "0xF04", "-e", "length(seq)>=36", str(real.ex1_bam)))
    assert count_reads(real.ex1_bam, filters=ReadFilter(min_length=36)) == expected


def test_read_sequences_and_orientation(real):
    stored = {r.name + str(r.start): r for r in iter_reads(real.ex1_bam)}
    as_read = {r.name + str(r.start): r for r in iter_reads(real.ex1_bam, orientation="read")}
    reverse = [k for k, r in stored.items() if r.reverse]
    assert reverse and len(reverse) < len(stored)
    for key in reverse[:50]:
        assert as_read[key].sequence == reverse_complement(stored[key].sequence)
    with pysam.AlignmentFile(str(real.ex1_bam)) as bam:
        first = next(r for r in bam.fetch(until_eof=True) if not r.is_unmapped)
    read = next(iter_reads(real.ex1_bam))
    assert (read.name, read.sequence, read.contig, read.start) == (
        first.query_name,
        first.query_sequence,
        first.reference_name,
        first.reference_start,
    )


def test_soft_clips_kept_or_dropped(real):
    kept = list(iter_reads(real.softclip_bam))
    dropped = list(iter_reads(real.softclip_bam, soft_clips="drop"))
    with pysam.AlignmentFile(str(real.softclip_bam)) as bam:
        records = [r for r in bam.fetch(until_eof=True) if not r.flag & 0xF04]
    assert [r.sequence for r in kept] == [r.query_sequence for r in records]
    assert [r.sequence for r in dropped] == [r.query_alignment_sequence for r in records]
    assert any(len(a.sequence) > len(b.sequence) for a, b in zip(kept, dropped))


def test_label_from_a_read_tag(real):
    labels = [r.label for r in iter_reads(real.ex1_bam, label_tag="MF")]
    with pysam.AlignmentFile(str(real.ex1_bam)) as bam:
        expected = [r.get_tag("MF") for r in bam.fetch(until_eof=True) if not r.flag & 0xF04]
    assert labels == expected
    with pytest.raises(HyenaDNAError, match="has no XX tag"):
        list(iter_reads(real.ex1_bam, label_tag="XX"))


def test_cram_reads_equal_bam_reads(real):
    bam_reads = list(iter_reads(real.range_bam, region="CHROMOSOME_I:900-2000"))
    cram_reads = list(iter_reads(real.range_cram, region="CHROMOSOME_I:900-2000", reference=real.ce_fa))
    expected = int(
        samtools("view", "-c", "-F", "0xF04", "-T", str(real.ce_fa), str(real.range_cram), "CHROMOSOME_I:900-2000")
    )
    assert len(cram_reads) == len(bam_reads) == expected > 0
    assert [(r.name, r.sequence, r.start) for r in cram_reads] == [(r.name, r.sequence, r.start) for r in bam_reads]
    with pytest.raises(HyenaDNAError, match="needs its reference FASTA"):
        list(iter_reads(real.range_cram))


def test_coverage_matches_samtools_depth(real):
    start, end = 200, 1200
    depth = coverage(real.ex1_bam, "chr1", start, end)
    out = samtools("depth", "-a", "-G", "0x800", "-r", f"chr1:{start + 1}-{end}", str(real.ex1_bam))
    expected = np.array([int(line.split("\t")[2]) for line in out.splitlines()])
    assert depth.shape == (end - start,)
    assert np.array_equal(depth, expected)
    assert depth.max() > 10


def test_coverage_windows_dataset(real):
    dataset = CoverageWindows(real.ex1_fa, real.ex1_bam, length=500, contigs=["chr1"], stride=250)
    assert len(dataset) == (1575 - 500) // 250 + 1
    item = dataset[1]
    assert item["input_ids"].shape == item["coverage"].shape == (500,)
    assert np.array_equal(item["coverage"].numpy(), coverage(real.ex1_bam, "chr1", 250, 750))


def test_unindexed_bam_region_says_how_to_index(real, tmp_path):
    copy = tmp_path / "noindex.bam"
    shutil.copyfile(real.ex1_bam, copy)
    assert count_reads(copy) == 3235  # a whole-file pass needs no index
    with pytest.raises(HyenaDNAError, match="no index .*samtools index"):
        list(iter_reads(copy, region="chr1:1-100"))


@pytest.mark.parametrize("name", ["corrupt_bam", "truncated_bam"])
def test_damaged_bam_errors_name_the_file(real, name):
    path = getattr(real, name)
    with pytest.raises(HyenaDNAError, match=str(path)):
        list(iter_reads(path))


def test_empty_and_unaligned_files(real, tmp_path):
    assert list(iter_reads(real.empty_bam)) == []
    zero = tmp_path / "zero.bam"
    zero.write_bytes(b"")
    with pytest.raises(HyenaDNAError, match="empty file"):
        list(iter_reads(zero))
    unaligned = list(iter_reads(real.unaligned_bam, filters=ReadFilter(drop_unmapped=False)))
    assert unaligned and all(r.contig is None for r in unaligned)
    assert list(iter_reads(real.unaligned_bam)) == []


def test_hard_clipped_reads_can_be_dropped(real):
    with pysam.AlignmentFile(str(real.softclip_bam)) as bam:
        records = [r for r in bam.fetch(until_eof=True) if not r.flag & 0x704]  # supplementary kept
    hard = [r.query_name for r in records if r.cigarstring and "H" in r.cigarstring]
    assert hard == ["r004"]
    filters = ReadFilter(drop_supplementary=False, drop_hard_clipped=True)
    kept = [r.name for r in iter_reads(real.softclip_bam, filters=filters)]
    assert kept == [r.query_name for r in records if r.query_name not in hard]
