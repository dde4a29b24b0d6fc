"""``hyenadna motifs``: patterns from an attribution file, matched against JASPAR (see :mod:`hyenadna.motifs`).

Writes into the output folder:

* ``motifs.json``: per output, its patterns (seqlet count, consensus, PPM, CWM, seqlet places,
  best JASPAR matches) and the settings;
* ``motifs.tsv``: one line per pattern with its best match;
* ``motifs.meme``: the PPMs in MEME's minimal format, for Tomtom, FIMO and the like;
* ``logos/`` with the plot extra installed: an information logo of each pattern.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hyenadna.errors import HyenaDNAError

DEFAULT_JASPAR = Path("/usr/share/pscan-chip/jaspar_2016.wil")  # Debian's pscan-chip-data


def meme_text(entries: list[tuple[str, np.ndarray, int]]) -> str:
    """MEME minimal motif format: (name, PPM (W, 4), sites) per motif."""
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]  # fmt: skip
    for name, ppm, sites in entries:
        lines += [f"MOTIF {name}", f"letter-probability matrix: alength= 4 w= {len(ppm)} nsites= {sites} E= 0"]
        lines += [" ".join(f"{p:.4f}" for p in row) for row in ppm]
        lines.append("")
    return "\n".join(lines)


def run_motifs(
    attributions: str,
    output: str,
    method: str = "grad_x_input",
    jaspar: str | None = None,
    targets: list[str] | None = None,
    by_label: bool = True,
    core: int = 10,
    flank: int = 5,
    per_sequence: int = 2,
    quantile: float = 0.99,
    min_similarity: float = 0.6,
    min_seqlets: int = 10,
    top: int = 5,
    overwrite: bool = False,
) -> dict:
    """Find the recurring high-attribution patterns of each output and match them against JASPAR.

    Args:
        attributions: an HDF5 file of ``hyenadna explain``.
        output: a folder for motifs.json, motifs.tsv, motifs.meme and logos/.
        method: which attributions to read: grad_x_input, integrated_gradients or ism.
        jaspar: JASPAR matrices (JASPAR flat format or a pscan .wil file); default: Debian's
            pscan-chip-data JASPAR 2016 when installed, else no matching.
        targets: the outputs to find motifs for (default: every output).
        by_label: with labels in the file, look for an output's motifs in the sequences labelled
            with it (what drives a class where it is present).
        core: bases summed to find a seqlet.
        flank: bases kept each side of a seqlet's core.
        per_sequence: seqlets per sequence at most.
        quantile: a window becomes a seqlet above this quantile of all window sums.
        min_similarity: cosine similarity that puts a seqlet into a pattern.
        min_seqlets: smaller patterns are dropped.
        top: JASPAR matches kept per pattern.
        overwrite: replace an existing output folder's files.
    """
    from hyenadna import motifs, plotting
    from hyenadna.atomic import atomic_write_text
    from hyenadna.pipelines.explain import contrast, ism_importance, read_attributions

    folder = Path(output)
    if (folder / "motifs.json").exists() and not overwrite:
        raise HyenaDNAError(f"{folder / 'motifs.json'} exists; pass --overwrite to replace it")
    data = read_attributions(attributions, method)
    outputs, labels = data["outputs"], data["labels"]
    chosen = targets or outputs
    unknown = [t for t in chosen if t not in outputs]
    if unknown:
        raise HyenaDNAError(f"targets {unknown} are not outputs of the model ({', '.join(outputs)})")
    jaspar_path = Path(jaspar) if jaspar else (DEFAULT_JASPAR if DEFAULT_JASPAR.is_file() else None)
    database = motifs.read_jaspar(jaspar_path) if jaspar_path else None
    settings = {"core": core, "flank": flank, "per_sequence": per_sequence, "quantile": quantile,
                "min_similarity": min_similarity, "min_seqlets": min_seqlets}  # fmt: skip
    report: dict[str, Any] = {"attributions": str(attributions), "method": method, "jaspar": str(jaspar_path),
                              "settings": settings, "outputs": {}}  # fmt: skip
    tsv = ["output\tpattern\tseqlets\tsequences\tconsensus\tbest_match\tbest_name\tscore"]
    meme, drawn = [], []
    for target in chosen:
        index = outputs.index(target)
        rows = range(len(data["sequences"]))
        if by_label and labels is not None and len(outputs) > 1:
            rows = [i for i in rows if target in labels[i]]
        seqs = [data["sequences"][i] for i in rows]
        scores = contrast([data["arrays"][i] for i in rows], index)
        if method == "ism":  # deltas of mutants: the own base's importance is the loss its replacement causes
            scores = [ism_importance(a, seq) for a, seq in zip(scores, seqs)]
        found = motifs.discover_motifs(seqs, scores, database, core, flank, per_sequence, quantile,
                                       min_similarity=min_similarity, min_seqlets=min_seqlets, top=top)  # fmt: skip
        entries = []
        for k, pattern in enumerate(found):
            name = f"{target}_pattern{k}"
            best = pattern.matches[0] if pattern.matches else {"id": "", "name": "", "score": float("nan")}
            entries.append({
                "name": name, "seqlets": len(pattern.seqlets), "consensus": pattern.consensus,
                "ppm": np.round(pattern.ppm, 4).tolist(), "cwm": np.round(pattern.cwm, 5).tolist(),
                "matches": pattern.matches,
                "places": [{"record": data["names"][rows[s.index]], "start": s.start, "end": s.end}
                           for s in pattern.seqlets],
            })  # fmt: skip
            tsv.append(f"{target}\t{k}\t{len(pattern.seqlets)}\t{len(seqs)}\t{pattern.consensus}\t{best['id']}\t"
                       f"{best['name']}\t{best['score']}")  # fmt: skip
            meme.append((name, pattern.ppm, len(pattern.seqlets)))
            if plotting.plotting_available():
                title = f"{name}: {len(pattern.seqlets)} seqlets" + (f", {best['name']} {best['score']:.2f}"
                                                                     if pattern.matches else "")  # fmt: skip
                drawn.append(str(plotting.motif_logo(pattern.ppm, folder / "logos" / f"{name}.png", title)))
        report["outputs"][target] = {"sequences": len(seqs), "patterns": entries}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "motifs.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(folder / "motifs.tsv", "\n".join(tsv) + "\n")
    atomic_write_text(folder / "motifs.meme", meme_text(meme))
    summary = {t: [(e["consensus"], e["seqlets"], (e["matches"] or [{}])[0].get("name")) for e in v["patterns"][:5]]
               for t, v in report["outputs"].items()}  # fmt: skip
    return {"output": str(folder), "patterns": summary, "logos": len(drawn)}
