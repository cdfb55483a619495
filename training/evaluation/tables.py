"""Table 1 (methods x metrics) and Table S3 (motion fidelity per action class) as markdown."""
from __future__ import annotations

import math

from interdyn.metrics import registry

from .pooling import metric_value


def _fmt(value, spec: str) -> str:
    value = metric_value(value)
    if value is None or not math.isfinite(value):
        return "n/a"
    return spec.format(value)


def table1_markdown(results: dict) -> str:
    """Table 1 of the paper: one row per method, SSIM↑ PSNR↑ LPIPS↓ FID↓ KID↓ FVD↓ KVD↓ MF↑."""
    columns = registry.columns()
    header = "| Method | " + " | ".join(c.header for c in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    notes = {}
    for method, entry in results["methods"].items():
        cells = []
        for c in columns:
            cells.append(_fmt(entry["metrics"].get(c.key), c.fmt))
            if c.key in entry["unavailable"]:
                notes.setdefault(c.key, entry["unavailable"][c.key])
        lines.append(f"| {entry['name']} | " + " | ".join(cells) + " |")
    n = results["settings"]["num_clips"]
    lines += ["", f"{n} clips; {results['settings']['tracker']} for MF."]
    headers = {c.key: c.header for c in columns}
    by_reason: dict[str, list[str]] = {}
    for key, reason in notes.items():
        by_reason.setdefault(reason, []).append(headers[key])
    for reason, columns in by_reason.items():
        lines.append(f"- {', '.join(columns)} n/a: {reason}")
    return "\n".join(lines) + "\n"


def table_s3_markdown(results: dict) -> str:
    """Table S3 of the paper: mean motion fidelity per action class (one column per method)."""
    column = registry.MOTION_FIDELITY.column
    methods = list(results["methods"])
    names = [results["methods"][m]["name"] for m in methods]
    lines = ["| Class | Count | " + " | ".join(f"{column.header} {n}" for n in names) + " |",
             "|" + "---|" * (len(methods) + 2)]
    for label, entry in results["per_class"].items():
        cells = [_fmt(entry[column.key][m], column.fmt) for m in methods]
        lines.append(f"| {label or '(no label)'} | {entry['count']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
