"""The sandbox console in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium against a real sandbox server. Each test does what a
developer would: click a menu button, ask a slow question, click a card's button, talk to the
AI bot, use it from the keyboard on a phone-sized window; screenshots go to tests/screenshots/."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.console_fixtures import Sandbox, sandbox  # noqa: F401 - the fixture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = ROOT / "tests" / "screenshots"
INSTALL = "apt-get install -y chromium chromium-driver"
#: As root, in this closed network: no sandbox, and none of Chromium's own connections.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)  # fmt: skip


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium through chromedriver, with a new empty profile."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the browser tests need `{INSTALL}`")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]'")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(1280, 900)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def until(driver: Any, found: Callable[[Any], Any], timeout: float = 20, what: str = "") -> Any:
    """Wait for `found` to be truthy; an element re-rendered under it is looked up again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout, 0.1, (StaleElementReferenceException,))
    return wait.until(found, what)


def click(driver: Any, selector: str, what: str = "") -> None:
    """Click the last enabled element matching `selector` (again if it was re-rendered)."""

    def clicked(d: Any) -> bool:
        found = [e for e in css(d, selector) if e.is_enabled()]
        if found:
            found[-1].click()
        return bool(found)

    until(driver, clicked, what=what or selector)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def open_console(driver: Any, box: Sandbox, member: str) -> None:
    driver.get(f"{box.url}/_console")
    click(driver, f'[data-member="{member}"]', f"member {member} listed")
    until(driver, lambda d: css(d, f'[data-member="{member}"][aria-current="true"]'))
    until(driver, lambda d: css(d, '#menu [data-key="MENU_HELP"]'), what="the menu")


def bubbles(driver: Any, sender: str) -> list[str]:
    """The texts of the chat's bubbles from `sender` (member or app), with their meta line."""
    return [e.text for e in css(driver, f'#log article[data-sender="{sender}"]')]


def test_a_menu_button_gets_the_passive_reply(browser: Any, sandbox: Sandbox) -> None:  # noqa: F811
    open_console(browser, sandbox, "zhangsan")
    click(browser, '#menu [data-key="MENU_HELP"]')
    reply = until(browser, lambda d: [t for t in bubbles(d, "app")
                                      if "Send 'help' to see what I can do." in t],
                  what="the passive reply")  # fmt: skip
    assert "passive reply" in reply[0]
    assert any("Clicked menu: MENU_HELP" in t for t in bubbles(browser, "member"))
    row = until(browser, lambda d: css(d, "#timeline tr"))[0].text
    assert "click MENU_HELP" in row and "callback.demo.menu.menu_text" in row and "passive" in row
    shot(browser, "menu-click")


def test_ask_gets_its_answer_pushed_later(browser: Any, sandbox: Sandbox) -> None:  # noqa: F811
    from selenium.webdriver.common.keys import Keys

    open_console(browser, sandbox, "lisi")
    box = css(browser, "#text")[0]
    box.send_keys("ask why?", Keys.ENTER)  # the keyboard sends
    until(browser, lambda d: any("ask why?" in t for t in bubbles(d, "member")))
    assert not any("You asked" in t for t in bubbles(browser, "app"))  # not yet: it thinks 3 s
    shot(browser, "ask-waiting")
    answer = until(browser, lambda d: [t for t in bubbles(d, "app") if "You asked: 'why?'" in t],
                   timeout=30, what="the pushed answer")  # fmt: skip
    assert "send API" in answer[0]
    row = next(r.text for r in css(browser, "#timeline tr") if "ask why?" in r.text)
    assert "pushed" in row and "message/send done" in row
    shot(browser, "ask-answered")


def test_a_card_button_updates_the_card(browser: Any, sandbox: Sandbox) -> None:  # noqa: F811
    open_console(browser, sandbox, "wangwu")
    click(browser, '#menu [data-key="MENU_APPROVAL"]')
    until(browser, lambda d: [b for b in css(d, '[data-card-key="APPROVE"]') if b.is_enabled()],
          what="the card")  # fmt: skip
    assert css(browser, '[data-card-key="REJECT"]')
    shot(browser, "card-sent")
    click(browser, '[data-card-key="APPROVE"]')
    done = until(browser, lambda d: css(d, '[data-kind="button_interaction"] [data-replaced]'),
                 what="the updated card")  # fmt: skip
    assert done[-1].text == "Approved" and not done[-1].is_enabled()
    assert not css(browser, '[data-card-key="APPROVE"]')  # the buttons gave way to the outcome
    card = css(browser, '#log article[data-msgtype="template_card"]')[-1]
    assert "updated" in card.text
    shot(browser, "card-updated")


def test_the_ai_bot_answer_grows_in_the_chat(browser: Any, sandbox: Sandbox) -> None:  # noqa: F811
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.keys import Keys

    open_console(browser, sandbox, "zhangsan")
    tab = css(browser, "#tab-app")[0]
    tab.send_keys(Keys.ARROW_RIGHT)  # the tablist works from the keyboard
    until(browser, lambda d: css(d, "#tab-bot")[0].get_attribute("aria-selected") == "true")
    css(browser, "#text")[0].send_keys("what is WeCom?", Keys.ENTER)
    final = "You asked: 'what is WeCom?'. Here is a considered answer: it depends."
    seen: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        streams = css(browser, "#log [data-stream]")
        if streams:
            try:
                seen.append((streams[-1].text, streams[-1].get_attribute("data-finished")))
            except StaleElementReferenceException:  # re-rendered under us: read it again
                continue
            if seen[-1] == (final, "true"):
                break
        time.sleep(0.1)
    assert seen and seen[-1] == (final, "true"), seen[-5:]
    growing = [t for t, finished in seen if finished == "false" and t != "…"]  # "…": empty
    assert growing, f"never saw a part of the answer before its end: {seen[:20]}"
    assert all(final.startswith(t) and len(t) < len(final) for t in growing), growing
    assert len(set(growing)) >= 2, f"the answer did not grow while shown: {growing}"
    assert any("what is WeCom?" in t for t in bubbles(browser, "member"))
    shot(browser, "ai-bot")


def test_a_phone_sized_window_works_from_the_keyboard(browser: Any, sandbox: Sandbox) -> None:  # noqa: F811
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(390, 844)
    try:
        open_console(browser, sandbox, "wangwu")
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1"
        ), "the page scrolls sideways on a phone"
        assert css(browser, '[role="log"]') and css(browser, '[role="tablist"]')
        assert css(browser, '[role="toolbar"][aria-label="Application menu"]')
        for button in css(browser, "button"):  # every control has an accessible name
            assert button.text.strip() or button.get_attribute("aria-label"), button
        label = css(browser, 'label[for="text"]')[0].text
        assert "wangwu" in label
        about = css(browser, '#menu [data-key="MENU_ABOUT"]')[0]
        browser.execute_script("arguments[0].focus()", about)
        about.send_keys(Keys.ENTER)
        until(browser, lambda d: any("wecom-callback: verified" in t for t in bubbles(d, "app")))
        shot(browser, "phone")
    finally:
        browser.set_window_size(1280, 900)


def send_every_type(box: Sandbox, member: str) -> None:
    """Through the project's send client to the sandbox's emulator, as handlers send: one
    message of every type, then one recalled."""
    from callback.devtools import sandbox as sandbox_mode
    from callback.outbound import (
        Markdown,
        MiniProgramNotice,
        MpNews,
        MpNewsArticle,
        News,
        NewsArticle,
        TemplateCard,
        Text,
        TextCard,
    )  # fmt: skip
    from callback.outbound.client import WecomClient
    from callback.store import MemoryStore

    env = {"WECOM_SANDBOX_DIR": str(box.directory)}
    env |= {"WECOM_SANDBOX_API_URL": box.state()["emulator"]["url"]}
    client = WecomClient(sandbox_mode.settings(env).apps, MemoryStore())
    thumb = client.upload_media("demo", "image", "thumb.png", b"\x89PNG\r\n\x1a\nthumb")
    cards = [
        {"card_type": "text_notice", "source": {"desc": "HR"},
         "main_title": {"title": "Payday", "desc": "May"},
         "emphasis_content": {"title": "¥ 8,000", "desc": "net"},
         "sub_title_text": "Thanks for your work", "card_action": {"type": 1, "url": "https://e.com"},
         "horizontal_content_list": [{"keyname": "Bank", "value": "CMB"}]},
        {"card_type": "news_notice", "main_title": {"title": "Town hall"},
         "card_image": {"url": "https://e.com/p.png", "aspect_ratio": 1.3},
         "vertical_content_list": [{"title": "Where", "desc": "Room 1"}],
         "card_action": {"type": 1, "url": "https://e.com"}},
        {"card_type": "multiple_interaction", "task_id": "multi-1",
         "main_title": {"title": "Trip"},
         "select_list": [{"question_key": "CITY", "title": "City", "option_list": [
             {"id": "sh", "text": "Shanghai"}, {"id": "gz", "text": "Guangzhou"}]}],
         "submit_button": {"text": "Book", "key": "BOOK_TRIP"}},
    ]  # fmt: skip
    messages = [
        Text("plain text"),
        Markdown("# Report\n**bold** and <font color=\"info\">green</font>\n> a quote"),
        TextCard("Expense approved", "<div class=\"gray\">May 6</div>Lunch, ¥42", "https://e.com"),
        News([NewsArticle("Release 2.0", "https://e.com/r", "What is new")]),
        MpNews([MpNewsArticle("Handbook", thumb, "<p>Read me</p>", digest="The handbook")]),
        MiniProgramNotice(appid=sandbox_mode.MINIPROGRAM_APPID, page="pages/x", title="Booked",
                          description="Room 402", items=[("Room", "402"), ("When", "4 pm")],
                          emphasis_first_item=True),
        *(TemplateCard(card) for card in cards),
    ]  # fmt: skip
    for message in messages:
        app = "notices" if isinstance(message, MiniProgramNotice) else "demo"
        client.send(app, message, [member])
    gone = client.send("demo", Text("a secret plan"), [member])
    client.recall("demo", gone.msgid)


def test_every_message_type_is_shown_as_wecom_shows_it(browser: Any, sandbox: Sandbox) -> None:  # noqa: F811
    send_every_type(sandbox, "zhouba")
    open_console(browser, sandbox, "zhouba")

    def item(kind: str, index: int = 0) -> Any:
        found = css(browser, f'#log article[data-msgtype="{kind}"]')
        return found[index] if len(found) > index else None

    until(browser, lambda d: item("template_card", 2), what="the last card")
    assert "plain text" in item("text").text
    md = item("markdown")
    assert md.find_element("css selector", "h4").text == "Report"
    assert md.find_element("css selector", "strong").text == "bold"
    assert md.find_element("css selector", ".info").text == "green"
    assert "<font" not in md.text and "a quote" in md.text
    assert "Expense approved" in item("textcard").text and "May 6" in item("textcard").text
    assert "<div" not in item("textcard").text
    assert "Release 2.0" in item("news").text and "What is new" in item("news").text
    assert "Handbook" in item("mpnews").text and "The handbook" in item("mpnews").text
    notice = item("miniprogram_notice")
    assert "Booked" in notice.text and "Room 402" in notice.text
    assert notice.find_elements("css selector", "dl.rows.emph dd")[0].text == "402"
    text_notice, news_notice, multiple = (item("template_card", n) for n in range(3))
    assert "Payday" in text_notice.text and "¥ 8,000" in text_notice.text
    assert "CMB" in text_notice.text and "HR" in text_notice.text
    assert "Town hall" in news_notice.text and "Room 1" in news_notice.text
    select = multiple.find_element("css selector", 'select[data-question="CITY"]')
    assert [o.text for o in select.find_elements("css selector", "option")] == [
        "Shanghai", "Guangzhou",
    ]  # fmt: skip
    assert multiple.find_element("css selector", '[data-card-key="BOOK_TRIP"]').is_enabled()
    recalled = css(browser, "#log article.recalled")
    assert len(recalled) == 1 and "This message was recalled." in recalled[0].text
    assert not any("a secret plan" in a.text for a in css(browser, "#log article"))
    shot(browser, "every-type")
