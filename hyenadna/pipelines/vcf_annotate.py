"""The annotated VCF of ``hyenadna score``: the input VCF with the scores as INFO fields, indexed."""

from __future__ import annotations

from pathlib import Path

from hyenadna.errors import HyenaDNAError
from hyenadna.pipelines.variants import InfoField, open_variants

INFO_KEY = "HYENADNA_LLR"


def annotate_vcf(
    vcf: str, scores_tsv: Path, output: str, contigs: dict[str, int] | None = None, info: list[InfoField] | None = None
) -> None:
    """Write ``vcf`` with INFO fields (Number=A; default ``INFO/HYENADNA_LLR``) from the scores TSV,
    in one pass. ``contigs`` (the genome's names and lengths) are declared in the header where the
    VCF lacks them: htslib cannot write a record whose contig the header does not name."""
    import csv

    import pysam

    from hyenadna.atomic import atomic_write

    fields = info or [InfoField(INFO_KEY, "llr", "HyenaDNA log-likelihood ratio, alt minus ref (nats per base)")]

    def write(tmp: str) -> None:
        with open_variants(vcf) as src, open(scores_tsv) as fh:
            rows = csv.DictReader(fh, delimiter="\t")
            for name, length in (contigs or {}).items():
                if name not in src.header.contigs:  # before any record is read: records parse against it
                    src.header.contigs.add(name, length=length)
            header = src.header.copy()
            for field in fields:
                header.info.add(field.key, "A", "Float", field.description)
            mode = "wz" if output.endswith(".gz") else ("wb" if output.endswith(".bcf") else "w")
            with pysam.VariantFile(tmp, mode, header=header) as dst:
                for record in src:
                    record.translate(dst.header)
                    values: dict[str, list] = {field.key: [] for field in fields}
                    for alt in record.alts or ():
                        row = next(rows)
                        if (row["chrom"], int(row["pos"]), row["alt"]) != (record.chrom, record.pos, alt):
                            raise HyenaDNAError(f"{scores_tsv} does not follow {vcf} at {record.chrom}:{record.pos}")
                        for field in fields:
                            values[field.key].append(float(row[field.column]) if row[field.column] else None)
                    for key, per_alt in values.items():
                        if per_alt and any(v is not None for v in per_alt):
                            record.info[key] = tuple(per_alt)
                    dst.write(record)

    atomic_write(output, write)
    index_variants(output)


def index_variants(path: str) -> str | None:
    """Index a compressed VCF (``.tbi``, tabix) or a BCF (``.csi``) so that tools can query
    regions of it; a plain ``.vcf`` gets none, nor does a VCF whose records are not sorted (a
    warning says so; the file itself is complete). Returns the index's path."""
    import warnings

    import pysam

    try:
        if path.endswith(".gz"):
            pysam.tabix_index(path, preset="vcf", force=True)
            return path + ".tbi"
        if path.endswith(".bcf"):
            pysam.bcftools.index(path, "--force")
            return path + ".csi"
    except (OSError, pysam.utils.SamtoolsError) as exc:
        warnings.warn(f"{path} is not indexed: its records are not sorted by position ({exc})", stacklevel=2)
    return None
