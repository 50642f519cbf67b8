"""The HTML batch report: content and escaping, then in a real headless Chromium."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from chromium import CHROMIUM, CHROMIUM_FLAGS, needs_chromium, run_chromium
from PIL import Image

from layerctl import report
from layerctl.errors import OutputExists

HOSTILE = [
    'evil"<script>alert(1)<.png',
    "x' onerror='alert(2).png",
    "&lt;b&gt;<tr><td>fake.png",
]
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def records(tmp_path: Path, flat_design: np.ndarray) -> list[dict]:
    """A batch of five: three fine (one with a hostile name), two failed (one unreadable)."""
    folder = tmp_path / "in"
    folder.mkdir()
    names = ["poster.png", *HOSTILE, "broken.png"]
    rows = []
    for i, name in enumerate(names):
        source = folder / name
        if name == "broken.png":
            source.write_bytes(b"not an image")
        else:
            Image.fromarray(np.roll(flat_design, 9 * i, axis=1)).save(source, format="PNG")
        ok = i in (0, 1, 3)
        rows.append(
            {
                "input": str(source),
                "output": str(source.with_suffix(".psd")),
                "status": "ok" if ok else "failed",
                "error": None if ok else f'{name}: <img src=x onerror="alert(3)"> failed',
                "seconds": [2.5, 0.25, None, 7.0, 0.01][i],
                "backend": "classic",
                "layers": [{"name": f"L{j}"} for j in range(i + 2)] if ok else None,
                "parameters": {"layers": 4, "seed": i, "prompt": '"><b>bold</b>'},
            }
        )
    return rows


def test_summary_figures(records: list[dict]) -> None:
    figures = report.summary(records)
    assert figures["inputs"] == 5
    assert (figures["ok"], figures["failed"]) == (3, 2)
    assert figures["total seconds"] == pytest.approx(9.8)
    assert figures["seconds per ok input"] == pytest.approx((2.5 + 0.25 + 7.0) / 3, abs=0.01)
    assert figures["layers written"] == 2 + 3 + 5
    assert list(figures).index("failed") < list(figures).index("ok")


def test_text_is_escaped_and_nothing_is_external(records: list[dict]) -> None:
    text = report.render(records, settings={"layers": 4, "prompt": "<i>tag</i>"})
    assert "alert(" in text  # the names are there, but only as text:
    for raw in ("<script>alert", "<img src=x", "<b>bold", "' onerror='", "<tr><td>fake", "<i>"):
        assert raw not in text
    assert "layers=4 · prompt=&lt;i&gt;tag&lt;/i&gt;" in text  # the run's settings, once
    assert text.count("seed=") == len(records)  # a record's own fields, in its row
    page = _Page.parse(text)
    assert page.scripts == 1 and not page.event_handlers
    assert page.sources and all(src.startswith("data:image/webp;base64,") for src in page.sources)
    assert not page.links  # no preview sheets in these records: nothing to link to
    assert "default-src 'none'" in page.csp


def test_settings_column_only_for_records_with_extra_fields(records: list[dict]) -> None:
    with_extras = _Page.parse(report.render(records))
    assert len(with_extras.rows[0]) == 8 and "seed=0" in with_extras.rows[0][6]
    plain = [{k: v for k, v in r.items() if k != "parameters"} for r in records]
    page = _Page.parse(report.render(plain))
    assert len(page.rows[0]) == 7 and page.rows[-1][-1].endswith("failed")
    assert page.rows[2][4] == ""  # a failed input has no layer count
    grouped = {**plain[0], "layers": [{"name": "bg"}, {"name": "g", "children": [{}, {}, {}]}]}
    assert _Page.parse(report.render([grouped])).rows[0][4] == "4"  # pixel layers, not groups


def test_thumbnail_links_to_an_existing_preview_sheet(tmp_path: Path, records: list[dict]) -> None:
    sheet = tmp_path / "out" / "poster.psd.preview.png"
    sheet.parent.mkdir()
    Image.new("RGB", (4, 4)).save(sheet)
    records[0]["preview"] = str(sheet)
    records[1]["preview"] = str(tmp_path / "missing.png")
    page = _Page.parse(report.render(records, base=tmp_path / "reports"))
    assert page.links == ["../out/poster.psd.preview.png"]


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path: Path, records: list[dict]) -> None:
    target = tmp_path / "report.html"
    report.write(records, target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(OutputExists):
        report.write(records, target)
    report.write(records[:1], target, force=True)
    assert len(_Page.parse(target.read_text(encoding="utf-8")).rows) == 1


@needs_chromium
@pytest.mark.slow
def test_chromium_shows_a_row_per_input(tmp_path: Path, records: list[dict]) -> None:
    target = report.write(records, tmp_path / "report.html")
    dom = run_chromium(tmp_path, "--dump-dom", target.as_uri())
    page = _Page.parse(dom)
    assert [Path(row[1]).name for row in page.rows] == [Path(r["input"]).name for r in records]
    assert [row[2] for row in page.rows] == [r["status"] for r in records]
    assert page.scripts == 1 and not page.event_handlers  # parsed by a browser, still inert

    shot = tmp_path / "report.png"
    run_chromium(tmp_path, "--window-size=1200,800", f"--screenshot={shot}", target.as_uri())
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (800, 1200, 3)
    # the page drew something: text, table lines and the reddish thumbnails
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
    assert ((image[..., 0] > 150) & (image[..., 1] < 90)).sum() > 200


@needs_chromium
@pytest.mark.slow
def test_csp_stops_markup_that_escaped_escaping(tmp_path: Path, records: list[dict]) -> None:
    """Defence in depth: even a raw injected script must not run, while ours does."""
    text = report.render(records).replace(
        "<h1>", "<script>document.title = 'pwned'</script><h1>", 1
    )
    target = tmp_path / "injected.html"
    target.write_text(text, encoding="utf-8")
    dom = run_chromium(tmp_path, "--dump-dom", target.as_uri())
    assert "<title>layerctl batch report</title>" in dom
    assert "pwned</title>" not in dom


@needs_chromium
@pytest.mark.slow
@pytest.mark.skipif(CHROMEDRIVER is None, reason="needs the chromium-driver package")
def test_sorting_by_status_and_time_in_chromium(tmp_path: Path, records: list[dict]) -> None:
    target = report.write(records, tmp_path / "report.html")
    with _webdriver(tmp_path) as browser:
        browser.post("url", {"url": target.as_uri()})
        assert browser.no_alert()
        names = [Path(r["input"]).name for r in records]

        browser.click("seconds")
        by_time = sorted(
            range(5), key=lambda i: (records[i]["seconds"] is None, records[i]["seconds"])
        )
        assert browser.column(1) == [names[i] for i in by_time]
        browser.click("seconds")
        assert browser.column(1) == [names[i] for i in reversed(by_time)]

        browser.click("status")
        statuses = browser.column(2)
        assert statuses == ["failed"] * 2 + ["ok"] * 3
        png = base64.b64decode(browser.get("screenshot"))
        assert Image.open(io.BytesIO(png)).format == "PNG"


@pytest.fixture
def batch_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli, flat_design) -> Path:
    """``decompose DIR --preview --report``: three images (two hostile names), one corrupt."""
    from stripes_backend import register

    register(monkeypatch)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(["poster.png", HOSTILE[0], HOSTILE[1]]):
        Image.fromarray(np.roll(flat_design, 7 * i, axis=0)).save(folder / name, format="PNG")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n corrupt")
    target = tmp_path / "reports" / "batch.html"
    args = ("-o", tmp_path / "out", "-b", "stripes", "-n", "3", "--seed", "7")
    res = cli("decompose", folder, *args, "--preview", "--report", target)
    assert res.code == 3, res.stderr  # the corrupt input failed, the others did not
    assert target.is_file() and "batch.html" in res.stderr
    foreign = tmp_path / "reports" / "notes.html"
    foreign.write_text("<p>mine</p>")
    again = cli("decompose", folder, *args, "--report", foreign)
    assert again.code == 1 and "already exists" in again.stderr  # checked before any work
    assert foreign.read_text() == "<p>mine</p>"
    return target


def test_decompose_writes_a_report_for_a_batch(batch_report: Path) -> None:
    page = _Page.parse(batch_report.read_text(encoding="utf-8"))
    by_name = {Path(row[1]).name: row[2] for row in page.rows}
    assert by_name == {
        "corrupt.png": "failed",
        "poster.png": "ok",
        HOSTILE[0]: "ok",
        HOSTILE[1]: "ok",
    }
    assert page.scripts == 1 and not page.event_handlers
    assert len(page.links) == 3  # each ok row links to its sheet, relative to the report
    for link in page.links:
        assert (batch_report.parent / urllib.request.url2pathname(link)).is_file()
    text = batch_report.read_text(encoding="utf-8")
    assert "backend=stripes" in text and "seed=7" in text
    assert text.count("layers=3") == 1 and "=None" not in text  # no duplicates, no blanks


def test_single_input_report_is_a_usage_error(tmp_path: Path, cli, flat_design) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(flat_design).save(source)
    res = cli("decompose", source, "--report", tmp_path / "r.html")
    assert res.code == 2 and "--report" in res.stderr


@needs_chromium
@pytest.mark.slow
def test_chromium_opens_the_report_of_a_real_batch(tmp_path: Path, batch_report: Path) -> None:
    page = _Page.parse(run_chromium(tmp_path, "--dump-dom", batch_report.as_uri()))
    assert len(page.rows) == 4 and page.scripts == 1 and not page.event_handlers
    assert {Path(row[1]).name for row in page.rows} >= set(HOSTILE[:2])


# -- helpers: a browser run, an HTML reader and a tiny WebDriver client ---------------


class _Page(HTMLParser):
    """What a test needs from a report: rows, scripts, handlers, image sources, links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.scripts = 0
        self.event_handlers: list[str] = []
        self.sources: list[str] = []
        self.links: list[str] = []
        self.csp = ""
        self._in_body = False
        self._cell: list[str] | None = None

    @classmethod
    def parse(cls, text: str) -> _Page:
        page = cls()
        page.feed(text)
        page.close()
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.event_handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts += 1
        elif tag == "img":
            self.sources.append(values.get("src") or "")
        elif tag == "a":
            self.links.append(values.get("href") or "")
        elif tag == "meta" and values.get("http-equiv") == "Content-Security-Policy":
            self.csp = values.get("content") or ""
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


class _WebDriver:
    """Just enough of the W3C WebDriver protocol (HTTP + JSON) to click and read."""

    ELEMENT = "element-6066-11e4-a52e-4f735466cecf"

    def __init__(self, url: str, session: str) -> None:
        self.url, self.session = url, session

    def _call(self, method: str, path: str, body: dict | None = None):
        return _http(method, f"{self.url}/session/{self.session}/{path}", body)

    def get(self, path: str):
        return self._call("GET", path)

    def post(self, path: str, body: dict):
        return self._call("POST", path, body)

    def click(self, column: str) -> None:
        """Click a column's sort button, as a person would."""
        css = f'th[data-column="{column}"] button'
        element = self.post("element", {"using": "css selector", "value": css})
        self.post(f"element/{element[self.ELEMENT]}/click", {})

    def column(self, index: int) -> list[str]:
        script = (
            "return Array.from(document.querySelector('#results tbody').rows,"
            " r => r.cells[arguments[0]].textContent.trim());"
        )
        names = self.post("execute/sync", {"script": script, "args": [index]})
        return [Path(n).name if index == 1 else n for n in names]

    def no_alert(self) -> bool:
        try:
            self.get("alert/text")
        except urllib.error.HTTPError as exc:
            return json.load(exc)["value"]["error"] == "no such alert"
        return False


@contextlib.contextmanager
def _webdriver(tmp_path: Path) -> Iterator[_WebDriver]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    driver = subprocess.Popen(
        [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # wait for the driver to listen (readiness, not a timing check)
            with contextlib.suppress(OSError):
                if _http("GET", f"{url}/status")["ready"]:
                    break
            time.sleep(0.1)
        options = {
            "binary": CHROMIUM,
            "args": [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'wd'}"],
        }
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}
        session = _http("POST", f"{url}/session", caps)["sessionId"]
        try:
            yield _WebDriver(url, session)
        finally:
            _http("DELETE", f"{url}/session/{session}")
    finally:
        driver.terminate()
        driver.wait(timeout=30)


def _http(method: str, url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["value"]


def test_not_tried_inputs_have_their_own_status(records: list[dict]) -> None:
    records[1] = {**records[1], "status": "not tried", "error": None, "seconds": 0.0}
    figures = report.summary(records, seconds=1.25)
    assert figures["not tried"] == 1 and figures["total seconds"] == 1.2
    assert list(figures).index("failed") < list(figures).index("not tried")
    assert 'class="status-nottried"' in report.render(records)
    assert "error" not in report.STATUS_RANK
