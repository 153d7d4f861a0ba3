"""The HTML report in a real browser: Debian's Chromium driven by Playwright.

Built from replayed runs plus a baseline run on comments that carry HTML and script. Checks that
sorting and filtering work, that those comments show literally, and that none of them ran. Saves a
screenshot; with TOXBENCH_UPDATE_SCREENSHOT=1 it also replaces docs/images/report.png (the README's and the docs' picture).
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from toxbench.analysis.report import build_report, script_json
from toxbench.explanations import ExplanationWriter
from toxbench.run.engine import ExecutionSettings
from toxbench.run.replay import import_published
from toxbench.run.runner import RunOptions, execute

CHROMIUM = os.environ.get("TOXBENCH_CHROMIUM", "/usr/bin/chromium")
HOSTILE = [
    ("<script>window.pwned=1</script>", 1),
    ('<img src=x onerror="window.pwned=1">', 1),
    ("</script><script>window.pwned=1</script>", 1),
    ("<!-- unterminated comment & entity &amp; ok", 0),
    ("merci pour ton aide, bonne journée", 0),
    ("<b>gras</b> et <a href=javascript:window.pwned=1>lien</a>", 0),
]
ROOT = Path(__file__).parents[2]
GOLD_SPANS = {0: [[0, 8]], 5: [[3, 7]]}  # "<script>", "gras"
FOUND_SPANS = {0: [[4, 20]], 1: [[0, 4]]}  # "ipt>window.pwned", "<img"


def test_script_json_cannot_close_its_element():
    text = script_json({"t": "</script><!-- & -->"})
    assert "<" not in text and ">" not in text and "&" not in text and "\\u003c/script\\u003e" in text


@pytest.fixture(scope="module")
def report(tmp_path_factory, data_root):
    from toxbench.data.datadir import DataDir

    data = DataDir(data_root, auto_fetch=False)
    root = tmp_path_factory.mktemp("report")
    rels = [
        f"toxifrench/predictions/{stem}.csv"
        for stem in ("gpt-4o-mini-detailed-rtplx", "camembert-sfc-rtplx", "mistral-detailed-rtplx")
    ]
    import_published(data, root / "runs", rels)
    comments = root / "hostile.csv"
    with open(comments, "w", encoding="utf-8", newline="") as fh:
        import csv

        writer = csv.writer(fh)
        writer.writerow(["id", "text", "label", "spans"])
        writer.writerows([(f"h{i}", t, y, json.dumps(GOLD_SPANS.get(i, []))) for i, (t, y) in enumerate(HOSTILE)])
    os.environ.setdefault("TOXBENCH_CACHE", str(root / "cache.sqlite"))
    result = execute(
        RunOptions(model="baseline", dataset=str(comments), runs_dir=root / "runs", cache_path=root / "cache.sqlite"),
        data,
        ExecutionSettings(),
        show_progress=False,
    )
    # explanation lines as `toxbench explain` writes them (the baseline has no saliency; the report only reads the spans)
    writer = ExplanationWriter(result.run_dir, {"method": "gradxinput", "extraction": {"rule": "topk"}})
    for i, spans in FOUND_SPANS.items():
        writer.append(
            {
                "sample_id": f"h{i}",
                "status": "ok",
                "pred": 1,
                "tokens": [],
                "saliency": [],
                "spans": spans,
                "gold_spans": None,
            }
        )
    writer.close()
    return build_report(root / "runs", data, root / "site", ROOT / "results"), str(comments)


def explorer_data(index: Path) -> dict:
    """dataset -> its explorer data, read from the scripts beside the page as the page reads them."""
    files = json.loads(
        re.search(r'<script id="explorer-data" type="application/json">(.*?)</script>', index.read_text("utf-8"), re.S)[
            1
        ]
    )["datasets"]
    out = {}
    for name, rel in files.items():
        text = (index.parent / rel).read_text("utf-8")
        assert text.startswith("toxbenchExplorer(") and text.endswith(");\n")
        payload = json.loads(text[len("toxbenchExplorer(") : -len(");\n")])
        assert payload["name"] == name
        out[name] = payload["data"]
    return out


def test_report_is_escaped_in_the_html_itself(report):
    path, _ = report
    html = path.read_text("utf-8")
    assert "<script>window.pwned" not in html and "<img src=x" not in html and "<b>gras</b>" not in html
    assert html.count("<script") == 2  # the JSON block and the page's own script
    scripts = list((path.parent / "explorer").glob("*.js"))
    assert len(scripts) == 2 and all("<" not in s.read_text("utf-8") for s in scripts)  # data scripts: no markup at all
    assert len(html.encode()) < 2_000_000  # the samples are not in the page
    assert not re.search(
        r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?https?:|@import""", html
    )  # nothing fetched at view time


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_in_headless_chromium(report, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    path, comments = report
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        assert page.evaluate("typeof window.pwned") == "undefined"

        def choose_dataset(**option):
            page.select_option("#f-dataset", **option)
            name = page.eval_on_selector("#f-dataset", "s => s.value")
            page.wait_for_function("name => document.body.dataset.explorer === name", arg=name)

        page.wait_for_function("() => document.body.dataset.explorer !== undefined")  # the first dataset loaded

        # the sensitivity charts: each one's clip paths and markers are its own (unique ids, every
        # reference resolved inside the same chart), and each draws all its points
        charts = page.evaluate(
            """() => Array.from(document.querySelectorAll('#icl svg')).map(svg => {
                const refs = Array.from(svg.querySelectorAll('[clip-path], use')).map(el =>
                    (el.getAttribute('clip-path') || el.getAttribute('xlink:href') || el.getAttribute('href') || '')
                        .replace(/^url\\(#/, '').replace(/\\)$/, '').replace(/^#/, ''));
                return {refs: refs.length, outside: refs.filter(id => !svg.querySelector('[id="' + id + '"]')).length,
                        markers: svg.querySelectorAll('use').length};
            })"""
        )
        ids = page.evaluate("() => Array.from(document.querySelectorAll('#icl [id]')).map(e => e.id)")
        assert len(charts) == 2 and len(ids) == len(set(ids))
        assert all(c["refs"] > 0 and c["outside"] == 0 for c in charts), charts
        committed = [
            (ROOT / "results" / name / "sensitivity.svg").read_text("utf-8").count("<use ")
            for name in ("icl-smollm2", "icl-table5")
        ]
        assert [c["markers"] for c in charts] == committed

        # sorting: the rtplx-fr leaderboard by accuracy, ascending then descending
        table = page.locator('table.leaderboard[data-dataset="rtplx-fr"]')
        accuracy = table.locator("th", has_text="accuracy")

        def accuracies():
            return [
                float(v) for v in table.locator("tbody td.acc").evaluate_all("cells => cells.map(c => c.dataset.value)")
            ]

        before = accuracies()
        assert before == sorted(before, reverse=True) and len(before) == 3
        accuracy.click()
        assert accuracies() == sorted(before, reverse=True)  # first click: descending
        accuracy.click()
        assert accuracies() == sorted(before)
        table.locator("th", has_text="run").first.click()
        runs = table.locator("tbody tr td:nth-child(2)").all_inner_texts()
        assert runs == sorted(runs, reverse=True)

        # the explorer: the hostile comments, shown as text
        choose_dataset(label=comments)
        texts = page.locator("#explorer-table tbody td.text").all_inner_texts()
        assert sorted(texts) == sorted(t for t, _ in HOSTILE)
        assert page.locator("#explorer-table img").count() == 0 and page.locator("#explorer-table b").count() == 0
        # spans: gold underlined, found highlighted, both as text cut at every span boundary
        assert sorted(page.locator("#explorer-table .gold-span").all_inner_texts()) == ["<scr", "gras", "ipt>"]
        assert sorted(page.locator("#explorer-table mark").all_inner_texts()) == ["<img", "ipt>", "window.pwned"]
        correct = page.locator("#explorer-count").inner_text()
        page.select_option("#f-correct", "incorrect")
        wrong = page.locator("#explorer-table tbody tr.sample").count()
        page.select_option("#f-correct", "correct")
        right = page.locator("#explorer-table tbody tr.sample").count()
        assert right + wrong == len(HOSTILE) and correct.startswith(f"{len(HOSTILE)} samples")
        assert all(
            c == cell
            for c, cell in zip(
                page.locator("#explorer-table tbody td:nth-child(3)").all_inner_texts(),
                page.locator("#explorer-table tbody td:nth-child(4)").all_inner_texts(),
            )
        )

        # disagreements between two replayed runs on rtplx-fr
        page.select_option("#f-correct", "all")
        choose_dataset(value="rtplx-fr")
        assert (
            page.locator("#explorer-table tbody tr.sample").count() == 50
            and page.locator("#explorer-page").inner_text() == "page 1 of 14"
        )
        first_page = page.locator("#explorer-table tbody td:nth-child(1)").all_inner_texts()
        page.click("#f-next")
        assert page.locator("#explorer-page").inner_text() == "page 2 of 14"
        assert not set(first_page) & set(page.locator("#explorer-table tbody td:nth-child(1)").all_inner_texts())
        assert page.evaluate("document.body.scrollHeight") < 15000  # 50 samples a page, not 500
        page.select_option("#f-run", label="gpt-4o-mini-detailed-rtplx")  # options show names; their values are run ids
        page.select_option("#f-other", label="camembert-sfc-rtplx")
        page.check("#f-disagree")
        rows = page.locator("#explorer-table tbody tr.sample")
        n = rows.count()
        assert 0 < n < 672
        mine = rows.locator("td:nth-child(4)").all_inner_texts()
        other = rows.locator("td:nth-child(7)").all_inner_texts()
        assert all(a != b for a, b in zip(mine, other))
        assert page.evaluate("typeof window.pwned") == "undefined" and not errors

        choose_dataset(label=comments)
        page.uncheck("#f-disagree")
        page.evaluate("document.getElementById('ds-rtplx-fr').scrollIntoView()")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("TOXBENCH_UPDATE_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "images" / "report.png")


def test_the_explorer_shows_the_answer_text_and_keys_runs_by_id(report):
    import json

    from toxbench.analysis.report import answer_text

    openai = {
        "id": "c",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "toxique"}, "finish_reason": "stop"}],
    }
    mistral = {
        "id": "m",
        "object": "chat.completion",
        "model": "mistral-large",
        "created": 1,
        "usage": {"prompt_tokens": 100},
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "non-toxique", "tool_calls": None},
                "finish_reason": "stop",
            }
        ],
    }
    anthropic = {
        "id": "msg",
        "type": "message",
        "content": [{"type": "text", "text": "toxic"}],
        "stop_reason": "end_turn",
    }
    gemini = {"candidates": [{"content": {"role": "model", "parts": [{"text": "non-toxic"}]}, "finishReason": "STOP"}]}
    assert [answer_text(json.dumps(x)) for x in (openai, mistral, anthropic, gemini)] == [
        "toxique",
        "non-toxique",
        "toxic",
        "non-toxic",
    ]
    assert (
        answer_text('{"generated": "non-toxique"}') == "non-toxique"
        and answer_text("HTTP 500: down") == "HTTP 500: down"
    )
    path, _ = report
    data = {"datasets": explorer_data(path)}
    runs = data["datasets"]["rtplx-fr"]["runs"]
    assert all("--" in run_id for run_id in runs) and sorted(data["datasets"]["rtplx-fr"]["names"].values()) == [
        "camembert-sfc-rtplx",
        "gpt-4o-mini-detailed-rtplx",
        "mistral-detailed-rtplx",
    ]
