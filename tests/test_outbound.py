"""Outbound builders: every documented limit accepted at its edge and refused one past it."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from callback.errors import ValidationError, WecomError
from callback.outbound import (
    File,
    Image,
    Markdown,
    MiniProgramNotice,
    MpNews,
    MpNewsArticle,
    News,
    NewsArticle,
    NoticeItem,
    Recall,
    Recipients,
    TemplateCard,
    Text,
    TextCard,
    UpdateTemplateCard,
    Video,
    Voice,
    build_send_bodies,
    build_send_body,
)

AGENT = 1000002
URL = "https://example.com/"
TO = Recipients(users=["zhangsan"])


def refused(build: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        build()
    return caught.value


def url_of(size: int) -> str:
    return URL + "a" * (size - len(URL))


def article(**fields: Any) -> NewsArticle:
    return NewsArticle(**({"title": "T", "url": URL} | fields))


def mp_article(**fields: Any) -> MpNewsArticle:
    return MpNewsArticle(
        **({"title": "T", "thumb_media_id": "THUMB", "content": "<p>x</p>"} | fields)
    )


def notice(**fields: Any) -> MiniProgramNotice:
    return MiniProgramNotice(**({"appid": "wx123", "title": "会议预订成功"} | fields))


# -- every type at its limit and one past it -------------------------------------------------

#: How to build a value whose field (the key, before any "#variant") is set to v.
MAKE: dict[str, Callable[[Any], object]] = {
    "text.content": Text,
    "markdown.content": Markdown,
    "textcard.title": lambda v: TextCard(v, "d", URL),
    "textcard.description": lambda v: TextCard("t", v, URL),
    "textcard.url": lambda v: TextCard("t", "d", v),
    "textcard.btntxt": lambda v: TextCard("t", "d", URL, v),
    "news.article.title": lambda v: article(title=v),
    "news.article.description": lambda v: article(description=v),
    "news.article.url": lambda v: article(url=v),
    "news.article.picurl": lambda v: article(picurl=v),
    "news.article.pagepath": lambda v: article(url="", appid="wx1", pagepath=v),
    "news.articles": lambda n: News([article()] * n),
    "mpnews.article.title": lambda v: mp_article(title=v),
    "mpnews.article.thumb_media_id": lambda v: mp_article(thumb_media_id=v),
    "mpnews.article.content": lambda v: mp_article(content=v),
    "mpnews.article.author": lambda v: mp_article(author=v),
    "mpnews.article.digest": lambda v: mp_article(digest=v),
    "mpnews.articles": lambda n: MpNews([mp_article()] * n),
    "image.media_id": Image,
    "voice.media_id": Voice,
    "file.media_id": File,
    "video.media_id": Video,
    "video.title": lambda v: Video("M", title=v),
    "video.description": lambda v: Video("M", description=v),
    "miniprogram_notice.appid": lambda v: notice(appid=v),
    "miniprogram_notice.title": lambda v: notice(title=v),
    "miniprogram_notice.description": lambda v: notice(description=v),
    "miniprogram_notice.page": lambda v: notice(page=v),
    "miniprogram_notice.emphasis_first_item": lambda v: notice(emphasis_first_item=v),
    "miniprogram_notice.content_item": lambda n: notice(items=[("键", "值")] * n),
    "miniprogram_notice.content_item[1].key": lambda v: notice(items=[("a", "b"), (v, "值")]),
    "miniprogram_notice.content_item[0].value": lambda v: notice(items=[{"key": "k", "value": v}]),
    "miniprogram_notice.content_item.value": lambda v: notice(items=[NoticeItem("键", v)]),
}

# (field, value at the limit, value one past it, the limit as the error states it, errcode)
LIMITS: list[tuple[str, Any, Any, str, int | None]] = [
    ("text.content", "x", "", "a non-empty value", 44004),
    ("markdown.content", "a" * 2048, "a" * 2049, "at most 2048 bytes", 45002),
    ("markdown.content", "汉" * 682, "汉" * 683, "at most 2048 bytes", 45002),
    ("markdown.content", "#", "", "a non-empty value", 44004),
    ("textcard.title", "标" * 128, "标" * 129, "at most 128 characters", None),
    ("textcard.title", "t", "", "a non-empty value", 41016),
    ("textcard.description", "述" * 512, "述" * 513, "at most 512 characters", None),
    ("textcard.description", "d", "", "a non-empty value", 41033),
    ("textcard.url", url_of(2048), url_of(2049), "at most 2048 bytes", None),
    ("textcard.url", "http://x", "ftp://x", "http:// or https://, no spaces", None),
    ("textcard.url", URL, "", "a non-empty value", None),
    ("textcard.btntxt", "更多详情", "查看更多详情", "at most 4 characters", None),
    ("news.article.title", "a" * 128, "a" * 129, "at most 128 bytes", None),
    ("news.article.title", "汉" * 42, "汉" * 43, "at most 128 bytes", None),
    ("news.article.title", "t", "", "a non-empty value", 41016),
    ("news.article.description", "d" * 512, "d" * 513, "at most 512 bytes", None),
    ("news.article.url", url_of(2048), url_of(2049), "at most 2048 bytes", None),
    ("news.article.url", URL, "", "a url, or appid and pagepath", None),
    ("news.article.picurl", url_of(2048), url_of(2049), "at most 2048 bytes", None),
    ("news.article.pagepath", "p" * 128, "p" * 129, "at most 128 bytes", None),
    ("news.article.pagepath", "pages/a", "", "appid and pagepath together", None),
    ("news.articles", 8, 9, "1 to 8 items", 45008),
    ("news.articles", 1, 0, "1 to 8 items", 45008),
    ("mpnews.article.title", "a" * 128, "a" * 129, "at most 128 bytes", None),
    ("mpnews.article.thumb_media_id", "T", "", "a non-empty value", None),
    ("mpnews.article.content", "c" * 666_000, "c" * 666_001, "at most 666000 bytes", None),
    ("mpnews.article.content", "c", "", "a non-empty value", None),
    ("mpnews.article.author", "作" * 21, "作" * 22, "at most 64 bytes", 45032),
    ("mpnews.article.digest", "d" * 512, "d" * 513, "at most 512 bytes", None),
    ("mpnews.articles", 8, 9, "1 to 8 items", 45008),
    ("image.media_id", "M", "", "a non-empty value", None),
    ("image.media_id", "M1", "M1\n", "an id without whitespace", None),
    ("voice.media_id", "M", "", "a non-empty value", None),
    ("file.media_id", "M", "", "a non-empty value", None),
    ("video.media_id", "M", " ", "an id without whitespace", None),
    ("video.title", "汉" * 42 + "ab", "汉" * 43, "at most 128 bytes", None),
    ("video.description", "d" * 512, "d" * 513, "at most 512 bytes", None),
    ("miniprogram_notice.appid", "wx1", "", "a non-empty value", 90200),
    ("miniprogram_notice.title", "会议通知", "会议", "4 to 12 characters", None),
    ("miniprogram_notice.title", "会" * 12, "会" * 13, "4 to 12 characters", None),
    ("miniprogram_notice.title", "Meet", "Met", "4 to 12 characters", None),
    ("miniprogram_notice.title", "会议通知", "", "a non-empty value", None),
    ("miniprogram_notice.description", "4月27", "4月2", "4 to 12 characters", None),
    ("miniprogram_notice.description", "描" * 12, "描" * 13, "4 to 12 characters", None),
    ("miniprogram_notice.page", "p" * 1024, "p" * 1025, "at most 1024 bytes", 90204),
    ("miniprogram_notice.emphasis_first_item", True, 1, "true or false", None),
    ("miniprogram_notice.content_item", 10, 11, "at most 10 items", 90201),
    (
        "miniprogram_notice.content_item[1].key",
        "键" * 10,
        "键" * 11,
        "at most 10 characters",
        90202,
    ),
    ("miniprogram_notice.content_item[1].key", "键", "", "a non-empty value", 90202),
    ("miniprogram_notice.content_item[0].value", "值", "", "a non-empty value", 90203),
    ("miniprogram_notice.content_item.value", "值" * 30, "值" * 31, "at most 30 characters", 90203),
]


@pytest.mark.parametrize(
    ("field", "at", "past", "limit", "code"), LIMITS, ids=[f"{r[0]} {r[3]}" for r in LIMITS]
)
def test_limit_accepted_at_edge_and_refused_past_it(
    field: str, at: Any, past: Any, limit: str, code: int | None
) -> None:
    MAKE[field](at)
    error = refused(lambda: MAKE[field](past))
    assert (error.field, error.limit, error.code) == (field, limit, code)
    assert field in str(error) and limit in str(error)
    assert isinstance(error, WecomError) and error.value is not None


def test_error_message_names_field_value_and_limit() -> None:
    error = refused(lambda: notice(title="会议"))
    assert (
        str(error)
        == 'miniprogram_notice.title: "会议" is 2 characters; WeCom requires 4 to 12 characters'
    )
    assert (error.field, error.value, error.limit) == (
        "miniprogram_notice.title",
        "会议",
        "4 to 12 characters",
    )


def test_error_message_shortens_long_values() -> None:
    error = refused(lambda: Markdown("m" * 5000))
    assert len(str(error)) < 300 and "…" in str(error) and "5000 bytes" in str(error)
    assert "cannot be split" in str(error)
    assert error.value == "m" * 5000


def test_values_are_frozen_and_lists_become_tuples() -> None:
    news = News([article(), article(title="B")])
    assert isinstance(news.articles, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        news.articles = ()  # type: ignore[misc]
    assert News((article(),)) == News([article()])


def test_articles_from_mappings_name_their_index() -> None:
    news = News([{"title": "A", "url": URL}])
    assert news.payload() == {"articles": [{"title": "A", "url": URL}]}
    error = refused(lambda: News([{"title": "A", "url": URL}, {"title": "", "url": URL}]))
    assert error.field == "news.articles[1].title"
    assert refused(lambda: News([{"titel": "A"}])).field == "news.articles[0]"
    long_title = {"title": "x" * 200, "thumb_media_id": "T", "content": "c"}
    error = refused(lambda: MpNews([mp_article(), long_title]))
    assert error.field == "mpnews.articles[1].title"


def test_nothing_is_stripped_or_truncated() -> None:
    assert Text("  hi \n").payload() == {"content": "  hi \n"}
    assert refused(lambda: Recipients(users=["zhangsan "])).field == "recipients.users[0]"
    assert refused(lambda: Image(" MEDIA")).field == "image.media_id"


def test_payloads_leave_out_empty_optional_fields() -> None:
    assert TextCard("t", "d", URL).payload() == {"title": "t", "description": "d", "url": URL}
    assert TextCard("t", "d", URL, "更多").payload()["btntxt"] == "更多"
    assert Video("M").payload() == {"media_id": "M"}
    assert article(url="", appid="wx1", pagepath="p").payload() == {
        "title": "T",
        "appid": "wx1",
        "pagepath": "p",
    }
    assert mp_article(digest="d").payload() == {
        "title": "T",
        "thumb_media_id": "THUMB",
        "content": "<p>x</p>",
        "digest": "d",
    }


# -- miniprogram_notice ------------------------------------------------------------------------

OFFICIAL_NOTICE_BODY = json.loads(
    """{"touser":"zhangsan|lisi","toparty":"1|2","totag":"1|2","msgtype":"miniprogram_notice",
     "miniprogram_notice":{"appid":"wx123123123123123",
       "page":"pages/index?userid=zhangsan&orderid=123123123",
       "title":"会议室预订成功通知","description":"4月27日 16:16","emphasis_first_item":true,
       "content_item":[{"key":"会议室","value":"402"},{"key":"会议地点","value":"广州TIT-402会议室"}]},
     "enable_id_trans":0,"enable_duplicate_check":0,"duplicate_check_interval":1800}"""
)


def official_notice() -> MiniProgramNotice:
    return MiniProgramNotice(
        appid="wx123123123123123",
        title="会议室预订成功通知",
        page="pages/index?userid=zhangsan&orderid=123123123",
        description="4月27日 16:16",
        items=[("会议室", "402"), NoticeItem("会议地点", "广州TIT-402会议室")],
        emphasis_first_item=True,
    )


@pytest.mark.parametrize("agent_id", [None, AGENT])
def test_official_notice_example_builds_the_documented_body(agent_id: int | None) -> None:
    to = Recipients.parse(users="zhangsan|lisi", parties="1|2", tags="1|2")
    body = build_send_body(official_notice(), to, agent_id)
    assert body == OFFICIAL_NOTICE_BODY
    assert list(body) == list(OFFICIAL_NOTICE_BODY)
    assert "agentid" not in body and "safe" not in body


def test_notice_refuses_at_all_and_safe() -> None:
    error = refused(lambda: build_send_body(official_notice(), Recipients.all(), None))
    assert error.field == "touser" and "@all" in str(error)
    assert refused(lambda: build_send_body(official_notice(), TO, None, safe=1)).field == "safe"


def test_notice_items_keep_order_and_drop_blank_rows() -> None:
    rows = [("甲", "1"), ("", ""), NoticeItem("", ""), {"key": "乙", "value": "2"}]
    built = notice(items=rows + [("丙", "3")] * 8)
    assert [i.key for i in built.content_item][:3] == ["甲", "乙", "丙"]
    assert len(built.content_item) == 10
    assert notice(items={"甲": "1", "乙": "2"}).payload()["content_item"] == [
        {"key": "甲", "value": "1"},
        {"key": "乙", "value": "2"},
    ]
    assert "content_item" not in notice().payload()


# -- text split --------------------------------------------------------------------------------

SPLIT_CASES = {
    "ascii": "a" * 5000,
    "cjk": "汉" * 1500,
    "emoji": "😀" * 1100,
    "cjk offset": "a" + "汉" * 1400,
    "emoji offset": "ab" + "😀" * 1100,
    "mixed": ("a汉😀é" * 700),
}


@pytest.mark.parametrize("content", SPLIT_CASES.values(), ids=SPLIT_CASES.keys())
def test_split_rejoins_and_respects_the_byte_limit(content: str) -> None:
    parts = Text(content).split()
    assert len(parts) > 1
    assert "".join(p.content for p in parts) == content
    for part in parts:
        data = part.content.encode("utf-8")
        assert 0 < len(data) <= 2048
        assert data.decode("utf-8") == part.content
    for part in parts[:-1]:  # no space or newline: each cut is as late as a character allows
        assert len(part.content.encode()) > 2048 - 4


def test_split_prefers_a_newline_then_a_space_near_the_limit() -> None:
    near_newline = "x" * 1900 + "\n" + "y" * 1000
    assert Text(near_newline).split()[0].content == "x" * 1900 + "\n"
    near_space = "x" * 1950 + " " + "y" * 500
    assert Text(near_space).split()[0].content == "x" * 1950 + " "
    both = "x" * 1860 + "\n" + "x" * 100 + " " + "y" * 500
    assert Text(both).split()[0].content.endswith("\n")
    far_newline = "x" * 100 + "\n" + "y" * 3000
    assert len(Text(far_newline).split()[0].content.encode()) == 2048


def test_split_short_text_is_itself_and_limit_is_checked() -> None:
    short = Text("汉" * 682)
    assert short.split() == (short,)
    with pytest.raises(ValueError, match="at least 4"):
        short.split(3)


def test_split_random_content_and_limits() -> None:
    rng = random.Random(7)
    alphabet = ["a", " ", "\n", "é", "汉", "😀", "ß"]
    for _ in range(200):
        content = "".join(rng.choices(alphabet, k=rng.randint(1, 400)))
        limit = rng.randint(4, 60)
        parts = Text(content).split(limit)
        assert "".join(p.content for p in parts) == content
        assert all(0 < len(p.content.encode()) <= limit for p in parts)


def test_oversize_text_needs_split_before_sending() -> None:
    long_text = Text("汉" * 1000)
    error = refused(lambda: build_send_body(long_text, TO, AGENT))
    assert (error.field, error.code) == ("text.content", 45002) and "split" in str(error)
    bodies = build_send_bodies(long_text, TO, AGENT)
    assert len(bodies) == 2
    assert "".join(b["text"]["content"] for b in bodies) == long_text.content


# -- send bodies -------------------------------------------------------------------------------


def test_text_body_has_agentid_and_safe() -> None:
    body = build_send_body(Text("hi"), TO, AGENT, safe=1, enable_duplicate_check=True)
    assert body == {
        "touser": "zhangsan",
        "msgtype": "text",
        "agentid": AGENT,
        "text": {"content": "hi"},
        "safe": 1,
        "enable_id_trans": 0,
        "enable_duplicate_check": 1,
        "duplicate_check_interval": 1800,
    }


SAFE = [
    (Text("x"), 1, True),
    (Image("M"), 1, True),
    (Video("M"), 1, True),
    (File("M"), 1, True),
    (MpNews([mp_article()]), 2, True),
    (Text("x"), 2, False),
    (File("M"), 2, False),
    (News([article()]), 1, False),
    (Voice("M"), 1, False),
    (Markdown("x"), 1, False),
    (TextCard("t", "d", URL), 1, False),
    (TemplateCard.text_notice("t", URL), 1, False),
    (Text("x"), 3, False),
    (Text("x"), True, False),
]


@pytest.mark.parametrize(
    ("message", "safe", "ok"), SAFE, ids=[f"{m.msgtype}-{s}" for m, s, _ in SAFE]
)
def test_safe_only_where_documented(message: Any, safe: int, ok: bool) -> None:
    if ok:
        assert build_send_body(message, TO, AGENT, safe=safe)["safe"] == safe
    else:
        assert refused(lambda: build_send_body(message, TO, AGENT, safe=safe)).field == "safe"


def test_news_with_safe_is_40074_and_types_without_safe_send_none() -> None:
    assert refused(lambda: build_send_body(News([article()]), TO, AGENT, safe=1)).code == 40074
    for message in (News([article()]), Voice("M"), Markdown("x"), TextCard("t", "d", URL)):
        assert "safe" not in build_send_body(message, TO, AGENT)


@pytest.mark.parametrize(
    ("agent_id", "code"), [(None, 41011), (-1, 40056), (True, 40056), ("1000002", 40056)]
)
def test_agentid_is_required_except_for_notices(agent_id: Any, code: int) -> None:
    assert refused(lambda: build_send_body(Text("x"), TO, agent_id)).code == code


@pytest.mark.parametrize(("interval", "ok"), [(1, True), (14400, True), (0, False), (14401, False)])
def test_duplicate_check_interval_range(interval: int, ok: bool) -> None:
    def build() -> dict[str, Any]:
        return build_send_body(Text("x"), TO, AGENT, duplicate_check_interval=interval)

    if ok:
        assert build()["duplicate_check_interval"] == interval
    else:
        assert refused(build).limit == "1 to 14400 seconds (4 h)"


def test_everyone_goes_as_at_all() -> None:
    assert build_send_body(Text("x"), Recipients.all(), AGENT)["touser"] == "@all"


# -- recipients --------------------------------------------------------------------------------


def test_recipients_fields_join_without_spaces_and_dedupe_in_order() -> None:
    to = Recipients(users=["b", "a", "b"], parties=(2, "1", 2), tags=["7"])
    assert to.users == ("b", "a") and to.parties == ("2", "1")
    assert to.to_fields() == {"touser": "b|a", "toparty": "2|1", "totag": "7"}
    assert Recipients(parties=[3]).to_fields() == {"toparty": "3"}


def test_recipients_parse_and_of() -> None:
    assert Recipients.parse("U1, U2,,U1", "1 | 2") == Recipients(["U1", "U2"], ["1", "2"])
    assert Recipients.parse("@all").everyone
    assert Recipients.of("U1|U2").users == ("U1", "U2")
    assert Recipients.of(["U1"]).users == ("U1",)
    assert Recipients(users=["@all"]) == Recipients.all()


RECIPIENT_LIMITS = [
    ("users", [f"u{i}" for i in range(1000)], [f"u{i}" for i in range(1001)], 40031),
    ("parties", list(range(1, 101)), list(range(1, 102)), 82002),
    ("tags", [str(i) for i in range(100)], [str(i) for i in range(101)], 82003),
]


@pytest.mark.parametrize(
    ("name", "at", "past", "code"), RECIPIENT_LIMITS, ids=[r[0] for r in RECIPIENT_LIMITS]
)
def test_recipient_list_limits(name: str, at: list[Any], past: list[Any], code: int) -> None:
    def build(ids: list[Any]) -> Recipients:
        kwargs: dict[str, Any] = {name: ids}
        return Recipients(**kwargs)

    assert len(getattr(build(at + at[:1]), name)) == len(at)  # a duplicate does not count twice
    error = refused(lambda: build(past))
    assert (error.field, error.code) == (f"recipients.{name}", code)


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({}, "recipients", 82001),
        ({"users": [], "parties": ()}, "recipients", 82001),
        ({"users": ["a"], "everyone": True}, "recipients", None),
        ({"users": ["@all", "a"]}, "recipients.users", None),
        ({"users": ["a|b"]}, "recipients.users[0]", None),
        ({"users": ["a b"]}, "recipients.users[0]", None),
        ({"users": [""]}, "recipients.users[0]", None),
        ({"users": "zhangsan"}, "recipients.users", None),
        ({"parties": ["dev"]}, "recipients.parties[0]", None),
        ({"tags": [True]}, "recipients.tags[0]", None),
        ({"users": ["a"], "everyone": 1}, "recipients.everyone", None),
    ],
)
def test_recipient_rules(kwargs: dict[str, Any], field: str, code: int | None) -> None:
    error = refused(lambda: Recipients(**kwargs))
    assert (error.field, error.code) == (field, code)


# -- template cards ----------------------------------------------------------------------------


def card(kind: str, /, **parts: Any) -> dict[str, Any]:
    """A minimal valid card of the type, with `parts` replacing or adding blocks (None removes)."""
    bases: dict[str, dict[str, Any]] = {
        "text_notice": {"main_title": {"title": "T"}, "card_action": {"type": 1, "url": URL}},
        "news_notice": {
            "main_title": {"title": "T"},
            "card_image": {"url": URL},
            "card_action": {"type": 1, "url": URL},
        },
        "button_interaction": {"task_id": "t1", "button_list": [{"text": "OK", "key": "k"}]},
        "vote_interaction": {
            "task_id": "t1",
            "checkbox": {"question_key": "q", "option_list": [{"id": "a", "text": "A"}]},
            "submit_button": {"text": "提交", "key": "s"},
        },
        "multiple_interaction": {
            "task_id": "t1",
            "select_list": [{"question_key": "q", "option_list": [{"id": "a", "text": "A"}]}],
            "submit_button": {"key": "s"},
        },
    }
    merged = {"card_type": kind} | bases[kind] | parts
    return {key: value for key, value in merged.items() if value is not None}


def text_card(**parts: Any) -> dict[str, Any]:
    return card("text_notice", **parts)


def news_card(**parts: Any) -> dict[str, Any]:
    return card("news_notice", **parts)


def button_card(**parts: Any) -> dict[str, Any]:
    return card("button_interaction", **parts)


def vote_card(**parts: Any) -> dict[str, Any]:
    return card("vote_interaction", **parts)


def multi_card(**parts: Any) -> dict[str, Any]:
    return card("multiple_interaction", **parts)


def options(n: int) -> list[dict[str, str]]:
    return [{"id": f"o{i}", "text": "选项"} for i in range(n)]


def question(option_list: list[dict[str, Any]], key: str = "q", **more: Any) -> dict[str, Any]:
    return {"question_key": key, "option_list": option_list} | more


def menu(*keys: str) -> dict[str, Any]:
    return {"action_list": [{"text": "菜单", "key": key} for key in keys]}


def keys(n: int) -> list[str]:
    return [f"k{i}" for i in range(n)]


def checked(n: int) -> dict[str, Any]:
    return question([o | {"is_checked": i < n} for i, o in enumerate(options(3))])


#: How to build a card whose field (the key under template_card, before any "#") is set to v.
MAKE_CARD: dict[str, Callable[[Any], dict[str, Any]]] = {
    "card_type": lambda v: text_card(card_type=v),
    "task_id": lambda v: button_card(task_id=v),
    "task_id#vote": lambda v: vote_card(task_id=v),
    "task_id#menu": lambda v: text_card(task_id=v, action_menu=menu("a")),
    "action_menu.action_list": lambda n: text_card(task_id="t", action_menu=menu(*keys(n))),
    "action_menu.action_list[0].key": lambda v: text_card(task_id="t", action_menu=menu(v)),
    "action_menu.action_list[].key": lambda v: text_card(task_id="t", action_menu=menu("a", v)),
    "source.desc_color": lambda v: text_card(source={"desc_color": v}),
    "horizontal_content_list": lambda n: text_card(
        horizontal_content_list=[{"keyname": "k", "value": "v"}] * n
    ),
    "horizontal_content_list[0].url": lambda v: text_card(
        horizontal_content_list=[{"keyname": "k", "type": 1, "url": v}]
    ),
    "horizontal_content_list[0].userid": lambda v: text_card(
        horizontal_content_list=[{"keyname": "k", "type": 3, "userid": v}]
    ),
    "jump_list": lambda n: text_card(jump_list=[{"title": "j", "type": 1, "url": URL}] * n),
    "card_action": lambda v: text_card(card_action=v),
    "card_action.type": lambda v: news_card(card_action={"type": v, "url": URL}),
    "card_action.type#missing": lambda v: text_card(card_action=v),
    "card_action.url": lambda v: text_card(card_action={"type": 1, "url": v}),
    "card_action.appid": lambda v: text_card(card_action={"type": 2, "appid": v}),
    "main_title.title": lambda v: text_card(main_title=None, sub_title_text=v),
    "card_image": lambda v: news_card(card_image=v),
    "card_image#both": lambda v: news_card(image_text_area=v),
    "card_image.aspect_ratio": lambda v: news_card(card_image={"url": URL, "aspect_ratio": v}),
    "vertical_content_list": lambda n: news_card(vertical_content_list=[{"title": "v"}] * n),
    "button_list": lambda n: button_card(button_list=[{"text": "b", "key": k} for k in keys(n)]),
    "button_list[0].text": lambda v: button_card(button_list=[{"text": v, "key": "k"}]),
    "button_list[0].key": lambda v: button_card(button_list=[{"text": "b", "key": v}]),
    "button_list[0].url": lambda v: button_card(button_list=[{"type": 1, "text": "b", "url": v}]),
    "button_list[0].style": lambda v: button_card(
        button_list=[{"text": "b", "key": "k", "style": v}]
    ),
    "button_selection.option_list": lambda n: button_card(button_selection=question(options(n))),
    "button_selection.selected_id": lambda v: button_card(
        button_selection=question(options(2), selected_id=v)
    ),
    "checkbox": lambda v: vote_card(checkbox=v),
    "checkbox.option_list": lambda n: vote_card(checkbox=question(options(n))),
    "checkbox.option_list#checked": lambda n: vote_card(checkbox=checked(n)),
    "checkbox.option_list[0].id": lambda v: vote_card(checkbox=question([{"id": v, "text": "x"}])),
    "checkbox.option_list[].id": lambda v: vote_card(
        checkbox=question([{"id": "a", "text": "x"}, {"id": v, "text": "y"}])
    ),
    "submit_button": lambda v: vote_card(submit_button=v),
    "submit_button.text": lambda v: vote_card(submit_button={"text": v, "key": "s"}),
    "submit_button.key": lambda v: multi_card(submit_button={"key": v}),
    "select_list": lambda n: multi_card(select_list=[question(options(1), k) for k in keys(n)]),
    "select_list[0].option_list": lambda n: multi_card(select_list=[question(options(n))]),
    "select_list[].question_key": lambda k: multi_card(
        select_list=[question(options(1), "q"), question(options(1), k)]
    ),
}

# (field, value at the limit, value one past it); None removes the block
CARD_LIMITS: list[tuple[str, Any, Any]] = [
    ("card_type", "text_notice", "textcard"),
    ("task_id", "t" * 128, "t" * 129),
    ("task_id", "A-z_@9", "a#b"),
    ("task_id", "ab", "a b"),
    ("task_id#vote", "t", None),
    ("task_id#menu", "t", None),
    ("action_menu.action_list", 3, 4),
    ("action_menu.action_list", 1, 0),
    ("action_menu.action_list[0].key", "k" * 1024, "k" * 1025),
    ("action_menu.action_list[].key", "b", "a"),
    ("source.desc_color", 3, 4),
    ("horizontal_content_list", 6, 7),
    ("horizontal_content_list[0].url", URL, ""),
    ("horizontal_content_list[0].userid", "u", ""),
    ("jump_list", 3, 4),
    ("card_action", {"type": 2, "appid": "wx1"}, None),
    ("card_action.type", 1, 0),
    ("card_action.type#missing", {"type": 1, "url": URL}, {"url": URL}),
    ("card_action.url", URL, ""),
    ("card_action.appid", "wx1", ""),
    ("main_title.title", "副标题", ""),
    ("card_image", {"url": URL}, None),
    ("card_image#both", None, {"image_url": URL}),
    ("card_image.aspect_ratio", 2.25, 2.26),
    ("card_image.aspect_ratio", 1.3, 1.29),
    ("vertical_content_list", 4, 5),
    ("button_list", 6, 7),
    ("button_list", 1, 0),
    ("button_list[0].text", "按" * 10, "按" * 11),
    ("button_list[0].key", "k" * 1024, "k" * 1025),
    ("button_list[0].url", URL, ""),
    ("button_list[0].style", 4, 5),
    ("button_selection.option_list", 10, 11),
    ("button_selection.selected_id", "o1", "o9"),
    ("checkbox", question(options(1)), None),
    ("checkbox.option_list", 20, 21),
    ("checkbox.option_list", 1, 0),
    ("checkbox.option_list#checked", 1, 2),
    ("checkbox.option_list[0].id", "i" * 128, "i" * 129),
    ("checkbox.option_list[].id", "b", "a"),
    ("submit_button", {"key": "s"}, None),
    ("submit_button.text", "提" * 10, "提" * 11),
    ("submit_button.key", "s", ""),
    ("select_list", 3, 4),
    ("select_list", 1, 0),
    ("select_list[0].option_list", 10, 11),
    ("select_list[].question_key", "r", "q"),
]


@pytest.mark.parametrize(("field", "at", "past"), CARD_LIMITS, ids=[r[0] for r in CARD_LIMITS])
def test_card_limits(field: str, at: Any, past: Any) -> None:
    TemplateCard(MAKE_CARD[field](at))
    error = refused(lambda: TemplateCard(MAKE_CARD[field](past)))
    assert error.field == "template_card." + field.partition("#")[0]
    assert error.field in str(error) and error.limit in str(error)


def test_card_error_codes() -> None:
    assert refused(lambda: TemplateCard(card("text_notice", card_type="x"))).code == 42031
    long_text = card("button_interaction", button_list=[{"text": "x" * 11, "key": "k"}])
    assert refused(lambda: TemplateCard(long_text)).code == 42038
    assert refused(lambda: TemplateCard("not a card")).field == "template_card"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("built", "returns"),
    [
        (card("text_notice"), False),
        (card("news_notice"), False),
        (card("text_notice", task_id="t", action_menu=menu("a")), True),
        (card("news_notice", task_id="t", action_menu=menu("a")), True),
        (card("button_interaction"), True),
        (card("vote_interaction"), True),
        (card("multiple_interaction"), True),
    ],
)
def test_response_code_comes_back_for_interactive_and_menu_cards(
    built: dict[str, Any], returns: bool
) -> None:
    assert TemplateCard(built).returns_response_code is returns


def test_card_is_a_private_copy() -> None:
    raw = card("button_interaction")
    template = TemplateCard(raw)
    raw["button_list"].append({"text": "x" * 50})
    assert template.payload() == card("button_interaction")
    template.payload()["task_id"] = "changed"
    assert template.task_id == "t1"
    body = build_send_body(template, TO, AGENT)
    assert body["template_card"] == card("button_interaction") and "safe" not in body


def test_card_helpers_build_documented_json() -> None:
    assert TemplateCard.text_notice("标题", URL, desc="说明").payload() == {
        "card_type": "text_notice",
        "main_title": {"title": "标题", "desc": "说明"},
        "card_action": {"type": 1, "url": URL},
    }
    buttons_card = TemplateCard.button_interaction(
        "task-1", "审批", [("同意", "yes"), ("驳回", "no")]
    )
    assert buttons_card.payload() == {
        "card_type": "button_interaction",
        "task_id": "task-1",
        "main_title": {"title": "审批"},
        "button_list": [{"text": "同意", "key": "yes"}, {"text": "驳回", "key": "no"}],
    }
    vote = TemplateCard.vote_interaction(
        "v1", "投票", "q", [("a", "甲"), ("b", "乙")], submit_key="s", multi=True
    )
    assert vote.payload()["checkbox"]["mode"] == 1 and vote.returns_response_code
    assert refused(lambda: TemplateCard.button_interaction("t 1", "x", [("a", "k")])).field == (
        "template_card.task_id"
    )


# -- update_template_card and recall ---------------------------------------------------------


def test_update_button_body() -> None:
    update = UpdateTemplateCard("RC", replace_name="已处理", users=["u1", "u1"], parties=[2])
    assert update.body(AGENT) == {
        "userids": ["u1"],
        "partyids": [2],
        "atall": 0,
        "agentid": AGENT,
        "response_code": "RC",
        "button": {"replace_name": "已处理"},
    }


def test_update_card_body_for_everyone() -> None:
    update = UpdateTemplateCard("RC", card=card("text_notice"), everyone=True)
    assert isinstance(update.card, TemplateCard)
    assert update.body(AGENT) == {
        "atall": 1,
        "agentid": AGENT,
        "response_code": "RC",
        "template_card": card("text_notice"),
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"response_code": "RC", "users": ["u"]}, "update_template_card"),
        (
            {
                "response_code": "RC",
                "replace_name": "x",
                "card": card("text_notice"),
                "users": ["u"],
            },
            "update_template_card",
        ),
        (
            {"response_code": "", "replace_name": "x", "users": ["u"]},
            "update_template_card.response_code",
        ),
        (
            {"response_code": "RC", "replace_name": "", "users": ["u"]},
            "update_template_card.button.replace_name",
        ),
        ({"response_code": "RC", "replace_name": "x"}, "recipients"),
        (
            {"response_code": "RC", "card": {"card_type": "x"}, "users": ["u"]},
            "template_card.card_type",
        ),
    ],
)
def test_update_rules(kwargs: dict[str, Any], field: str) -> None:
    assert refused(lambda: UpdateTemplateCard(**kwargs)).field == field


def test_update_agent_id_checked() -> None:
    update = UpdateTemplateCard("RC", replace_name="x", users=["u"])
    assert refused(lambda: update.body(True)).field == "agentid"


def test_recall_body() -> None:
    assert Recall("MSGID").body() == {"msgid": "MSGID"}
    assert refused(lambda: Recall("")).field == "recall.msgid"
