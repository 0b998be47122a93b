"""Printing a run's result table."""
from __future__ import annotations

import math
from typing import Any


#: the metrics whose ``_std`` is the spread over every landmark/vertex of every frame (the ± of FC-4DFS
#: Tables 2-4), with their variants (``e_lm_hidden``); the only ones a run's table shows with ±
POINT_SPREAD = ("e_lm", "e_mesh")


def _point_spread(metric: str) -> bool:
    return any(metric == m or metric.startswith(m + "_") for m in POINT_SPREAD)


def result_table(rows: list[dict[str, Any]], default_gen: str | None, default_dec: str | None) -> str:
    """One run's rows; "±" only on E_lm/E_mesh, where it is the std over every point of every frame."""
    from tabulate import tabulate

    metrics: list[str] = []
    for r in rows:
        for k in r.get("metrics", {}):
            if not k.endswith("_std") and k not in metrics:
                metrics.append(k)
    out = []
    for r in rows:
        m = r.get("metrics", {})
        cells = [r.get("setting", ""), r.get("generator", default_gen) or "-", r.get("decoder", default_dec) or "-",
                 r.get("n_items", "")]
        for k in metrics:
            v = m.get(k)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("")
            else:
                s = m.get(f"{k}_std") if _point_spread(k) else None
                cells.append(f"{v:.4g}" + (f" ± {s:.3g}" if s is not None else ""))
        out.append(cells)
    return tabulate(out, headers=["setting", "generator", "decoder", "n", *metrics], tablefmt="github")


def print_result(result: Any) -> None:
    cfg = result.config
    pipeline = getattr(cfg, "pipeline", None)
    what = f"pipeline={pipeline}" if pipeline else f"gen={cfg.generator or '-'} · dec={cfg.decoder or '-'}"
    print(f"\n{cfg.protocol} · {cfg.dataset} · {what} · "
          f"budget={cfg.budget} · seed={cfg.seed}" + (" (reused finished run)" if result.reused else ""))
    if pipeline:
        from fc4dfs.benchmark.runner import PIPELINE_DECODER

        print(result_table(result.record["rows"], pipeline, PIPELINE_DECODER))
    else:
        print(result_table(result.record["rows"], cfg.generator, cfg.decoder))
    print("± is the std over every landmark/vertex of every frame (e_lm, e_mesh: the ± of FC-4DFS Tables 2-4); "
          "the other metrics are means over the n test items (each item's value: per_item.json)")
    print(f"run directory: {result.run_dir}")
