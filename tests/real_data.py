"""Real genomic files from Debian packages, copied into a scratch folder for the tests.

Debian gzips many example files (``ex1.bam.gz``, ``20.fa.gz.gzi.gz``); they are copied and
unpacked here, and indexes are written here, never beside the installed package. A missing package
fails the test with the package to install: these tests must run, not skip, in CI (.ci/run installs
the packages).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYSAM_DATA = Path("/usr/share/doc/python-pysam/tests/pysam_data")
HTSLIB_TEST = Path("/usr/share/htslib-test/test")
VT_REF = Path("/usr/share/doc/vt/examples/ref")

PACKAGES = {PYSAM_DATA: "python-pysam-tests", HTSLIB_TEST: "htslib-test", VT_REF: "vt-examples"}


def source(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install the Debian package {PACKAGES[folder]} (see .ci/run)")
    return path


def copy_plain(folder: Path, name: str, dest: Path, gunzip: bool = True) -> Path:
    """Copy ``name`` into ``dest``, gunzipping it when its name ends in .gz (unless told not to,
    for files that are bgzip on purpose); returns the new path."""
    src = source(folder, name)
    if gunzip and name.endswith(".gz"):
        out = dest / name.removesuffix(".gz")
        with gzip.open(src, "rb") as fin, open(out, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        return out
    out = dest / name
    shutil.copyfile(src, out)
    return out


def copy_chr20(dest: Path) -> Path:
    """Human chromosome 20 (GRCh37) into ``dest``, bgzip with its .fai and .gzi, as vt-examples ships it."""
    genome = copy_plain(VT_REF, "20.fa.gz", dest, gunzip=False)
    copy_plain(VT_REF, "20.fa.gz.fai", dest)
    copy_plain(VT_REF, "20.fa.gz.gzi.gz", dest)
    return genome


class RealData:
    """Paths of the real test files in one scratch folder (built once per test session)."""

    def __init__(self, root: Path) -> None:
        import pysam

        self.root = root
        self.lambda_fa = REPO / "data" / "lambda_virus.fa"
        self.chr20 = copy_chr20(root)
        # pysam's test genome (2 contigs) and its 3,270 reads, indexed here.
        self.ex1_fa = copy_plain(PYSAM_DATA, "ex1.fa", root)
        self.ex1_bam = copy_plain(PYSAM_DATA, "ex1.bam.gz", root)
        pysam.index(str(self.ex1_bam))
        self.ex1_bed = copy_plain(PYSAM_DATA, "ex1.bed", root)
        self.softclip_bam = copy_plain(PYSAM_DATA, "softclip.bam", root)
        self.corrupt_bam = copy_plain(PYSAM_DATA, "ex2_corrupt.bam.gz", root)
        self.truncated_bam = copy_plain(PYSAM_DATA, "ex2_truncated.bam.gz", root)
        self.empty_bam = copy_plain(PYSAM_DATA, "empty.bam", root)
        self.unaligned_bam = copy_plain(PYSAM_DATA, "test_unaligned.bam", root)
        # htslib's C. elegans test genome with the same reads as BAM and CRAM, both indexed.
        self.ce_fa = copy_plain(HTSLIB_TEST, "ce.fa", root)
        copy_plain(HTSLIB_TEST, "ce.fa.fai", root)
        self.range_bam = copy_plain(HTSLIB_TEST, "range.bam", root)
        copy_plain(HTSLIB_TEST, "range.bam.bai", root)
        self.range_cram = copy_plain(HTSLIB_TEST, "range.cram", root)
        copy_plain(HTSLIB_TEST, "range.cram.crai", root)
