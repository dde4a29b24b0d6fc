"""Character-level DNA tokenizer with HyenaDNA's vocabulary.

One token per base, so a model sees single-nucleotide resolution. Encoding goes through a
256-entry lookup table over bytes (no Python loop per base), so a chromosome-sized string
encodes in a fraction of a second.

Two choices differ from the reference tokenizer on purpose, each switchable:

* soft-masked (lowercase) bases map to their uppercase ids; the reference maps them to
  ``[UNK]``, which silently erases about half of a repeat-masked genome
  (``soft_mask="unk"`` restores that behaviour);
* IUPAC ambiguity codes map to ``N``, and any other character is an error naming the
  character and its position (``unknown="unk"`` maps them to ``[UNK]`` instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from hyenadna.errors import HyenaDNAError

SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]")
BASES = ("A", "C", "G", "T", "N")
VOCAB: dict[str, int] = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + BASES)}

CLS_ID, SEP_ID, BOS_ID, MASK_ID, PAD_ID, RESERVED_ID, UNK_ID = range(7)
A_ID, C_ID, G_ID, T_ID, N_ID = range(7, 12)

IUPAC_AMBIGUOUS = "RYSWKMBDHV"
_COMPLEMENT_FROM = "ACGTNRYSWKMBDHVacgtnryswkmbdhv"
_COMPLEMENT_TO = "TGCANYRSWMKVHDBtgcanyrswmkvhdb"
_COMPLEMENT_TABLE = str.maketrans(_COMPLEMENT_FROM, _COMPLEMENT_TO)

SoftMask = Literal["upper", "unk"]
Unknown = Literal["error", "unk"]
SpecialTokens = Literal["none", "eos", "cls_sep"]
Side = Literal["left", "right"]


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA string, keeping case and complementing IUPAC codes."""
    return seq.translate(_COMPLEMENT_TABLE)[::-1]


def _id_complement_map() -> torch.Tensor:
    table = torch.arange(len(VOCAB), dtype=torch.long)
    for a, b in ((A_ID, T_ID), (C_ID, G_ID)):
        table[a], table[b] = b, a
    return table


ID_COMPLEMENT = _id_complement_map()
"""``ID_COMPLEMENT[id]`` is the id of the complementary base; specials and N map to themselves."""


def reverse_complement_ids(ids: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Reverse complement of token ids along ``dim``, on any device.

    Every position is flipped, padding included: reverse-complement a padded batch before
    padding it, or flip its attention mask with the same call.
    """
    table = ID_COMPLEMENT.to(ids.device)
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(table)):
        raise HyenaDNAError(f"token ids must lie in [0, {len(table)}), got values outside it")
    return table[ids].flip(dim)


def _build_table(soft_mask: SoftMask, unknown: Unknown) -> np.ndarray:
    """Byte -> id table; -1 marks a byte that is an error under ``unknown="error"``."""
    if soft_mask not in ("upper", "unk"):
        raise HyenaDNAError(f"soft_mask must be 'upper' or 'unk', got {soft_mask!r}")
    if unknown not in ("error", "unk"):
        raise HyenaDNAError(f"unknown must be 'error' or 'unk', got {unknown!r}")
    table = np.full(256, -1 if unknown == "error" else UNK_ID, dtype=np.int64)
    upper = {b: VOCAB[b] for b in "ACGTN"} | {c: N_ID for c in IUPAC_AMBIGUOUS}
    for char, idx in upper.items():
        table[ord(char)] = idx
        table[ord(char.lower())] = idx if soft_mask == "upper" else UNK_ID
    return table


class CharacterTokenizer:
    """Encode DNA strings to HyenaDNA token ids and back.

    Args:
        model_max_length: default ``max_length`` for batches (the model's ``l_max``).
        soft_mask: ``"upper"`` maps lowercase bases to their uppercase ids; ``"unk"`` maps them
            to ``[UNK]`` as the reference tokenizer does.
        unknown: ``"error"`` raises on a character that is neither a base nor an IUPAC code;
            ``"unk"`` maps it to ``[UNK]``.
        padding_side: where ``[PAD]`` goes in a batch; HyenaDNA pads on the left so that the
            last position of a causal model is a real base.
        special_tokens: what encoding adds around each sequence: ``"none"``, ``"eos"`` (a
            trailing ``[SEP]``, as in HyenaDNA pretraining) or ``"cls_sep"``
            (``[CLS] ... [SEP]``).
    """

    vocab = VOCAB
    pad_token_id = PAD_ID
    unk_token_id = UNK_ID
    cls_token_id = CLS_ID
    sep_token_id = SEP_ID

    def __init__(
        self,
        model_max_length: int | None = None,
        soft_mask: SoftMask = "upper",
        unknown: Unknown = "error",
        padding_side: Side = "left",
        special_tokens: SpecialTokens = "none",
    ) -> None:
        if padding_side not in ("left", "right"):
            raise HyenaDNAError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if special_tokens not in ("none", "eos", "cls_sep"):
            raise HyenaDNAError(f"special_tokens must be 'none', 'eos' or 'cls_sep', got {special_tokens!r}")
        self.model_max_length = model_max_length
        self.soft_mask = soft_mask
        self.unknown = unknown
        self.padding_side = padding_side
        self.special_tokens = special_tokens
        self._table = _build_table(soft_mask, unknown)
        self._id_to_char = np.array([tok if len(tok) == 1 else "?" for tok in VOCAB])

    @property
    def vocab_size(self) -> int:
        return len(VOCAB)

    def _prefix_suffix(self, special_tokens: SpecialTokens | None) -> tuple[list[int], list[int]]:
        policy = self.special_tokens if special_tokens is None else special_tokens
        if policy == "none":
            return [], []
        if policy == "eos":
            return [], [SEP_ID]
        if policy == "cls_sep":
            return [CLS_ID], [SEP_ID]
        raise HyenaDNAError(f"special_tokens must be 'none', 'eos' or 'cls_sep', got {policy!r}")

    def encode_bases(self, seq: str | bytes, name: str | None = None) -> np.ndarray:
        """Ids of the bases alone (no special tokens), as an int64 numpy array.

        ``name`` (a record name) goes into the error message for an unknown character.
        """
        if isinstance(seq, str):
            try:
                raw = seq.encode("ascii")
            except UnicodeEncodeError as exc:
                where = f" in {name}" if name else ""
                raise HyenaDNAError(f"non-ASCII character {seq[exc.start]!r} at position {exc.start}{where}") from None
        else:
            raw = bytes(seq)
        ids = self._table[np.frombuffer(raw, dtype=np.uint8)]
        if self.unknown == "error":
            bad = np.flatnonzero(ids < 0)
            if bad.size:
                pos = int(bad[0])
                where = f" in {name}" if name else ""
                raise HyenaDNAError(
                    f"unknown character {chr(raw[pos])!r} at position {pos}{where} "
                    f"({bad.size} such characters); expected A, C, G, T, N or an IUPAC code "
                    "(pass unknown='unk' to map them to [UNK])"
                )
        return ids

    def encode(
        self,
        seq: str | bytes,
        special_tokens: SpecialTokens | None = None,
        name: str | None = None,
    ) -> torch.Tensor:
        """Token ids of one sequence (1-D int64 tensor), with the special-token policy applied."""
        prefix, suffix = self._prefix_suffix(special_tokens)
        ids = self.encode_bases(seq, name=name)
        if prefix or suffix:
            ids = np.concatenate([np.asarray(prefix, np.int64), ids, np.asarray(suffix, np.int64)])
        return torch.from_numpy(ids)

    def decode(self, ids: torch.Tensor | np.ndarray | Sequence[int], skip_special: bool = True) -> str:
        """The string for ``ids``; special tokens are dropped, or written as ``[NAME]``."""
        arr = ids.cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        arr = arr.astype(np.int64).ravel()
        if arr.size and (arr.min() < 0 or arr.max() >= len(VOCAB)):
            raise HyenaDNAError(f"token ids must lie in [0, {len(VOCAB)}), got {arr.min()}..{arr.max()}")
        if skip_special:
            return "".join(self._id_to_char[arr[arr >= A_ID]])
        return "".join(SPECIAL_TOKENS[i] if i < A_ID else BASES[i - A_ID] for i in arr.tolist())

    def batch_encode(
        self,
        seqs: Sequence[str | bytes],
        max_length: int | None = None,
        padding: Literal["longest", "max_length"] = "longest",
        truncation: bool = False,
        truncation_side: Side = "right",
        padding_side: Side | None = None,
        special_tokens: SpecialTokens | None = None,
        return_tensors: Literal["pt", "np"] | None = "pt",
    ) -> dict[str, Any]:
        """Encode and pad a batch.

        Returns ``input_ids`` (B, L) int64 and ``attention_mask`` (B, L) bool (True on real
        tokens): torch tensors (``return_tensors="pt"``, the default), numpy arrays (``"np"``) or
        lists of Python ints and bools (``None``), as Hugging Face tokenizers do. Pass the mask to
        the model (``model(ids, attention_mask=mask)``) and either padding side gives the
        unpadded sequences' numbers. Without ``truncation`` a sequence longer than
        ``max_length`` is an error naming its index; with it the bases are cut from
        ``truncation_side`` and the special tokens kept.
        """
        if return_tensors not in ("pt", "np", None):
            raise HyenaDNAError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        if padding not in ("longest", "max_length"):
            raise HyenaDNAError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        side = self.padding_side if padding_side is None else padding_side
        if side not in ("left", "right") or truncation_side not in ("left", "right"):
            raise HyenaDNAError("padding_side and truncation_side must be 'left' or 'right'")
        max_length = self.model_max_length if max_length is None else max_length
        if padding == "max_length" and max_length is None:
            raise HyenaDNAError("padding='max_length' needs max_length (or model_max_length)")
        prefix, suffix = self._prefix_suffix(special_tokens)
        n_special = len(prefix) + len(suffix)
        rows = []
        for i, seq in enumerate(seqs):
            ids = self.encode_bases(seq, name=f"sequence {i}")
            if max_length is not None and ids.size + n_special > max_length:
                if not truncation:
                    raise HyenaDNAError(
                        f"sequence {i} has {ids.size + n_special} tokens, more than max_length "
                        f"{max_length} (pass truncation=True to cut it)"
                    )
                keep = max(max_length - n_special, 0)
                ids = ids[:keep] if truncation_side == "right" else ids[ids.size - keep :]
            rows.append(np.concatenate([np.asarray(prefix, np.int64), ids, np.asarray(suffix, np.int64)]))
        batch = pad_ids(rows, side, width=max_length if padding == "max_length" else None)
        if return_tensors == "pt":
            return batch
        arrays = {key: value.numpy() for key, value in batch.items()}
        return arrays if return_tensors == "np" else {key: value.tolist() for key, value in arrays.items()}

    __call__ = batch_encode


def pad_ids(rows: Sequence[np.ndarray], side: Side = "left", width: int | None = None) -> dict[str, torch.Tensor]:
    """Stack 1-D id arrays into ``input_ids`` (B, W) padded with ``[PAD]`` and a bool ``attention_mask``.

    ``width`` defaults to the longest row. HyenaDNA is causal, so left padding keeps the last
    position a real base; a bidirectional pooling can use either side.
    """
    if side not in ("left", "right"):
        raise HyenaDNAError(f"padding side must be 'left' or 'right', got {side!r}")
    longest = max((len(r) for r in rows), default=0)
    width = longest if width is None else width
    if longest > width:
        raise HyenaDNAError(f"a row of {longest} tokens does not fit a padded width of {width}")
    input_ids = np.full((len(rows), width), PAD_ID, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, r in enumerate(rows):
        sl = slice(width - len(r), width) if side == "left" else slice(0, len(r))
        input_ids[i, sl] = r
        mask[i, sl] = True
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first, so memory peaks early)."""
    if batch_size < 1:
        raise HyenaDNAError(f"batch_size must be positive, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
