"""``hyenadna score --fasta``: the log-likelihood of every record of a FASTA, and of every base."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hyenadna.errors import HyenaDNAError
from hyenadna.inference.tiling import Tiling
from hyenadna.pipelines.score.checks import check_counts, format_score, plan_files


def run_score_fasta(
    model,
    fasta: str,
    output: str,
    rc_average: bool = False,
    batch_size: int = 8,
    overwrite: bool = False,
    tiling: Tiling | None = None,
    per_base_output: str | None = None,
) -> dict:
    """Log-likelihood of every record of a FASTA (sum and mean over scored bases) to a TSV;
    ``per_base_output`` also writes every base's (name, 1-based position, base, ll in nats)."""
    from hyenadna.data.fasta import read_fasta_records
    from hyenadna.io.atomic import atomic_write

    check_counts(batch_size)
    plan_files(output, fasta=fasta, per_base_output=per_base_output)
    out = Path(output)
    for path in (out, Path(per_base_output) if per_base_output else None):
        if path is not None and path.exists() and not overwrite:
            raise HyenaDNAError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    records = list(read_fasta_records(fasta))
    _check_lengths(fasta, records, model.config.l_max, tiling)
    seqs = [r.sequence for r in records]
    per_base = model.score(seqs, reduce="none", batch_size=batch_size, tiling=tiling)
    both = model.score(seqs, "mean", rc_average=True, batch_size=batch_size, tiling=tiling) if rc_average else None
    if per_base_output:
        atomic_write(per_base_output, lambda tmp: _write_per_base(tmp, records, per_base))
    table = _record_table(records, per_base, both)
    atomic_write(out, lambda tmp: Path(tmp).write_text(table))
    return {"records": len(records), "output": str(out)}


def _check_lengths(fasta: str, records: list, l_max: int, tiling: Tiling | None) -> None:
    """A record longer than the model is refused, naming it, unless ``tiling`` tiles it."""
    for r in records:
        if len(r.sequence) > l_max and not (tiling and tiling.enabled):
            raise HyenaDNAError(
                f"{fasta}, line {r.line}: record {r.name!r} has {len(r.sequence):,} bases, "
                f"more than the model's l_max {l_max:,}; --tiling.window tiles it"
            )


def _record_table(records: list, per_base: list[np.ndarray], both: np.ndarray | None) -> str:
    """The TSV: per record its length, scored bases, sum and mean of their log-likelihoods and,
    with ``both`` (rc_average), the mean over both strands."""
    lines = ["name\tlength\tscored\tll_sum\tll_mean" + ("\tll_mean_both_strands" if both is not None else "")]
    for k, (r, scores) in enumerate(zip(records, per_base)):
        scored = scores[~np.isnan(scores)]
        fields = [
            r.name,
            str(len(r.sequence)),
            str(scored.size),
            format_score(scored.sum()),
            format_score(scored.mean()),
        ]
        if both is not None:
            fields.append(format_score(both[k]))
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def _write_per_base(path: str, records, per_base: list[np.ndarray]) -> None:
    with open(path, "w") as fh:
        fh.write("name\tposition\tbase\tll\n")
        for record, scores in zip(records, per_base):
            for pos, (base, value) in enumerate(zip(record.sequence, scores), start=1):
                fh.write(f"{record.name}\t{pos}\t{base}\t{format_score(value)}\n")
