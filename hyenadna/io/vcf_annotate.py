"""The annotated VCF of ``hyenadna score``: the input VCF with the scores as INFO fields, indexed.

htslib ends the whole process (``exit``, no exception, a ``.tmp`` left) when it writes a record
that names a contig or a tag its output header lacks, and pysam adds ``INFO/END`` to every
symbolic (``<DEL>``) record. So the header is completed before any record is written: a first
pass reads the records and collects what they use; contigs the VCF does not declare are declared
with the genome's length (without a length when the genome lacks them too, as htslib itself
does), undeclared INFO/FORMAT/FILTER tags as htslib read them, and ``INFO/END`` where a record
will carry it.

The file is written under a temporary name and indexed there (``.tbi`` for ``.vcf.gz``, ``.csi``
for ``.bcf``); the index and then the file are renamed into place, so no unindexed or half
written file appears under the final name. A VCF whose records are not sorted cannot be
indexed: it is written without an index, with a warning.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hyenadna.data.variants import LLR_INFO, InfoField, open_variants
from hyenadna.errors import HyenaDNAError

END_LINE = '##INFO=<ID=END,Number=1,Type=Integer,Description="Stop position of the interval">'


def index_suffix(path: str | os.PathLike) -> str | None:
    """The index an annotated VCF gets: ``.tbi`` (bgzipped VCF), ``.csi`` (BCF) or None (plain VCF)."""
    name = str(path)
    return ".tbi" if name.endswith(".gz") else ".csi" if name.endswith(".bcf") else None


def check_info_fields(vcf: str, fields: list[InfoField]) -> None:
    """Refuse, before any scoring, INFO keys that repeat or that the VCF already declares
    otherwise than as ``Number=A, Type=Float`` (a key declared so is replaced)."""
    keys = [field.key for field in fields]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise HyenaDNAError(f"two outputs would write the same INFO field {', '.join(repeated)}")
    with open_variants(vcf) as src:
        for key in keys:
            if key in src.header.info:
                known = src.header.info[key]
                if (known.number, known.type) != ("A", "Float"):
                    raise HyenaDNAError(
                        f"{vcf} already declares INFO/{key} as Number={known.number}, Type={known.type}; "
                        "the scores need Number=A, Type=Float: remove the field first "
                        f"(bcftools annotate -x INFO/{key})"
                    )


def annotate_vcf(
    vcf: str, scores_tsv: Path, output: str, contigs: dict[str, int] | None = None, info: list[InfoField] | None = None
) -> None:
    """Write ``vcf`` with INFO fields (Number=A; default ``INFO/HYENADNA_LLR``) from the scores TSV
    (module docstring). ``contigs`` are the genome's names and lengths, declared where the VCF
    uses a contig without declaring it."""
    import csv

    import pysam

    fields = info or [LLR_INFO]
    check_info_fields(vcf, fields)
    lines = _missing_header_lines(vcf, contigs or {})

    def write(tmp: str) -> None:
        with open_variants(vcf) as src, open(scores_tsv) as fh:
            rows = csv.DictReader(fh, delimiter="\t")
            for line in lines:  # before any record is read: records parse against the header
                src.header.add_line(line)
            for field in fields:
                if field.key not in src.header.info:
                    src.header.info.add(field.key, "A", "Float", field.description)
            mode = "wz" if output.endswith(".gz") else ("wb" if output.endswith(".bcf") else "w")
            # The output's header is a copy of the completed input header: records keep their ids.
            with pysam.VariantFile(tmp, mode, header=src.header) as dst:
                for record in src:
                    values: dict[str, list] = {field.key: [] for field in fields}
                    for alt in record.alts or ():
                        row = next(rows, None)
                        where = (record.chrom, record.pos, alt)
                        if row is None or (row["chrom"], int(row["pos"]), row["alt"]) != where:
                            raise HyenaDNAError(f"{scores_tsv} does not follow {vcf} at {record.chrom}:{record.pos}")
                        for field in fields:
                            values[field.key].append(float(row[field.column]) if row[field.column] else None)
                    for key, per_alt in values.items():
                        if key in record.info:
                            del record.info[key]  # a value from an earlier annotation
                        if per_alt and any(v is not None for v in per_alt):
                            record.info[key] = tuple(per_alt)
                    dst.write(record)

    write_indexed(output, write)


def _missing_header_lines(vcf: str, contigs: dict[str, int]) -> list[str]:
    """Header lines the records of ``vcf`` need and its header lacks (module docstring): one
    pass over the records, after which htslib's header holds a definition of every undeclared
    tag and contig it met."""
    import pysam

    used: dict[str, None] = {}  # contigs in order of first use
    needs_end = False
    previous = pysam.set_verbosity(0)  # the scoring pass already showed htslib's warnings
    try:
        with open_variants(vcf) as src:
            declared = set(src.header.contigs)
            has = {kind: set(getattr(src.header, name)) for kind, name in _TAGS.items()}
            for record in src:
                used[record.chrom] = None
                alts = record.alts or ()
                symbolic = any(alt.startswith("<") and alt.endswith(">") for alt in alts)
                needs_end = needs_end or symbolic or (bool(alts) and record.rlen != len(record.ref or ""))
            lines = [
                str(hrec).strip()
                for hrec in src.header.records
                if hrec.type in _TAGS and hrec.get("ID") not in has[hrec.type]
            ]
    except HyenaDNAError:
        raise
    except (OSError, ValueError) as exc:
        raise HyenaDNAError(f"{vcf}: cannot read its records ({exc})") from None
    finally:
        pysam.set_verbosity(previous)
    for name in used:
        if name not in declared:
            length = contigs.get(name)
            lines.append(f"##contig=<ID={name}" + (f",length={length}>" if length else ">"))
    if needs_end and "END" not in has["INFO"] and not any(line.startswith("##INFO=<ID=END,") for line in lines):
        lines.append(END_LINE)
    return lines


_TAGS = {"INFO": "info", "FORMAT": "formats", "FILTER": "filters"}


def write_indexed(output: str, write) -> str | None:
    """``write(tmp)`` to a temporary file beside ``output``, index it there (``index_suffix``),
    then rename the index and the file into place; on any failure nothing new is left under
    either name. Returns the index's path (None: a plain VCF, or records not sorted)."""
    from hyenadna.io.atomic import current_umask

    out = Path(output)
    suffix = index_suffix(output)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp_index = tmp + (suffix or "")
    final_index = output + (suffix or "")
    published = False
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's is 0600
        indexed = suffix is not None and index_variants(tmp, output)
        if indexed:
            os.chmod(tmp_index, 0o666 & ~current_umask())
            os.replace(tmp_index, final_index)
            published = True
        elif suffix:
            Path(final_index).unlink(missing_ok=True)  # an earlier file's index must not describe this one
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        if suffix:
            Path(tmp_index).unlink(missing_ok=True)
        if published:
            Path(final_index).unlink(missing_ok=True)
        raise
    return final_index if indexed else None


def index_variants(path: str, name: str | None = None) -> bool:
    """Index a bgzipped VCF (``path.tbi``, tabix) or a BCF (``path.csi``) so that tools can query
    regions of it; ``name`` (default ``path``) decides the kind and names the file in a warning.
    A VCF whose records are not sorted gets no index (a warning says so; the file itself is
    complete): returns False."""
    import warnings

    import pysam
    import pysam.bcftools  # a submodule: ``import pysam`` alone does not load it

    name = name or path
    kind = index_suffix(name)
    if kind is None:
        return False
    try:
        if kind == ".tbi":
            pysam.tabix_index(path, preset="vcf", force=True)
        else:
            pysam.bcftools.index(path, "--force")
    except (OSError, pysam.utils.SamtoolsError) as exc:
        warnings.warn(f"{name} is not indexed: its records are not sorted by position ({exc})", stacklevel=2)
        return False
    return True
