"""A batch run as one self-contained HTML file that people can open offline, years later.

One row per input (thumbnail, status, error, seconds, layer count, backend, settings),
summary figures on top, and columns sortable by a few lines of inline JavaScript.
Thumbnails are inline ``data:`` URIs; nothing is fetched. Every piece of text from a
record is HTML-escaped, and a Content-Security-Policy that allows only this file's own
script and style (by hash) stops injected markup from running even if escaping failed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from layerctl import __version__
from layerctl.errors import LayerctlError
from layerctl.imageio import read_image
from layerctl.outputs import atomic_output, readable

THUMB_SIZE = 96
GENERATOR = "layerctl-report"  # marks the reports a rerun of the batch may rewrite
# Fields every record has; anything else in a record is shown as a setting.
CORE_FIELDS = ("input", "output", "status", "error", "seconds", "backend", "layers", "preview")
# Failures sort first when sorting by status ascending: they need a look.
STATUS_RANK = {"failed": 0, "not tried": 1, "skipped": 2, "ok": 3}

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 12px; }
.summary { display: flex; flex-wrap: wrap; gap: 8px; margin: 0 0 16px; padding: 0; }
.summary div { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 6px 12px; }
.summary dt { font-size: 12px; color: #666; }
.summary dd { margin: 0; font-size: 18px; font-weight: 600; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; position: sticky; top: 0; }
th button { font: inherit; font-weight: 600; border: 0; background: none; padding: 0;
  cursor: pointer; }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.path, td.error, td.settings { overflow-wrap: anywhere; max-width: 28em; }
td.error { color: #a00; }
.status { font-weight: 600; }
tr.status-ok .status { color: #070; }
tr.status-failed .status { color: #a00; }
tr.status-skipped .status, tr.status-nottried .status { color: #777; }
img.thumb { display: block; max-width: 96px; max-height: 96px;
  background: repeating-conic-gradient(#d6d6d6 0 25%, #fff 0 50%) 0 0 / 12px 12px; }
p.settings { color: #555; overflow-wrap: anywhere; }
footer { margin-top: 12px; font-size: 12px; color: #777; }
"""

_SCRIPT = """
for (const th of document.querySelectorAll("th[data-sort]")) {
  th.querySelector("button").addEventListener("click", () => {
    const body = document.querySelector("#results tbody");
    const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    for (const other of document.querySelectorAll("th[aria-sort]")) {
      other.removeAttribute("aria-sort");
    }
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    const numeric = th.dataset.sort === "number";
    const key = (row) => {
      const cell = row.cells[th.cellIndex];
      const text = cell.dataset.value ?? cell.textContent;
      return numeric ? (text === "" ? Infinity : Number(text)) : text;
    };
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b);
      return dir * (numeric ? (x > y) - (x < y) : x.localeCompare(y));
    });
    body.append(...rows);
  });
}
"""

# (header, sort kind or None)
_COLUMNS = (
    ("", None),
    ("input", "text"),
    ("status", "number"),
    ("seconds", "number"),
    ("layers", "number"),
    ("backend", "text"),
    ("settings", None),
    ("error", None),
)


def render(
    records: Sequence[Mapping[str, Any]],
    *,
    title: str = "layerctl batch report",
    settings: Mapping[str, Any] | None = None,
    base: Path | None = None,
    generated: datetime | None = None,
    seconds: float | None = None,
) -> str:
    """The report for ``records`` (the per-input dicts of ``decompose --json``).

    ``settings`` are the run's options, shown once under the summary; fields a record
    has beyond the usual ones get a settings column. ``base`` is the folder the report
    will live in: a row whose preview sheet exists links its thumbnail to it.
    ``seconds``: the run's wall time (workers overlap, so it is not the records' sum).
    """
    generated = generated or datetime.now(timezone.utc)
    csp = "; ".join(
        (
            "default-src 'none'",
            "img-src data:",
            f"style-src '{_sha256(_STYLE)}'",
            f"script-src '{_sha256(_SCRIPT)}'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )
    columns = _columns(records)
    head = "".join(
        f'<th data-sort="{sort}" data-column="{_e(name)}">'
        f'<button type="button">{_e(name)}</button></th>'
        if sort
        else f"<th>{_e(name)}</th>"
        for name, sort in columns
    )
    with_settings = ("settings", None) in columns
    rows = "\n".join(_row(record, base, with_settings) for record in records)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{GENERATOR} {_e(__version__)}">
<title>{_e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{_e(title)}</h1>
{_summary(records, seconds)}
{_settings_line(settings or {})}
<table id="results">
<thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
<footer>layerctl {_e(__version__)} · {_e(generated.strftime("%Y-%m-%d %H:%M:%S %Z"))}</footer>
<script>{_SCRIPT}</script>
</body>
</html>
"""


def check_writable(path: Path, force: bool) -> None:
    """Fail before a batch unless its report may be written: a report layerctl wrote is
    the batch's own summary, rewritten by the rerun that resumes the batch."""
    from layerctl import outputs

    outputs.check_writable(path, force or _is_report(path))


def _is_report(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f'<meta name="generator" content="{GENERATOR} '.encode() in f.read(4096)
    except OSError:
        return False


def write(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    title: str = "layerctl batch report",
    settings: Mapping[str, Any] | None = None,
    seconds: float | None = None,
) -> Path:
    """Render and write the report atomically; refuse to overwrite without ``force``."""
    target = Path(path)
    base = target.parent.resolve()
    text = render(records, title=title, settings=settings, base=base, seconds=seconds)
    with atomic_output(target, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def summary(records: Sequence[Mapping[str, Any]], seconds: float | None = None) -> dict[str, Any]:
    """The figures shown on top: counts by status, time and layers. "total seconds" is
    the run's wall time ``seconds``; without it, the records' sum (one process)."""
    statuses = Counter(str(r.get("status", "unknown")) for r in records)
    if seconds is None:
        seconds = sum(float(r["seconds"]) for r in records if _is_number(r.get("seconds")))
    done = [r for r in records if r.get("status") == "ok"]
    return {
        "inputs": len(records),
        **{status: statuses[status] for status in sorted(statuses, key=_status_rank)},
        "total seconds": round(seconds, 1),
        "seconds per ok input": round(
            sum(float(r.get("seconds") or 0) for r in done) / len(done), 2
        )
        if done
        else None,
        "layers written": sum(_layer_count(r) or 0 for r in done),
    }


def _summary(records: Sequence[Mapping[str, Any]], seconds: float | None) -> str:
    items = "".join(
        f"<div><dt>{_e(name)}</dt><dd>{_e('–' if value is None else value)}</dd></div>"
        for name, value in summary(records, seconds).items()
    )
    return f'<dl class="summary">{items}</dl>'


def _settings_line(settings: Mapping[str, Any]) -> str:
    if not settings:
        return ""
    pairs = " · ".join(f"{_e(k)}={_e(v)}" for k, v in _flatten(settings))
    return f'<p class="settings">settings: {pairs}</p>'


def _columns(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    """(header, sort kind); the settings column only when some record has extra fields."""
    extras = any(_extra(record) for record in records)
    return [(name, sort) for name, sort in _COLUMNS if extras or name != "settings"]


def _row(record: Mapping[str, Any], base: Path | None, with_settings: bool) -> str:
    status = str(record.get("status", "unknown"))
    seconds = record.get("seconds")
    layers = _layer_count(record) if status == "ok" else None
    settings = "<br>".join(f"{_e(k)}={_e(v)}" for k, v in _flatten(_extra(record)))
    cells = (
        _thumbnail_cell(record, base),
        f'<td class="path">{_e(record.get("input", ""))}</td>',
        f'<td data-value="{_status_rank(status)}"><span class="status">{_e(status)}</span></td>',
        f'<td class="num" data-value="{_e(seconds if _is_number(seconds) else "")}">'
        f"{_e(f'{seconds:.2f}' if _is_number(seconds) else '')}</td>",
        f'<td class="num" data-value="{"" if layers is None else layers}">'
        f"{'' if layers is None else layers}</td>",
        f"<td>{_e(record.get('backend') or '')}</td>",
        f'<td class="settings">{settings}</td>' if with_settings else "",
        f'<td class="error">{_e(record.get("error") or "")}</td>',
    )
    return f'<tr class="status-{_e(_css_word(status))}">{"".join(cells)}</tr>'


def _thumbnail_cell(record: Mapping[str, Any], base: Path | None) -> str:
    uri = thumbnail_uri(Path(str(record.get("input", ""))))
    if uri is None:
        return "<td></td>"
    image = f'<img class="thumb" alt="" src="{uri}">'
    sheet = record.get("preview")
    if base is not None and sheet and Path(str(sheet)).is_file():
        relative = Path(os.path.relpath(Path(str(sheet)).resolve(), base)).as_posix()
        href = quote(os.fsencode(relative))  # the file's real bytes, percent-encoded
        image = f'<a href="{_e(href)}" title="contact sheet">{image}</a>'
    return f"<td>{image}</td>"


def thumbnail_uri(path: Path, size: int = THUMB_SIZE) -> str | None:
    """A small WebP of the input as a ``data:`` URI; None if it cannot be read."""
    from PIL import Image

    try:
        pixels = read_image(path).pixels
    except LayerctlError:
        return None
    image = Image.fromarray(pixels, "RGBA")
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=80, method=4)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _extra(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in CORE_FIELDS}


def _flatten(fields: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """(key, value) pairs without empty values; a nested dict gives its own fields
    (prefixed with its name where a key repeats)."""
    seen: set[str] = set()
    for key, value in fields.items():
        inner = value.items() if isinstance(value, Mapping) else [(key, value)]
        for sub, item in inner:
            if item is None or item == () or item == []:
                continue
            name = f"{key}.{sub}" if sub in seen else sub
            seen.add(sub)
            yield name, item


def _layer_count(record: Mapping[str, Any]) -> int | None:
    """Pixel layers written: a count, or the leaves of the layer records' group tree."""
    layers = record.get("layers")
    if isinstance(layers, int) and not isinstance(layers, bool):
        return layers
    if isinstance(layers, Sequence) and not isinstance(layers, str):
        return sum(_leaves(layer) for layer in layers)
    return None


def _leaves(layer: Any) -> int:
    children = layer.get("children") if isinstance(layer, Mapping) else None
    return sum(_leaves(child) for child in children) if children else 1


def _status_rank(status: str) -> int:
    return STATUS_RANK.get(status, 1)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _css_word(text: str) -> str:
    return "".join(c for c in text if c.isascii() and (c.isalnum() or c == "-")) or "unknown"


def _sha256(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"sha256-{digest}"


def _e(value: Any) -> str:
    return html.escape(readable(str(value)), quote=True)
