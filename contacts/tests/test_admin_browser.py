"""The contact admin in a real browser: Debian's chromium driven by Playwright against the live server.

Log in, search, open the contact, opt it out of a channel with the changelist
action, and check the page and the database. Screenshots of the changelist
and the detail page go to artifacts/screenshots/ (git-ignored).

Playwright's sync API keeps an event loop in this thread while the browser is
open, and Django refuses ORM calls from a thread with a running loop; so the
data is made before the browser starts and checked after it closes.
"""

import os
import shutil

import pytest
from django.conf import settings
from playwright.sync_api import expect, sync_playwright

from contacts.models import ActivityEvent, Contact

SCREENSHOTS = settings.BASE_DIR / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct horse battery staple"
TIMEOUT_MS = 30_000


def test_operator_searches_opens_and_opts_out_a_contact(live_server, django_user_model, make_contact):
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Debian's chromium is not on PATH: .ci/run must install it.")
        pytest.skip("Debian's chromium is not on PATH (apt-get install chromium); CI installs it and runs this test.")
    django_user_model.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    jose = make_contact(
        phone="+14155552671", email="jose@example.com", first_name="José", last_name="García", tags=["vip"]
    )
    make_contact(phone="+14155550000", email="maria@example.com", first_name="María", last_name="López")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)

            page.goto(f"{live_server.url}/admin/login/?next=/admin/contacts/contact/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page.locator("#searchbar")).to_be_visible()

            page.fill("#searchbar", "jose")
            page.press("#searchbar", "Enter")
            rows = page.locator("#result_list tbody tr")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("José García")
            expect(rows.first).to_contain_text("+14155552671")
            page.screenshot(path=str(SCREENSHOTS / "admin_contact_changelist.png"), full_page=True)

            rows.first.get_by_role("link", name="José García").click()
            expect(page.locator("#id_first_name")).to_have_value("José")
            statuses = page.locator("table.channel-preferences")
            expect(statuses.get_by_role("row", name="sms unset", exact=True)).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / "admin_contact_detail.png"), full_page=True)

            page.go_back()
            expect(rows).to_have_count(1)
            rows.first.locator("input.action-select").check()
            page.select_option("select[name=action]", "opt_out")
            page.get_by_role("button", name="Go").first.click()
            page.select_option("#id_channel", "sms")
            page.click("input[name=apply]")
            expect(page.locator("ul.messagelist")).to_contain_text("Opted 1 contact(s) out of sms.")

            rows.first.get_by_role("link", name="José García").click()
            expect(statuses.get_by_role("row", name="sms opted_out", exact=True)).to_be_visible()
            expect(page.locator("table.latest-activity")).to_contain_text("preference.updated")
            page.screenshot(path=str(SCREENSHOTS / "admin_contact_detail_opted_out.png"), full_page=True)
        finally:
            browser.close()

    jose.refresh_from_db()
    assert jose.preference_map["sms"] == "opted_out"
    assert list(ActivityEvent.objects.filter(contact=jose).values_list("type", "channel", "data")) == [
        (
            "preference.updated",
            "sms",
            {"old_status": "unset", "new_status": "opted_out", "api_key_id": None, "reason": "api"},
        )
    ]
    assert Contact.objects.exclude(pk=jose.pk).get().preferences == {}
    for name in ("admin_contact_changelist.png", "admin_contact_detail.png"):
        assert (SCREENSHOTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
