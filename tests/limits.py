"""Assertions for numeric thresholds that state their margin on failure: measured, limit and their ratio.

A threshold is derived in the test from the quantity's own scale (a fraction of a static baseline, of
the motion, of a first loss) with its headroom named there; these helpers only say, when it fails, by
how much.
"""
from __future__ import annotations


def _message(what: str, measured: float, limit: float, relation: str, unit: str) -> str:
    ratio = measured / limit if limit else float("inf")
    return (f"{what}: measured {measured:.4g}{unit}, limit {limit:.4g}{unit} (must be {relation} it), "
            f"ratio {ratio:.3f}")


def assert_below(measured: float, limit: float, what: str, unit: str = "", inclusive: bool = False) -> None:
    """``measured < limit`` (``<=`` with ``inclusive``), else an AssertionError with measured, limit, ratio."""
    ok = measured <= limit if inclusive else measured < limit
    assert ok, _message(what, float(measured), float(limit), "<=" if inclusive else "<", unit)


def assert_above(measured: float, limit: float, what: str, unit: str = "", inclusive: bool = False) -> None:
    """``measured > limit`` (``>=`` with ``inclusive``), else an AssertionError with measured, limit, ratio."""
    ok = measured >= limit if inclusive else measured > limit
    assert ok, _message(what, float(measured), float(limit), ">=" if inclusive else ">", unit)
