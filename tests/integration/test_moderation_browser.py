"""A reader and a moderator in a real browser (Debian's Chromium, driven by Playwright): the
README's reply form posts a comment with the time it took; a moderator signs in and approves.

The app is served over HTTP by Werkzeug's server on its own port, with the real
database and Redis; the browser is the machine's ``/usr/bin/chromium`` (never a
downloaded one). Without it the test skips saying what to install, and fails with CI=true.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.serving import make_server

from service.app import Services
from service.auth import create_token
from service.statuses import CommentStatus
from service.tables import AuditEvent, Comment
from service.transitions import VerdictRecord, record_verdicts
from tests.conftest import require_service
from tests.integration.processes import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def _chromium() -> Iterator[Browser]:
    """The machine's Chromium, for as long as the block runs; the test skips without it."""
    require_service(CHROMIUM.exists(), f"Chromium at {CHROMIUM} (Debian: apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def _console_errors(page: Page) -> list[str]:
    """The errors the page logs from now on: a script the Content-Security-Policy refused, say."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def _sign_in(page: Page, served: str, token: str) -> None:
    """Sign in to the moderators' pages, which then show the review queue."""
    page.goto(f"{served}/moderate/sign-in")
    page.get_by_label("Moderator token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def _widths(page: Page) -> tuple[int, int]:
    """The page's width and its window's, in CSS pixels: wider means scrolling sideways."""
    root = "document.documentElement"
    scroll, client = page.evaluate(f"[{root}.scrollWidth, {root}.clientWidth]")
    return int(scroll), int(client)


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The app on a port of its own, for as long as the test runs."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join()


def _flagged_and_a_token(
    client: FlaskClient, services: Services, posted: dict[str, str], reasons: list[str]
) -> tuple[int, str]:
    """Post ``posted``, flag it with ``reasons``; its id and a new moderator token."""
    comment_id = int(client.post("/v1/comments", json=posted).get_json()["id"])
    verdict = VerdictRecord(0.6, 0.02, reasons, "test-model", CommentStatus.FLAGGED, "test")
    with services.sessions() as session:
        record_verdicts(session, {comment_id: verdict})
        token = create_token(session, "Mo")
        session.commit()
    return comment_id, token


def test_a_moderator_signs_in_and_approves_a_flagged_comment_in_the_browser(
    served: str, client: FlaskClient, services: Services
) -> None:
    from playwright.sync_api import expect

    posted = {"name": "Ann Reader", "email": "ann@example.com", "thread": "/a/1"}
    comment_id, token = _flagged_and_a_token(
        client, services, {**posted, "comment": "Is the footbridge open?"}, ['"open" +0.2 toward spam']
    )

    with _chromium() as browser:
        page = browser.new_page()
        # The pages' Content-Security-Policy must refuse nothing they use themselves.
        refused = _console_errors(page)
        page.goto(f"{served}/moderate/")
        expect(page.get_by_role("heading", name="Sign in to moderate")).to_be_visible()
        page.get_by_label("Moderator token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        card = page.get_by_role("article", name=f"Comment {comment_id}")
        expect(card).to_contain_text("Is the footbridge open?")
        expect(card).to_contain_text("(***@example.com)")  # "ann" is too short to show a letter of
        note = card.get_by_label("Note")
        note.fill("checked with the council")
        # Enter in the note submits with the form's first button: it must decide nothing
        # (it approved, the first decision button, before a disabled one came first).
        note.press("Enter")
        page.wait_for_timeout(500)
        with services.sessions() as session:
            assert session.get_one(Comment, comment_id).status is CommentStatus.FLAGGED
        expect(note).to_have_value("checked with the council")  # the page was not sent
        card.get_by_role("button", name="Approve").click()
        expect(page.get_by_role("status")).to_have_text(f"Comment {comment_id} approved.")
        expect(page.get_by_role("article", name=f"Comment {comment_id}")).to_have_count(0)
        assert refused == []

    with services.sessions() as session:
        assert session.get_one(Comment, comment_id).status is CommentStatus.APPROVED
        event = session.scalars(select(AuditEvent).where(AuditEvent.comment_id == comment_id)).all()[-1]
        assert (event.actor, event.note) == ("moderator:Mo", "checked with the council")
    public = client.get("/v1/threads/%2Fa%2F1/comments").get_json()["items"]
    assert [item["id"] for item in public] == [comment_id]


def test_a_keyboard_decides_in_a_thread_it_followed_a_comment_to_and_stays_there(
    served: str, client: FlaskClient, services: Services
) -> None:
    from playwright.sync_api import expect

    posted = {"name": "Ann Reader", "email": "ann@example.com", "thread": "/2026/11/harbour"}
    comment_id, token = _flagged_and_a_token(
        client, services, {**posted, "comment": "Cheap pills here."}, ['"pills" +2.0 toward spam']
    )
    elsewhere = client.post("/v1/comments", json={**posted, "thread": "/b/2", "comment": "Hello."}).get_json()
    _flag(services, int(elsewhere["id"]))

    with _chromium() as browser:
        page = browser.new_page()
        _sign_in(page, served, token)
        card = page.get_by_role("article", name=f"Comment {comment_id}")
        card.get_by_role("link", name="Whole thread").click()
        expect(page.get_by_role("article")).to_have_count(1)
        # Skip link, then the link to the comment's page, its note and its first decision.
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        expect(card.get_by_role("link", name=f"Comment {comment_id}")).to_be_focused()
        page.keyboard.press("Tab")
        expect(card.get_by_label("Note")).to_be_focused()
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        expect(card.get_by_role("button", name="Reject as spam")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text(f"Comment {comment_id} rejected as spam.")
        # Still in the thread, the comment in it as its readers' thread has it.
        expect(page.get_by_role("navigation", name="Thread")).to_contain_text("/2026/11/harbour")
        expect(page.get_by_role("article", name=f"Comment {comment_id}")).to_contain_text("rejected")
        expect(page.get_by_text("Hello.")).to_have_count(0)


def test_a_moderator_follows_a_decision_to_its_comments_page_and_mends_it(
    served: str, client: FlaskClient, services: Services
) -> None:
    from playwright.sync_api import expect

    posted = {"name": "Ann Reader", "email": "ann@example.com", "thread": "/a/1", "comment": "Is it open?"}
    comment_id, token = _flagged_and_a_token(client, services, posted, [])

    with _chromium() as browser:
        page = browser.new_page(viewport={"width": 320, "height": 640})
        refused = _console_errors(page)
        _sign_in(page, served, token)
        card = page.get_by_role("article", name=f"Comment {comment_id}")
        card.get_by_role("button", name="Reject as abuse").click()
        # The comment left the flagged queue; the message leads to it.
        page.get_by_role("status").get_by_role("link", name=f"Comment {comment_id}").click()
        expect(page.get_by_role("heading", level=1, name=f"Comment {comment_id}")).to_be_visible()
        trail = page.get_by_role("region", name="Audit trail")
        expect(trail.get_by_role("listitem").last).to_contain_text("moderator:Mo · reject (abuse)")
        page.get_by_role("article", name=f"Comment {comment_id}").get_by_role(
            "button", name="Approve"
        ).click()
        expect(page.get_by_role("status")).to_have_text(f"Comment {comment_id} approved.")
        expect(trail.get_by_role("listitem").last).to_contain_text("moderator:Mo · approve")
        width, window = _widths(page)
        assert width <= window, f"the comment's page is {width} px wide in {window} px"
        assert refused == []
    with services.sessions() as session:
        assert session.get_one(Comment, comment_id).status is CommentStatus.APPROVED


def test_a_moderator_selects_a_wave_of_spam_and_rejects_it_at_once(
    served: str, client: FlaskClient, services: Services
) -> None:
    from playwright.sync_api import expect

    posted = {"name": "Ann Reader", "email": "ann@example.com", "thread": "/a/1"}
    kept, token = _flagged_and_a_token(client, services, {**posted, "comment": "Is it open?"}, [])
    wave = [
        int(client.post("/v1/comments", json={**posted, "comment": f"Cheap pills {n}"}).get_json()["id"])
        for n in range(2)
    ]
    for comment_id in wave:
        _flag(services, comment_id)

    with _chromium() as browser:
        page = browser.new_page(viewport={"width": 320, "height": 640})
        refused = _console_errors(page)
        _sign_in(page, served, token)
        for comment_id in wave:
            page.get_by_label(f"Select comment {comment_id}").check()
        selected = page.get_by_role("form", name="Decide the selected comments")
        selected.get_by_label("Note for the selected").fill("pills wave")
        selected.get_by_role("button", name="Reject selected as spam").click()
        expect(page.get_by_role("status")).to_have_text(f"2 comments rejected as spam: {wave[0]}, {wave[1]}.")
        expect(page.get_by_role("article")).to_have_count(1)
        expect(page.get_by_role("article", name=f"Comment {kept}")).to_be_visible()
        width, window = _widths(page)
        assert width <= window, f"the queue is {width} px wide in {window} px"
        assert refused == []
    with services.sessions() as session:
        assert [session.get_one(Comment, each).status for each in [kept, *wave]] == [
            CommentStatus.FLAGGED,
            CommentStatus.REJECTED,
            CommentStatus.REJECTED,
        ]


def _accessibility_problems(page: Page) -> list[str]:
    """What axe-core (the engine browsers' accessibility audits run) finds wrong with the page
    as it stands, one line a rule broken: its id, its impact and the elements breaking it."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{rule['id']} ({rule['impact']}): {[node['target'] for node in rule['nodes']]}" for rule in found
    ]


def test_the_moderators_pages_break_no_accessibility_rule_axe_checks(
    served: str, client: FlaskClient, services: Services
) -> None:
    from playwright.sync_api import expect

    posted = {"name": "Ann Reader", "email": "ann@example.com", "thread": "/a/1", "comment": "Is it open?"}
    other, token = _flagged_and_a_token(client, services, posted, ['"open" +0.2 toward spam'])
    first = int(client.post("/v1/comments", json={**posted, "comment": "When?"}).get_json()["id"])
    with services.sessions() as session:
        approved = VerdictRecord(0.01, 0.01, [], "test-model", CommentStatus.APPROVED, "test")
        record_verdicts(session, {first: approved})
        session.commit()
    reply = client.post("/v1/comments", json={**posted, "comment": "Monday.", "parent_id": first}).get_json()
    _flag(services, int(reply["id"]))

    with _chromium() as browser:
        page = browser.new_page()
        page.goto(f"{served}/moderate/sign-in")
        shown = {"the sign-in page": _accessibility_problems(page)}
        page.get_by_label("Moderator token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        # The queue with a reply and its parent, and a message after a decision.
        page.get_by_label(f"Select comment {other}").check()
        page.get_by_role("button", name="Approve selected").click()
        expect(page.get_by_role("status")).to_contain_text("1 comment approved")
        shown["the queue"] = _accessibility_problems(page)
        page.get_by_role("link", name=f"Comment {first}", exact=True).first.click()
        expect(page.get_by_role("heading", level=1, name=f"Comment {first}")).to_be_visible()
        shown["a comment's page"] = _accessibility_problems(page)
        # The check itself works under the pages' Content-Security-Policy: a field without
        # a label, added to the page, is found.
        page.evaluate("document.querySelector('main').append(document.createElement('input'))")
        assert any(problem.startswith("label ") for problem in _accessibility_problems(page))
    assert shown == {name: [] for name in shown}


def _flag(services: Services, comment_id: int) -> None:
    verdict = VerdictRecord(0.6, 0.02, [], "test-model", CommentStatus.FLAGGED, "test")
    with services.sessions() as session:
        record_verdicts(session, {comment_id: verdict})
        session.commit()


def test_a_long_unbroken_comment_wraps_inside_the_queue_page(
    served: str, client: FlaskClient, services: Services
) -> None:
    from playwright.sync_api import expect

    posted = {"name": "N" * 200, "email": "ann@example.com", "thread": "/a/1", "comment": "x" * 3000}
    comment_id, token = _flagged_and_a_token(client, services, posted, [])

    with _chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        _sign_in(page, served, token)
        expect(page.get_by_role("article", name=f"Comment {comment_id}")).to_be_visible()
        width, window = _widths(page)
        assert width <= window, f"the page is {width} px wide in a {window} px window"


def test_the_pages_fit_a_320_pixel_window_without_scrolling_sideways(
    served: str, client: FlaskClient, services: Services
) -> None:
    # WCAG 1.4.10: 320 CSS pixels is a 1280-pixel window zoomed to 400 %.
    from playwright.sync_api import expect

    posted = {"name": "Ann", "email": "ann@example.com", "thread": "/a/1", "comment": "Is it open?"}
    comment_id, token = _flagged_and_a_token(client, services, posted, [])

    with _chromium() as browser:
        page = browser.new_page(viewport={"width": 320, "height": 640})
        for shown in ("sign-in page", "queue"):
            if shown == "queue":
                page.get_by_label("Moderator token").fill(token)
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_role("article", name=f"Comment {comment_id}")).to_be_visible()
            else:
                page.goto(f"{served}/moderate/sign-in")
            width, window = _widths(page)
            assert width <= window, f"the {shown} is {width} px wide in {window} px"


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_timing_snippet() -> str:
    """The README's script that times the reply form, exactly as a site would copy it."""
    blocks = re.findall(r"```html\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    (snippet,) = [block for block in blocks if 'name="seconds_to_submit"' in block]
    return str(snippet)


def _reply_form(action: str) -> str:
    return f"""<!doctype html><title>Harbour plan</title>
<form method="post" action="{action}">
  <label>Name <input name="name"></label>
  <label>Email <input name="email"></label>
  <label>Comment <textarea name="comment"></textarea></label>
  <input type="hidden" name="thread" value="/2026/11/harbour">
  {_readme_timing_snippet()}
  <button>Post comment</button>
</form>"""


def test_the_readme_reply_form_sends_how_long_the_reader_took(served: str, services: Services) -> None:

    took = []  # from the page's load to its answer, as this test saw it
    with _chromium() as browser:
        for wait_ms in (1500, 0):
            # A page of its own each time, as a reader loads the article: content set into
            # the page the last post answered would run under that page's policy.
            page = browser.new_page()
            began = time.monotonic()
            page.set_content(_reply_form(f"{served}/v1/comments"))
            page.get_by_label("Name").fill("Ann Reader")
            page.get_by_label("Email").fill("ann@example.com")
            page.get_by_label("Comment").fill("Will the footbridge stay open?")
            page.wait_for_timeout(wait_ms)
            with page.expect_navigation():
                page.get_by_role("button", name="Post comment").click()
            took.append(time.monotonic() - began)

    with services.sessions() as session:
        timed = session.scalars(select(Comment.seconds_to_submit).order_by(Comment.id)).all()
    assert len(timed) == 2 and timed[0] is not None and timed[1] is not None
    # Each is the time its page was open before sending, to a tenth of a second (at most what
    # this test saw, which also holds the answer's way back), however slow the machine: 1.5 s
    # and more for the page that waited.
    assert 1.5 <= timed[0] <= took[0] + 0.05 and timed[1] <= took[1] + 0.05


def _readme_thread_sketch(service: str) -> str:
    """The README's script that shows a thread, pointed at ``service``."""
    blocks = re.findall(r"```html\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    (snippet,) = [block for block in blocks if "/v1/threads/" in block]
    return str(snippet).replace("https://comments.news.example", service)


def test_the_readme_thread_sketch_nests_replies_and_shows_markup_as_text(
    served: str, client: FlaskClient, services: Services
) -> None:

    def approved(fields: dict[str, object]) -> int:
        posted = {"name": "Ann", "email": "ann@example.com", "thread": "/2026/11/harbour", **fields}
        comment_id = int(client.post("/v1/comments", json=posted).get_json()["id"])
        verdict = VerdictRecord(0.01, 0.01, [], "test-model", CommentStatus.APPROVED, "test")
        with services.sessions() as session:
            record_verdicts(session, {comment_id: verdict})
            session.commit()
        return comment_id

    first = approved({"comment": "Is the footbridge open?"})
    reply = approved({"comment": "Yes: <b>since</b> Monday.\nAll day.", "parent_id": first})
    later = approved({"comment": "Lovely photos."})

    with _chromium() as browser:
        page = browser.new_page()
        page.set_content(f"<!doctype html><title>Harbour</title>{_readme_thread_sketch(served)}")
        page.wait_for_selector(f"#comment-{later}")
        shown = page.locator(f"#thread > #comment-{first} > ol > #comment-{reply} p")
        assert shown.inner_text() == "Yes: <b>since</b> Monday.\nAll day."
        assert page.locator("#thread b b").count() == 0  # the comment's markup is not markup
        assert page.locator("#thread > li").evaluate_all("items => items.map(item => item.id)") == [
            f"comment-{first}",
            f"comment-{later}",
        ]
