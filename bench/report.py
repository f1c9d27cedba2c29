"""Printing result tables and writing bench/out/<name>.json; medians and ratios, never pass/fail."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return "-" if value is None else str(value)


def table(title: str, rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A plain-text table of `columns` (keys of each row)."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = [title, "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) if k else v.ljust(w) for k, (v, w) in enumerate(zip(row, widths, strict=True)))
              for row in cells]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def machine() -> dict:
    load1, load5, _ = os.getloadavg()
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "loadavg_1m_at_end": round(load1, 2), "loadavg_5m_at_end": round(load5, 2)}


def write(name: str, params: dict, rows: list[dict], tables: list[str]) -> Path:
    """bench/out/<name>.json with the parameters, the machine, the rows and the printed tables."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.json"
    payload = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), "params": params, "rows": rows, "tables": tables}
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(f"-> {path}", flush=True)
    return path
