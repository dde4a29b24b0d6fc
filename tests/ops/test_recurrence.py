"""The one Hyena gate recurrence (:mod:`hyenadna.ops.recurrence`) that the fast forms share: which
gate meets which filter, in which order (tests/ops/test_paths.py holds each form's numbers to the
reference)."""

from __future__ import annotations

from hyenadna.ops.recurrence import gate_recurrence


def test_step_o_meets_gate_n_minus_1_minus_o():
    seen = []

    def step(o: int, gate: str, value: str) -> str:
        seen.append((o, gate))
        return f"k{o}*({gate}*{value})"

    assert gate_recurrence("v", ["g1", "g2", "g3"], step) == "k2*(g1*k1*(g2*k0*(g3*v)))"
    assert seen == [(0, "g3"), (1, "g2"), (2, "g1")]
    assert gate_recurrence("v", [], step) == "v"  # a form that fuses every step itself
