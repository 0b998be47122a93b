"""A run's printed table: "±" means one thing (the spread over points of E_lm / E_mesh)."""
from __future__ import annotations

from fc4dfs.benchmark.report import result_table


def test_run_table_shows_plus_minus_only_for_the_point_spread_of_errors():
    rows = [{"setting": "e2e", "n_items": 6, "metrics": {"e_lm": 1.25, "e_lm_std": 0.5, "e_mesh": 0.75,
                                                         "e_mesh_std": 0.25, "ca": 50.0, "ca_std": 50.0,
                                                         "smoothness": 0.125, "smoothness_std": 0.0625}}]
    table = result_table(rows, "g", "d")
    cells = [c.strip() for c in table.splitlines()[2].strip("|").split("|")]
    assert cells == ["e2e", "g", "d", "6", "1.25 ± 0.5", "0.75 ± 0.25", "50", "0.125"], table
