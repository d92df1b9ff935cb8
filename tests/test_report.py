"""occparse report: streamed aggregates, a self-contained page (parsed), and the page in headless Chromium."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from occparse.cli import main
from occparse.evaluation.report import FINE_BINS, aggregate, quantiles
from occparse.runtime.rows import FOLDER_COLUMNS, PREDICT_COLUMNS, REGIONS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _folder_csv(path: Path, n: int = 400, seed: int = 0) -> dict:
    """A folder-mode results CSV with ``n`` rows (a few failures, warnings, two genders) and its truth."""
    rng = np.random.default_rng(seed)
    occ = np.round(np.clip(rng.beta(1.2, 12, n), 0, 1), 6)  # as the CSV holds them
    occ[5] = 0.97  # the most occluded: its photo is the example image
    status = np.where(rng.random(n) < 0.03, "no_face", "ok")
    status[5] = "ok"
    names = [f"img/{i:05d}.jpg" for i in range(n)]
    names[5] = str(EXAMPLE)  # absolute: found whatever the images root
    gender = rng.choice(["F", "M"], n)
    rows = []
    for i in range(n):
        r = dict.fromkeys(FOLDER_COLUMNS, "")
        r.update(filename=names[i], status=status[i], n_faces="1" if status[i] == "ok" else "0")
        if status[i] == "ok":
            r.update(occlusion=f"{occ[i]:.6f}", geometric=f"{occ[i]:.6f}", regressor=f"{occ[i] * 0.9:.6f}",
                     hidden_by_hair="0.6000", hidden_by_occluder="0.3000", hidden_by_facial_hair="0.1000",
                     hidden_by_background="0.0000", out_of_frame="0.0000",
                     warnings=("out_of_frame: 30% of the face region lies outside; rotated: the face is turned; "
                               "it was read upright" if i % 50 == 7 else ""),
                     face_occlusion_prevention_raw=f"{occ[i]:.6f}",
                     face_occlusion_prevention_score=str(round(100 * (1 - occ[i]))),
                     face_occlusion_prevention_code="success", eyes_visible_code="failure_to_assess",
                     mouth_occlusion_prevention_raw="0.1", mouth_occlusion_prevention_score="90",
                     mouth_occlusion_prevention_code="success")
            for j, reg in enumerate(REGIONS):
                r[f"region_{reg}"] = f"{min(1.0, occ[i] * (j + 1) / 4):.4f}"
        else:
            for c in ("face_occlusion_prevention", "eyes_visible", "mouth_occlusion_prevention"):
                r[f"{c}_code"] = "failure_to_assess"
        rows.append(r)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(FOLDER_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    ok = status == "ok"
    return {"occ": occ, "ok": ok, "names": names, "gender": gender, "status": status}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.imgs: list[dict] = []
        self.urls: list[str] = []
        self.placeholders = 0
        self.thumbs = 0
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a)
        for k in ("src", "href", "action", "data", "poster", "srcset"):
            if a.get(k):
                self.urls.append(a[k])
        cls = (a.get("class") or "").split()
        self.placeholders += "ph" in cls
        self.thumbs += "thumb" in cls


def _parse(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    return p


def test_aggregates_match_numpy_whatever_the_batch_size(tmp_path):
    data = _folder_csv(tmp_path / "r.csv", n=900)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,gender\n" + "".join(f"{os.path.basename(n)},{g}\n"
                                                    for n, g in zip(data["names"], data["gender"], strict=True)))
    small = aggregate(tmp_path / "r.csv", by="gender", groups_file=labels, show_progress=False, block_bytes=4096)
    big = aggregate(tmp_path / "r.csv", by="gender", groups_file=labels, show_progress=False)
    occ, ok = data["occ"], data["ok"]
    for agg in (small, big):
        assert agg.n == 900 and agg.status["ok"] == ok.sum() and agg.status["no_face"] == (~ok).sum()
        assert agg.all.n_ok == ok.sum() and agg.all.hist.sum() == ok.sum()
        assert agg.all.mean() == pytest.approx(occ[ok].mean(), abs=1e-6)
        for q, v in quantiles(agg.all.hist).items():
            # a histogram quantile is within one fine bin of numpy's (inverted-cdf) quantile
            assert abs(v - np.quantile(occ[ok], q, method="inverted_cdf")) <= 1.0 / FINE_BINS
        assert [p.occlusion for p in agg.top] == sorted(occ[ok], reverse=True)[:50]
        assert agg.top[0].filename == str(EXAMPLE)
        for g in ("F", "M"):
            sel = ok & (data["gender"] == g)
            assert agg.groups[g].n_ok == sel.sum()
            assert agg.groups[g].mean() == pytest.approx(occ[sel].mean(), abs=1e-6)
        n_warned = sum(1 for i in range(900) if i % 50 == 7 and ok[i])
        assert agg.warn_kinds == {"out_of_frame": n_warned, "rotated": n_warned}  # "; " inside a message too
        assert agg.iso_codes["eyes_visible"]["failure_to_assess"] == ok.sum()
    assert np.array_equal(small.all.hist, big.all.hist)


def test_report_html_is_self_contained_and_complete(tmp_path):
    data = _folder_csv(tmp_path / "r.csv", n=300)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,gender\n" + "".join(f"{n},{g}\n" for n, g in zip(data["names"], data["gender"],
                                                                                   strict=True)))
    out = tmp_path / "report.html"
    rc = main(["report", str(tmp_path / "r.csv"), "--out", str(out), "--by", "gender", "--groups", str(labels),
               "--images-root", str(tmp_path), "--top", "12"])
    assert rc == 0
    html = out.read_text(encoding="utf-8")
    p = _parse(html)
    for fig in ("fig-status", "fig-histogram", "fig-face", "fig-face-hidden", "fig-hiders", "fig-iso", "fig-groups"):
        assert fig in p.ids, fig
    assert {"quantiles", "regions", "groups", "warnings"} <= p.ids
    assert "script" not in p.tags and "link" not in p.tags
    # every picture is embedded and decodes; no address points outside the page
    assert p.imgs and all(i["src"].startswith("data:image/") for i in p.imgs)
    for i in p.imgs:
        head, b64 = i["src"].split(",", 1)
        raw = base64.b64decode(b64, validate=True)
        assert raw[:4] == b"\x89PNG" if "png" in head else raw[:2] == b"\xff\xd8"
    assert all(u.startswith("data:") for u in p.urls), [u[:40] for u in p.urls if not u.startswith("data:")]
    assert "http://" not in html and "https://" not in html and "url(" not in html
    # thumbnails: the 12 most occluded, then up to 6 per warning kind; only the example photo exists
    n_warned = min(6, sum(1 for i in range(300) if i % 50 == 7 and data["ok"][i]))
    assert p.thumbs == 12 + 2 * n_warned  # two warning kinds
    assert p.placeholders == p.thumbs - 1  # every other photo is missing: a placeholder, not a crash
    assert "thumb-notes" in p.ids and "not found" in html
    face_imgs = [i for i in p.imgs if i.get("class") == "face"]
    assert len(face_imgs) == 1 and face_imgs[0]["alt"] == str(EXAMPLE)


def test_report_on_predict_parquet_with_truth(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    n = 200
    gt = np.round(np.clip(rng.beta(1.2, 10, n), 0, 1), 6)  # as the truth CSV holds them
    pred = np.clip(gt + rng.normal(0, 0.03, n), 0, 1)
    gender = rng.choice(["F", "M"], n)
    cols = {c: [""] * n for c in PREDICT_COLUMNS}
    cols["filename"] = [f"{i}.jpg" for i in range(n)]
    cols["status"] = ["ok"] * n
    table = pa.table({c: (pa.array(pred) if c == "FaceOcclusion" else pa.array(v, pa.string()))
                      for c, v in cols.items()})
    pq.write_table(table, tmp_path / "p.parquet")
    with open(tmp_path / "truth.csv", "w") as f:
        f.write("filename,FaceOcclusion,gender\n")
        f.writelines(f"{i}.jpg,{gt[i]:.6f},{gender[i]}\n" for i in range(n))
    agg = aggregate(tmp_path / "p.parquet", by="gender", truth_file=tmp_path / "truth.csv", show_progress=False,
                    batch_rows=37)
    from occparse.evaluation.metrics import challenge_score, weighted_error

    score, ef, em = challenge_score(pred, gt, gender == "M")
    assert agg.gender["F"].err() == pytest.approx(ef, rel=1e-9) and agg.gender["M"].err() == pytest.approx(em, rel=1e-9)
    assert agg.groups["F"].err() == pytest.approx(weighted_error(pred[gender == "F"], gt[gender == "F"]), rel=1e-9)
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "p.parquet"), "--out", str(out), "--truth", str(tmp_path / "truth.csv"),
                 "--by", "gender", "--no-overlay", "--top", "5"]) == 0
    html = out.read_text()
    assert f"{score:.5f}" in html and "no per-region" in html
    assert "fig-histogram" in _parse(html).ids


@pytest.mark.parametrize("args, message", [
    (["--out", "x.txt"], "HTML"),
    (["--out", "r.html", "--by", "nope"], "no column 'nope'"),
])
def test_report_refuses_bad_input_with_one_line(tmp_path, capsys, args, message):
    _folder_csv(tmp_path / "r.csv", n=20)
    args = [a if not a.endswith((".txt", ".html")) else str(tmp_path / a) for a in args]
    assert main(["report", str(tmp_path / "r.csv"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    assert main(["report", str(tmp_path / "other.csv"), "--out", str(tmp_path / "o.html")]) == 2
    assert "not an occparse results file" in capsys.readouterr().err
    assert not (tmp_path / "o.html").exists()


def test_report_on_empty_and_all_failed_results(tmp_path, recwarn):
    """A header alone, or only failed rows: a page all the same (figures with no data, n/a numbers)."""
    (tmp_path / "empty.csv").write_text(",".join(FOLDER_COLUMNS) + "\n")
    assert main(["report", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "e.html"), "--no-overlay"]) == 0
    data = _folder_csv(tmp_path / "r.csv", n=60)
    lines = (tmp_path / "r.csv").read_text().splitlines()
    failed = [ln for ln, ok in zip(lines[1:], data["ok"], strict=True) if not ok]
    (tmp_path / "f.csv").write_text("\n".join([lines[0], *failed]) + "\n")
    assert main(["report", str(tmp_path / "f.csv"), "--out", str(tmp_path / "f.html"), "--by", "is_gray"]) == 0
    for name in ("e.html", "f.html"):
        p = _parse((tmp_path / name).read_text())
        assert {"fig-status", "fig-histogram", "fig-face"} <= p.ids and p.thumbs == 0
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


# ---------------------------------------------------------------- headless Chromium

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
                  # nothing outside resolves: a page that reached out would fail, and the net log shows the try
                  "--host-resolver-rules=MAP * ~NOTFOUND"]


def chromium_screenshot(page: Path, png: Path, work: Path, size=(1280, 2400)) -> tuple[list[str], list[str]]:
    """Load ``page`` in headless Chromium, write its screenshot to ``png``; return (console lines, the http(s)
    and ws addresses the page itself asked for, from Chromium's net log)."""
    profile = work / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    netlog = work / "net.json"
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
           f"--log-net-log={netlog}", f"--screenshot={png}", page.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"no screenshot (exit {r.returncode}): {r.stderr[-2000:]}"
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    requests = []
    log = json.loads(netlog.read_text())
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    for e in log["events"]:
        prm = e.get("params") or {}
        url = prm.get("url", "")
        # the browser's own background requests carry no initiator ("not an origin"); the page's do
        if (types.get(e["type"]) == "URL_REQUEST_START_JOB" and url.split(":", 1)[0] in ("http", "https", "ws", "wss")
                and prm.get("initiator") != "not an origin"):
            requests.append(url)
    return console, requests


def _not_blank(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float32)
    rows = np.flatnonzero((np.abs(a - a[0, 0]).sum(2) > 30).any(1))  # rows that differ from the page colour
    assert a.std() > 15, "the screenshot is blank"
    assert rows.size > 0.3 * a.shape[0], "most of the screenshot is empty"
    assert len(np.unique(a[::4, ::4].reshape(-1, 3), axis=0)) > 500, "too few colours: no figures or photos drawn"


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium; "
                    ".ci/run installs it)")
def test_report_renders_in_headless_chromium(tmp_path):
    results = Path(os.environ.get("OCCPARSE_REPORT_RESULTS", "") or tmp_path / "r.csv")
    extra = os.environ.get("OCCPARSE_REPORT_ARGS", "").split()
    if not os.environ.get("OCCPARSE_REPORT_RESULTS"):
        _folder_csv(results, n=300)
        extra = ["--top", "10"]
    page = tmp_path / "report.html"
    assert main(["report", str(results), "--out", str(page), *extra]) == 0
    png = tmp_path / "report.png"
    size = tuple(int(v) for v in os.environ.get("OCCPARSE_REPORT_WINDOW", "1280x2400").split("x"))
    console, requests = chromium_screenshot(page, png, tmp_path / "chromium", size=size)
    assert console == [], console
    assert requests == [], requests
    _not_blank(png)
    if os.environ.get("OCCPARSE_REPORT_SCREENSHOT"):  # the README's picture: docs/report.png
        shutil.copyfile(png, os.environ["OCCPARSE_REPORT_SCREENSHOT"])

    # the checks themselves can fail: a page with a console error and an outside image is caught
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><p>x</p><img src="https://example.invalid/x.png">'
                   '<script>console.error("broken")</script></body></html>')
    console, requests = chromium_screenshot(bad, tmp_path / "bad.png", tmp_path / "chromium-bad", size=(400, 300))
    assert any("broken" in ln for ln in console)
    assert requests == ["https://example.invalid/x.png"]
    with pytest.raises(AssertionError):
        _not_blank(tmp_path / "bad.png")


def test_screenshot_helper_reads_blankness_from_pixels(tmp_path):
    from PIL import Image

    Image.new("RGB", (200, 200), (255, 255, 255)).save(tmp_path / "w.png")
    with pytest.raises(AssertionError):
        _not_blank(tmp_path / "w.png")
    buf = io.BytesIO()
    Image.open(EXAMPLE).convert("RGB").save(buf, "PNG")
    (tmp_path / "a.png").write_bytes(buf.getvalue())
    _not_blank(tmp_path / "a.png")


def test_report_never_replaces_a_page_it_did_not_write(tmp_path, capsys):
    from occparse.cli import main
    from occparse.evaluation.report import GENERATOR_META, is_report

    mine = tmp_path / "mine.html"
    mine.write_text("<html>my notes</html>")
    results = tmp_path / "r.csv"
    results.write_text("filename,status\na.png,no_face\n")
    assert main(["report", str(results), "--out", str(mine)]) == 2  # refused before reading the results
    assert "is not an occparse report" in capsys.readouterr().err and mine.read_text() == "<html>my notes</html>"
    assert not is_report(mine)
    mine.write_text(f"<!DOCTYPE html><html><head>{GENERATOR_META}</head></html>")
    assert is_report(mine)  # a page occparse wrote: a rerun replaces it
