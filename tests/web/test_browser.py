"""End to end in a real browser (Playwright driving Debian's chromium, headless): first start and
sign in, create a project, import a RIS file by drag and drop, screen five records with the
keyboard (with an exclusion reason and an undo), download the PRISMA diagram.

Skipped cleanly when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leads.project import Project
from leads.web import create_app

from .conftest import CHROMIUM, PASSWORD, RIS, SETUP_CODE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")
if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The workspace served by uvicorn in a thread on 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the workspace server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    app = create_app(tmp_path / "ws", projects_root=tmp_path / "projects", setup_token=SETUP_CODE)
    with LiveServer(app) as server:
        yield server


def drop_file(page: Any, selector: str, path: Path) -> None:
    """Drop a file onto an element the way a person drags one from their desktop."""
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


def shown_record(page: Any) -> int:
    return int(page.get_attribute("#screen", "data-record"))


def wait_for_new_record(page: Any, previous: int) -> int:
    page.wait_for_function("prev => { const s = document.querySelector('#screen');"
                           " return s && s.dataset.record && s.dataset.record !== String(prev); }", arg=previous)
    return shown_record(page)


def test_sign_in_create_import_screen_by_keyboard_and_download_prisma(live: LiveServer, browser: Any,
                                                                      tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(90_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # First start: the administrator, then sign out and sign in again.
    page.goto(live.url + "/")
    assert page.url.endswith("/setup")
    page.fill("input[name=setup_code]", SETUP_CODE)
    page.fill("input[name=username]", "alice")
    page.fill("input[name=display_name]", "Alice Reviewer")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_again]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live.url + "/")
    page.click("#logout")
    page.wait_for_url("**/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live.url + "/")
    assert page.inner_text("header.top").find("Alice Reviewer") >= 0

    # Create a project; give it the question and criteria.
    page.fill("#new-project input[name=name]", "Hormone therapy review")
    page.click("#new-project button[type=submit]")
    page.wait_for_url("**/p/hormone-therapy-review/question")
    base = live.url + "/p/hormone-therapy-review"
    page.fill("#question-form textarea[name=population]", "Postmenopausal women")
    page.fill("#question-form textarea[name=intervention]", "Hormone replacement therapy")
    page.click("#question-form button[type=submit]")
    page.wait_for_selector("text=Question saved as version 1")
    page.fill("#criteria-form textarea[name=inclusion]", "Postmenopausal women\nHormone replacement therapy")
    page.fill("#criteria-form textarea[name=exclusion]", "Animal or laboratory study")
    page.click("#criteria-form button[type=submit]")
    page.wait_for_selector("text=Criteria saved as version 1")

    # Import the RIS file by drag and drop; the job's progress is polled until it is done.
    page.goto(base + "/records")
    drop_file(page, "#dropzone", RIS)
    assert page.inner_text("#chosen-files") == RIS.name
    page.click("#import-submit")
    page.wait_for_selector("#import-job .job-done")
    assert "Imported 12 records from estrogens_12.ris (ris)" in page.inner_text("#import-job")
    page.reload()
    assert "estrogens_12.ris" in page.inner_text("table")

    # Screen five records with the keyboard: include, exclude with reason 3 (E1), maybe, undo, ...
    page.goto(base + "/screen")
    page.wait_for_selector("#decide-form")
    assert "AI assessments not run yet" in page.inner_text("#ai-panel")
    decided: list[tuple[int, str]] = []
    record = shown_record(page)
    page.wait_for_timeout(300)
    page.keyboard.press("i")
    decided.append((record, "include"))
    record = wait_for_new_record(page, record)
    page.keyboard.press("3")
    assert page.is_checked('input[name=reason][data-number="3"]')
    page.keyboard.press("e")
    decided.append((record, "exclude"))
    record = wait_for_new_record(page, record)
    page.keyboard.press("m")
    decided.append((record, "maybe"))
    record = wait_for_new_record(page, record)
    page.keyboard.press("u")  # the maybe is withdrawn and its record comes back
    record = wait_for_new_record(page, record)
    card = page.inner_text("#screen")
    assert record == decided[-1][0] and "Undone" in card, (record, decided, card[:300])
    decided.pop()
    page.click('input[name=reason][data-number="1"]')  # a reason ticked with the mouse keeps the keys working
    for key, label in (("e", "exclude"), ("i", "include"), ("e", "exclude")):
        page.keyboard.press(key)
        decided.append((record, label))
        record = wait_for_new_record(page, record)
    assert len(decided) == 5
    assert "5 of 12 screened" in page.inner_text("#progress-text")

    # Download the PRISMA diagram.
    page.click("text=PRISMA")
    page.wait_for_selector("#prisma-image")
    with page.expect_download() as info:
        page.click("#download-prisma")
    download = info.value
    assert download.suggested_filename == "hormone-therapy-review-prisma.svg"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    root = ET.parse(target).getroot()
    texts = ["".join(node.itertext()) for node in root.iter("{http://www.w3.org/2000/svg}tspan")]
    assert "Records screened (n = 12)" in texts and "Records excluded (n = 3)" in texts
    page.screenshot(path=str(tmp_path / "prisma.png"))
    assert errors == []
    context.close()

    with Project.open(live.app.state.web.store.project("hormone-therapy-review").path) as project:
        current = project.current_decisions()
        history = project.decision_history()
    assert {rid: d["label"] for rid, d in current.items()} == dict(decided)
    human = [d for d in history if d["label"] != "undo"]
    assert all(d["actor"] == "alice" and d["actor_kind"] == "human" for d in history)
    assert all(d["seconds_spent"] is not None and d["seconds_spent"] > 0 for d in human)
    assert all(d["ai_assisted"] is False for d in human)  # no assessment to show
    excluded_with_reason = [d for d in human if d["label"] == "exclude" and d["reasons"]]
    assert [d["reasons"] for d in excluded_with_reason] == [["E1: Animal or laboratory study"],
                                                            ["I1: Postmenopausal women"]]
    assert sum(1 for d in history if d["label"] == "undo") == 1


def test_a_request_without_the_csrf_token_is_refused_in_the_browser(live: LiveServer, browser: Any) -> None:
    """The session cookie alone does not authorise a change: a script request that carries the
    cookie but not the CSRF token is answered 403 and nothing is stored."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(live.url + "/setup")
    page.fill("input[name=setup_code]", SETUP_CODE)
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_again]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live.url + "/")
    status = page.evaluate("""async (url) => {
        const body = new URLSearchParams({name: "Forged"});
        const response = await fetch(url + "/projects", {method: "POST", body});
        return response.status;
    }""", live.url)
    assert status == 403
    assert live.app.state.web.store.projects() == []
    context.close()


# -- dual review, extraction (issue #7) -----------------------------------------------------------

ARTICLE = Path(__file__).resolve().parents[1] / "fixtures" / "documents" / "PMC5710015.nxml"
TIME_QUOTE = "Tracheal intubation time was 26.8 ± 5.7 s (mean ± standard deviation) for M group"
#: Set LEADS_SCREENSHOTS=docs/screenshots to refresh the documentation's screenshots of these pages.
SHOTS_ENV = "LEADS_SCREENSHOTS"


def _sign_in(browser: Any, url: str, username: str) -> Any:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page


@pytest.fixture
def team_server(tmp_path: Path, project_template: Path) -> Iterator[tuple[LiveServer, str, Path]]:
    """The 12-record project served, with alice (owner), bob and carol (reviewers)."""
    import shutil

    project_dir = tmp_path / "projects" / "estrogens-12"
    shutil.copytree(project_template, project_dir)
    app = create_app(tmp_path / "ws", [project_dir], projects_root=tmp_path / "projects", setup_token=SETUP_CODE)
    store = app.state.web.store
    store.create_user("alice", PASSWORD, display_name="Alice Owner", is_admin=True)
    entry = store.projects()[0]
    store.set_member(entry, "alice", "owner", by="test")
    for name in ("bob", "carol"):
        store.create_user(name, PASSWORD, display_name=name.capitalize())
        store.set_member(entry, name, "reviewer", by="alice")
    with LiveServer(app) as server:
        yield server, entry.slug, project_dir


def test_dual_review_conflict_resolution_extraction_and_prisma(team_server: tuple[LiveServer, str, Path],
                                                              browser: Any, tmp_path: Path) -> None:
    import os

    from leads.documents.store import add_document, get_document
    from leads.grounding import locate

    live, slug, project_dir = team_server
    base = f"{live.url}/p/{slug}"
    shots = Path(os.environ[SHOTS_ENV]) if os.environ.get(SHOTS_ENV) else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []

    def watch(page: Any) -> Any:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None)
        return page

    alice = watch(_sign_in(browser, live.url, "alice"))
    bob = watch(_sign_in(browser, live.url, "bob"))
    carol = watch(_sign_in(browser, live.url, "carol"))

    # The owner switches dual screening on at title and abstract.
    alice.goto(base + "/question")
    alice.check("#dual-form-title_abstract input[name=enabled]")
    alice.check("#dual-form-title_abstract input[name=resolvers][value=carol]")
    alice.click("#dual-form-title_abstract button[type=submit]")
    alice.wait_for_selector("text=Dual screening at title and abstract is on")
    alice.locator("#dual-review").screenshot(path=str(shots / "15-dual-review-setting.png"), caret="initial")

    # bob includes the first record with the keyboard; carol, blinded, excludes the same record.
    bob.goto(base + "/screen")
    bob.wait_for_selector("#dual-banner")
    record = shown_record(bob)
    bob.wait_for_timeout(200)
    bob.keyboard.press("i")
    wait_for_new_record(bob, record)
    carol.goto(f"{base}/screen?record={record}")
    carol.wait_for_selector("#decide-form")
    assert shown_record(carol) == record
    card = carol.inner_text("#screen")
    assert "Bob" not in card and "bob" not in card and "Already decided" not in card
    carol.screenshot(path=str(shots / "16-screen-dual-blinded.png"), full_page=True, caret="initial")
    carol.wait_for_timeout(200)
    carol.keyboard.press("e")
    wait_for_new_record(carol, record)

    # The conflict appears; carol is the record's reviewer and a designated resolver, but the
    # owner resolves it as the third person.
    alice.goto(base + "/conflicts")
    conflict = alice.locator(f"#conflict-{record}")
    conflict.wait_for()
    text = conflict.inner_text()
    assert "bob" in text and "carol" in text and "INCLUDE" in text.upper() and "EXCLUDE" in text.upper()
    assert alice.inner_text("#agreement-n") == "1"
    alice.screenshot(path=str(shots / "17-conflicts.png"), full_page=True, caret="initial")
    conflict.locator("button[value=include]").click()
    alice.wait_for_selector(f"text=Record {record} resolved: include.")
    assert alice.is_visible("#no-conflicts") and alice.is_visible("#resolved")

    # Extraction: the resolved record is an included study; attach its article, seed AI values.
    with Project.open(project_dir, actor="alice") as project:
        added = add_document(project, ARTICLE, record_id=record)
        document_text = get_document(project, added.document.id).text
        span = locate(TIME_QUOTE, document_text)
        assert span is not None
        time_id, _ = project.add_extractions([
            {"record_id": record, "document_id": added.document.id, "task": "characteristics",
             "field": "intubation time, M group", "value": "26.8 ± 5.7 s",
             "evidence": [{"quote": document_text[span.start:span.end], "start": span.start, "end": span.end}]},
            {"record_id": record, "document_id": added.document.id, "task": "characteristics", "field": "funding",
             "value": None, "evidence": []},
        ])
    alice.goto(base + "/extract")
    alice.screenshot(path=str(shots / "18-extraction-studies.png"), caret="initial")
    alice.click(f"#studies a[href='/p/{slug}/extract/{record}']")
    alice.wait_for_selector("#document")
    alice.wait_for_timeout(300)
    mark = alice.locator(f"#document mark[data-criteria='x{time_id}']").first
    assert not _inside(alice, mark)  # far down the article: not in view before the click
    alice.click(f".value-link[data-anchor='x{time_id}']")
    alice.wait_for_function("id => !!document.querySelector(`#document mark.focus[data-criteria='x${id}']`)",
                            arg=time_id)
    assert _inside(alice, mark), "the quote was not scrolled into view"
    assert "26.8 ± 5.7 s" in mark.inner_text()
    alice.screenshot(path=str(shots / "19-extraction-study.png"), caret="initial")
    alice.wait_for_timeout(300)
    alice.locator(f"#value-{time_id} button[value=accept]").click()
    alice.wait_for_selector("text=intubation time, M group: accepted.")

    # PRISMA: the diagram downloads as an SVG with the resolution counted.
    alice.goto(base + "/prisma")
    with alice.expect_download() as info:
        alice.click("#download-prisma")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    root = ET.parse(target).getroot()
    texts = ["".join(node.itertext()) for node in root.iter("{http://www.w3.org/2000/svg}tspan")]
    assert "Records screened (n = 12)" in texts

    # A local-corpus search from the import page, as a job with its progress.
    from leads.search.corpus import build_corpus

    corpora = live.app.state.web.config.workspace / "corpora"
    corpora.mkdir(parents=True, exist_ok=True)
    build_corpus([Path(__file__).resolve().parents[1] / "fixtures" / "project" / "estrogens_150.jsonl"],
                 corpora / "estrogens.db")
    alice.goto(base + "/records")
    alice.fill("#search-form textarea[name=query]", "estrogen*[tiab] AND postmenopausal[tiab]")
    alice.click("#search-submit")
    alice.wait_for_selector("#search-job .job-done")
    assert "records from estrogens.db stored as search 2" in alice.inner_text("#search-job")
    alice.locator("#corpus-search").screenshot(path=str(shots / "20-corpus-search.png"), caret="initial")
    assert errors == [], "\n".join(errors)

    with Project.open(project_dir) as project:
        history = project.decision_history("title_abstract", record_ids=[record])
        accepted = [r for r in project.extractions(record_ids=[record]) if r["status"] == "accepted"]
    assert [(d["actor"], d["label"], d["note"]) for d in history] == [
        ("bob", "include", None), ("carol", "exclude", None), ("alice", "include", "resolution")]
    assert len(accepted) == 1 and accepted[0]["actor"] == "alice" and accepted[0]["supersedes_id"] == time_id
    assert accepted[0]["seconds_spent"] is not None and accepted[0]["seconds_spent"] > 0
    for page in (alice, bob, carol):
        page.context.close()


def _inside(page: Any, mark: Any) -> bool:
    """Whether the element is visible inside the scrolled document pane and the window."""
    return bool(page.evaluate("""(el) => {
        const r = el.getBoundingClientRect(), pane = document.querySelector('#document').getBoundingClientRect();
        return r.top >= pane.top && r.bottom <= pane.bottom && r.top >= 0 && r.bottom <= window.innerHeight;
    }""", mark.element_handle()))
