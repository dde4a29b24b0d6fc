"""``hyenadna motifs``: patterns from an attribution file, matched against JASPAR (see :mod:`hyenadna.analysis.motifs`).

Writes into the output folder:

* ``motifs.json``: per output, its patterns (seqlet count, consensus, PPM, CWM, seqlet places,
  best JASPAR matches) and the settings;
* ``motifs.tsv``: one line per pattern with its best match;
* ``motifs.meme``: the PPMs in MEME's minimal format, for Tomtom, FIMO and the like;
* ``logos/`` with the plot extra installed: an information logo of each pattern, named after
  its ``id`` (the output name made safe as a file name); motifs.json lists them (``logos``),
  so that ``--overwrite`` removes the logos of the run it replaces and nothing else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hyenadna.analysis.attribution_file import read_attributions
from hyenadna.errors import HyenaDNAError
from hyenadna.io.file_plan import FilePlan, inside

DEFAULT_JASPAR = Path("/usr/share/pscan-chip/jaspar_2016.wil")  # Debian's pscan-chip-data
MOTIF_FILES = ("motifs.json", "motifs.tsv", "motifs.meme")
LOGOS = "logos"


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

    Every option and path is checked, and both inputs read, before the output folder is touched.

    Args:
        attributions: an HDF5 file of ``hyenadna explain``.
        output: a folder for motifs.json, motifs.tsv, motifs.meme and logos/ (made when missing;
            its parent folder must exist). Logo and MEME names come from the output names made
            safe as file names (``id`` in motifs.json).
        method: which attributions to read: grad_x_input, integrated_gradients or ism.
        jaspar: JASPAR matrices (JASPAR flat format or a pscan .wil file, gzipped or not;
            counts must be finite, not negative, and no column all zero); default: Debian's
            pscan-chip-data JASPAR 2016 when installed, else no matching.
        targets: the outputs to find motifs for, each once (default: every output; an empty
            list is refused).
        by_label: with labels in the file, look for an output's motifs in the sequences labelled
            with it (what drives a class where it is present).
        core: bases summed to find a seqlet (>= 1).
        flank: bases kept each side of a seqlet's core (>= 0).
        per_sequence: seqlets per sequence at most (>= 1).
        quantile: a window becomes a seqlet above this quantile of all window sums (0 to 1).
        min_similarity: cosine similarity that puts a seqlet into a pattern (-1 to 1).
        min_seqlets: smaller patterns are dropped (>= 1).
        top: JASPAR matches kept per pattern (>= 1).
        overwrite: replace an existing output folder's files; the logos of the run replaced
            (those its motifs.json lists) are removed, nothing else in the folder is.
    """
    from hyenadna.analysis import motifs

    motifs.check_settings(core, flank, per_sequence, quantile, min_similarity=min_similarity,
                          min_seqlets=min_seqlets, top=top)  # fmt: skip
    chosen = _check_targets(targets)
    folder = Path(output)
    jaspar_path = Path(jaspar) if jaspar else (DEFAULT_JASPAR if DEFAULT_JASPAR.is_file() else None)
    motifs_plan(attributions, jaspar_path, folder)
    existing = _refuse_existing(folder, overwrite)
    data = read_attributions(attributions, method)
    chosen = _chosen_outputs(attributions, data["outputs"], chosen)
    database = motifs.read_jaspar(jaspar_path) if jaspar_path else None
    settings = {"core": core, "flank": flank, "per_sequence": per_sequence, "quantile": quantile,
                "min_similarity": min_similarity, "min_seqlets": min_seqlets}  # fmt: skip
    found = {target: _find_patterns(data, target, method, by_label, database, settings, top) for target in chosen}
    report: dict[str, Any] = {"attributions": str(attributions), "method": method, "jaspar": str(jaspar_path),
                              "settings": settings, "outputs": {}, "logos": []}  # fmt: skip
    tables = _pattern_tables(data["names"], found, report)
    previous = _previous_logos(folder) if existing else []
    _write_folder(folder, report, tables)
    _remove_logos(folder, [name for name in previous if name not in report["logos"]])
    summary = {t: [(e["consensus"], e["seqlets"], (e["matches"] or [{}])[0].get("name")) for e in v["patterns"][:5]]
               for t, v in report["outputs"].items()}  # fmt: skip
    return {"output": str(folder), "patterns": summary, "logos": len(report["logos"])}


class PatternTables(NamedTuple):
    """What the folder gets besides motifs.json: the TSV lines, the MEME entries, the logos to draw."""

    tsv: list[str]
    meme: list[tuple[str, np.ndarray, int]]
    logos: list[tuple[str, np.ndarray, str]]


def _refuse_existing(folder: Path, overwrite: bool) -> list[str]:
    """The motif files already in ``folder``; any needs ``--overwrite``."""
    existing = [name for name in MOTIF_FILES if (folder / name).exists()]
    if existing and not overwrite:
        raise HyenaDNAError(f"{folder / existing[0]} exists; pass --overwrite to replace it")
    return existing


def _chosen_outputs(attributions: str, outputs: list[str], chosen: list[str] | None) -> list[str]:
    """The outputs to find motifs for (every one by default), each an output of the file, whose
    output names must be distinct."""
    if len(set(outputs)) != len(outputs):
        raise HyenaDNAError(f"{attributions}: output names repeat ({', '.join(outputs)})")
    chosen = chosen or outputs
    unknown = [t for t in chosen if t not in outputs]
    if unknown:
        raise HyenaDNAError(f"targets {unknown} are not outputs of the model ({', '.join(outputs)})")
    return chosen


def _find_patterns(data: dict[str, Any], target: str, method: str, by_label: bool, database, settings: dict,
                   top: int) -> tuple[list[int], list]:  # fmt: skip
    """The records searched for ``target`` (with labels and several outputs: those labelled with
    it) and the patterns found in them, each with its best JASPAR matches."""
    from hyenadna.analysis import motifs
    from hyenadna.analysis.attribution import contrast, ism_importance

    outputs, labels = data["outputs"], data["labels"]
    index = outputs.index(target)
    rows = list(range(len(data["sequences"])))
    if by_label and labels is not None and len(outputs) > 1:
        rows = [i for i in rows if target in labels[i]]
    seqs = [data["sequences"][i] for i in rows]
    scores = contrast([data["arrays"][i] for i in rows], index)
    if method == "ism":  # deltas of mutants: the own base's importance is the loss its replacement causes
        scores = [ism_importance(a, seq) for a, seq in zip(scores, seqs)]
    return rows, motifs.discover_motifs(seqs, scores, database, settings["core"], settings["flank"],
                                        settings["per_sequence"], settings["quantile"],
                                        min_similarity=settings["min_similarity"],
                                        min_seqlets=settings["min_seqlets"], top=top)  # fmt: skip


def _pattern_tables(record_names: list[str], found: dict[str, tuple[list[int], list]], report: dict) -> PatternTables:
    """Each target's patterns into ``report["outputs"]``, and the lines of the other files."""
    from hyenadna.io.file_plan import unique_names

    ids = iter(unique_names([f"{t}_pattern{k}" for t, (_, patterns) in found.items() for k in range(len(patterns))],
                            "pattern"))  # fmt: skip
    tables = PatternTables(["output\tpattern\tseqlets\tsequences\tconsensus\tbest_match\tbest_name\tscore"], [], [])
    for target, (rows, patterns) in found.items():
        entries = []
        for k, pattern in enumerate(patterns):
            name, motif_id = f"{target}_pattern{k}", next(ids)
            best = pattern.matches[0] if pattern.matches else {"id": "", "name": "", "score": float("nan")}
            entries.append({
                "name": name, "id": motif_id, "seqlets": len(pattern.seqlets), "consensus": pattern.consensus,
                "ppm": np.round(pattern.ppm, 4).tolist(), "cwm": np.round(pattern.cwm, 5).tolist(),
                "matches": pattern.matches,
                "places": [{"record": record_names[rows[s.index]], "start": s.start, "end": s.end}
                           for s in pattern.seqlets],
            })  # fmt: skip
            cells = [target, k, len(pattern.seqlets), len(rows), pattern.consensus, best["id"], best["name"],
                     best["score"]]  # fmt: skip
            tables.tsv.append("\t".join(_cell(c) for c in cells))
            tables.meme.append((motif_id, pattern.ppm, len(pattern.seqlets)))
            title = f"{name}: {len(pattern.seqlets)} seqlets" + (f", {best['name']} {best['score']:.2f}"
                                                                 if pattern.matches else "")  # fmt: skip
            tables.logos.append((f"{motif_id}.png", pattern.ppm, title))
        report["outputs"][target] = {"sequences": len(rows), "patterns": entries}
    return tables


def _write_folder(folder: Path, report: dict, tables: PatternTables) -> None:
    """The logos (with the plot extra; listed in ``report``), motifs.json, motifs.tsv and motifs.meme."""
    from hyenadna.analysis import plotting
    from hyenadna.io.atomic import atomic_write_text

    folder.mkdir(exist_ok=True)  # its parent exists (checked by the plan)
    if plotting.plotting_available():
        for file_name, ppm, title in tables.logos:
            plotting.motif_logo(ppm, inside(folder, os.path.join(LOGOS, file_name)), title)
            report["logos"].append(file_name)
    atomic_write_text(folder / "motifs.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(folder / "motifs.tsv", "\n".join(tables.tsv) + "\n")
    atomic_write_text(folder / "motifs.meme", meme_text(tables.meme))


def _check_targets(targets: list[str] | None) -> list[str] | None:
    if targets is None:
        return None
    chosen = [targets] if isinstance(targets, str) else list(targets)
    if not chosen:
        raise HyenaDNAError("--targets is empty: name some outputs, or leave it out for every output")
    repeated = sorted({t for t in chosen if chosen.count(t) > 1})
    if repeated:
        raise HyenaDNAError(f"--targets names {', '.join(map(repr, repeated))} more than once")
    return chosen


def motifs_plan(attributions: str, jaspar: str | os.PathLike | None, folder: Path) -> FilePlan:
    """The files ``motifs`` reads and writes, checked (:class:`hyenadna.io.file_plan.FilePlan`): the
    output folder is a folder (or new, in an existing folder), and none of the files it writes
    there is the attribution file or the JASPAR file. Other files may share the folder."""
    FilePlan("motifs").output("--output", folder, folder=True)
    plan = FilePlan("motifs")
    plan.input("--attributions", attributions)
    plan.input("--jaspar", jaspar)
    for name in MOTIF_FILES:
        plan.output(f"--output ({name})", folder / name, make_parent=True)
    plan.output(f"--output ({LOGOS}/)", folder / LOGOS, folder=True, make_parent=True)
    return plan.check()


def _cell(value: object) -> str:
    """A TSV cell: tabs and line breaks in names would shift or split the row."""
    return " ".join(str(value).replace("\t", " ").splitlines())


def _previous_logos(folder: Path) -> list[str]:
    """The logo files the run being replaced wrote: its motifs.json's ``logos``, or, for one
    written before that list, its patterns' names."""
    try:
        report = json.loads((folder / "motifs.json").read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(report, dict):
        return []
    if isinstance(report.get("logos"), list):
        return [name for name in report["logos"] if isinstance(name, str)]
    outputs = report.get("outputs")
    names = []
    for value in outputs.values() if isinstance(outputs, dict) else []:
        for entry in value.get("patterns", []) if isinstance(value, dict) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.append(f"{entry['name']}.png")
    return names


def _remove_logos(folder: Path, names: list[str]) -> None:
    """Remove the listed logos of a replaced run: ``.png`` files inside ``logos/`` only."""
    for name in names:
        try:
            path = inside(folder, os.path.join(LOGOS, name))
            inside(folder / LOGOS, name)
        except HyenaDNAError:
            continue  # a name that leaves logos/ was never ours to remove
        if path.suffix == ".png" and path.is_file() and not path.is_symlink():
            path.unlink()
