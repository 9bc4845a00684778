"""The reviewers' workspace in a real browser: screenshots of every page, and the machine time per
record when screening with and without the AI panel.

    python benchmarks/web_workspace.py --screenshots docs/screenshots --records 20 --json out.json

A project is built from the bundled sample (the first 150 records of the Cohen 2006 Estrogens
set, the review's question and criteria from ``examples/estrogens/review.toml``) with real
classic-engine assessments of the first ``--assess`` records in ranking order; the same 12-record
RIS the tests use is then dropped onto the import page (its records duplicate 12 of the 150, so
the duplicates page has groups to show). A scripted reviewer screens with the keyboard, deciding
by the review's published label, in alternating blocks with the AI panel on and off.

**This is a machine-speed measurement, not a user study**: the time is from the key press to the
next record being shown (server: ranking, assessment, highlighting; browser: swap and render).
How long a person needs to read a record, with or without the AI's verdicts, is what the LEADS
user study measured (22.6% less time with AI); this only shows what the software adds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "fixtures" / "project" / "estrogens_150.jsonl"
RIS = REPO / "tests" / "fixtures" / "web" / "estrogens_12.ris"
SPEC = REPO / "examples" / "estrogens" / "review.toml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-extensions", "--disable-sync", "--no-first-run"]
PASSWORD = "correct horse battery"
SETUP_CODE = "benchmark-setup"


def build_project(path: Path, assess: int) -> float:
    from leads.project import Project
    from leads.screen import workflow as w
    from leads.screen.criteria import CriteriaSpec

    spec = tomllib.loads(SPEC.read_text(encoding="utf-8"))
    with Project.init(path, name="HRT and clinical outcomes", actor="alice") as project:
        project.import_file(SAMPLE)
        project.set_question(**spec["question"])
        w.set_criteria(project, [CriteriaSpec(text=t, kind="inclusion") for t in spec["criteria"]["inclusion"]]
                       + [CriteriaSpec(text=t, kind="exclusion") for t in spec["criteria"]["exclusion"]],
                       note="from the published eligibility text")
        started = time.perf_counter()
        run = w.run_screening(project, limit=assess)
        return (time.perf_counter() - started) / max(1, run.assessed)


def drop_file(page: Any, selector: str, path: Path) -> None:
    """Drop a file onto an element as if dragged from the desktop (as tests/web/test_browser.py)."""
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    transfer = page.evaluate_handle(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: "application/x-research-info-systems"}));
            return transfer;
        }""", [payload, path.name])
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshots", type=Path, help="Write the pages' screenshots (PNG) here.")
    parser.add_argument("--records", type=int, default=20, help="Records screened per condition (AI on, AI off).")
    parser.add_argument("--block", type=int, default=5, help="Records per block; conditions alternate by block.")
    parser.add_argument("--assess", type=int, default=60, help="Records assessed by the classic engine first.")
    parser.add_argument("--json", type=Path, help="Write the measurements as JSON here.")
    args = parser.parse_args(argv)

    import uvicorn
    from playwright.sync_api import sync_playwright

    from leads.project import Project
    from leads.web import create_app

    tmp = Path(tempfile.mkdtemp(prefix="leads-web-bench-"))
    project_dir = tmp / "projects" / "hrt"
    seconds_per_assessment = build_project(project_dir, args.assess)
    app = create_app(tmp / "ws", [project_dir], projects_root=tmp / "projects", setup_token=SETUP_CODE)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    shots = args.screenshots
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    labels: dict[int, bool | None] = {}
    with Project.open(project_dir) as project:
        for stored in project.iter_records():
            labels[stored.id] = stored.record.label

    def shot(page: Any, name: str, *, full: bool = False) -> None:
        if shots:
            page.screenshot(path=str(shots / f"{name}.png"), full_page=full)

    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "load_average": os.getloadavg(),
                              "classic_seconds_per_assessment": round(seconds_per_assessment, 3)}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(120_000)
        timings: dict[str, list[float]] = {}
        page.on("response", lambda r: timings.setdefault("server", []).append(
            float(r.headers.get("server-timing", "app;dur=nan").split("dur=")[-1]))
            if "/screen/decide" in r.url else None)

        # First start, sign-in page, a second account.
        page.goto(base + "/setup")
        shot(page, "01-first-start")
        page.fill("input[name=setup_code]", SETUP_CODE)
        page.fill("input[name=username]", "alice")
        page.fill("input[name=display_name]", "Alice Reviewer")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=password_again]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        app.state.web.store.create_user("bob", PASSWORD, display_name="Bob Second", created_by="alice")
        slug = app.state.web.store.projects()[0].slug
        app.state.web.store.set_member(app.state.web.store.project(slug), "bob", "reviewer", by="alice")
        shot(page, "02-projects")
        project_url = f"{base}/p/{slug}"
        page.goto(project_url + "/question")
        shot(page, "04-question-criteria", full=True)
        page.goto(project_url + "/records")
        drop_file(page, "#dropzone", RIS)
        shot(page, "05-import-drop")
        page.click("#import-submit")
        page.wait_for_selector("#import-job .job-done")
        page.reload()
        shot(page, "06-import-done", full=True)
        page.goto(project_url + "/duplicates")
        shot(page, "07-duplicates")
        page.goto(project_url)
        shot(page, "03-overview")

        # Screening: alternating blocks with the AI panel on and off.
        page.goto(project_url + "/screen")
        page.wait_for_selector("#decide-form")
        if page.query_selector(".verdict[data-criterion='I2']"):
            page.hover(".verdict[data-criterion='I2']")  # its evidence lights up in the abstract
        shot(page, "08-screen-ai-on", full=True)
        per_record: dict[str, list[float]] = {"on": [], "off": []}
        server_ms: dict[str, list[float]] = {"on": [], "off": []}
        with_assessment = 0
        ai_on = True
        screened = 0
        while min(len(per_record["on"]), len(per_record["off"])) < args.records:
            condition = "on" if ai_on else "off"
            for _ in range(args.block):
                if len(per_record[condition]) >= args.records:
                    break
                record = int(page.get_attribute("#screen", "data-record"))
                if condition == "on" and page.query_selector("#ai-panel .verdicts"):
                    with_assessment += 1
                key = "i" if labels.get(record) else "e"
                timings["server"] = []
                started = time.perf_counter()
                page.keyboard.press(key)
                page.wait_for_function("prev => { const s = document.querySelector('#screen');"
                                       " return s && s.dataset.record && s.dataset.record !== String(prev); }",
                                       arg=record)
                per_record[condition].append((time.perf_counter() - started) * 1000)
                server_ms[condition].extend(timings.get("server", []))
                screened += 1
            page.keyboard.press("a")
            page.wait_for_function("on => !!document.querySelector('#ai-panel h2') && "
                                   "document.querySelector('#ai-panel h2').textContent.includes('off') === on",
                                   arg=ai_on)
            ai_on = not ai_on
            if screened == args.block and shots:
                shot(page, "09-screen-ai-off", full=True)
        page.goto(project_url + "/prisma")
        shot(page, "10-prisma", full=True)
        page.goto(project_url + "/export")
        shot(page, "11-export")
        page.goto(project_url + "/audit")
        shot(page, "12-audit-decisions")
        page.goto(project_url + "/audit?view=ai")
        call = page.query_selector("#audit-ai a[href*='/audit/calls/']")
        if call:
            call.click()
            page.wait_for_selector("text=Prompt (messages)")
            shot(page, "13-audit-model-call")
        page.goto(project_url + "/members")
        shot(page, "14-members", full=True)
        page.click("#logout")
        page.wait_for_url("**/login")
        shot(page, "00-sign-in")
        browser.close()
    server.should_exit = True
    thread.join(timeout=30)

    def summary(values: list[float]) -> dict[str, float]:
        return {"n": len(values), "median_ms": round(statistics.median(values), 1),
                "mean_ms": round(statistics.fmean(values), 1),
                "p90_ms": round(sorted(values)[int(0.9 * (len(values) - 1))], 1)}

    result["key_to_next_record"] = {k: summary(v) for k, v in per_record.items()}
    result["server_decide_request"] = {k: summary(v) for k, v in server_ms.items() if v}
    result["ai_on_records_with_assessment"] = with_assessment
    result["records_in_project"] = len(labels)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
