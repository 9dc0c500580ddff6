"""The XML reader's fast path for flat documents gives expat's verdict on every input."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callback.errors import BadRequest
from callback.inbound import xmlcodec

SAMPLES = sorted((Path(__file__).parent / "samples" / "xml").glob("*.xml"))
SAMPLE_BYTES = [p.read_bytes() for p in SAMPLES]
#: Flat documents with edge cases that the fast path reads itself.
EXTRA = [
    b"<xml><A><![CDATA[line1\r\nline2\rline3]]></A><B>plain \r\n text</B></xml>",
    b"<xml>\n  <A>1</A>\n  <A>2</A>\n  <A>3</A>\n</xml>\n",
    b"<xml><A><![CDATA[<b>markup</b> & stuff]]></A><E></E></xml>",
    "<xml><A><![CDATA[中文 😀]]></A></xml>".encode(),
    b"<xml><A>a]b]]c > d</A><B><![CDATA[]]]></B><C><![CDATA[]]]]></C></xml>",
    b" \r\n<xml><_a1>\t</_a1></xml>\n ",
    "<xml><A>\x7f\x85\ufdd0\ufeff\U0001fffe</A></xml>".encode(),
]
#: Inputs at the fast path's edge that it leaves to expat.
LEFT_TO_EXPAT = [
    b"<xml><A><B>1</B></A></xml>",  # nested
    b"<xml><A>x &amp; y</A></xml>",  # an entity
    b'<?xml version="1.0"?><xml><A>1</A></xml>',  # a declaration
    b'<xml><A x="1">1</A></xml>',  # an attribute
    "\x85<xml><A>1</A></xml>".encode(),  # not XML whitespace: refused outside the root
    "<xml>\u3000<A>1</A></xml>".encode(),  # ... and text (ignored) inside it
    '<?xml version="1.0" encoding="ISO-8859-1"?><xml><A>é</A></xml>'.encode("latin-1"),
]

#: Inputs the old fast path accepted although expat refuses them (or reads them differently).
DISAGREED = {
    "NUL in text": b"<xml><A>a\x00b</A></xml>",
    "C0 control in text": b"<xml><A>a\x01b</A></xml>",
    "C0 control in CDATA": b"<xml><A><![CDATA[a\x1fb]]></A></xml>",
    "\\v between elements": b"<xml>\x0b<A>1</A></xml>",
    "\\f before the root": b"\x0c<xml><A>1</A></xml>",
    "\\f after the root": b"<xml><A>1</A></xml>\x0c",
    "]]> in text": b"<xml><A>a]]>b</A></xml>",
    "U+FFFE in text": "<xml><A>a\ufffe</A></xml>".encode(),
    "U+FFFF in CDATA": "<xml><A><![CDATA[\uffff]]></A></xml>".encode(),
    "empty root": b"<xml></xml>",
    "whitespace-only root": b"<xml>\n </xml>",
    "name starting with a digit": b"<xml><1A>x</1A></xml>",
    "root name starting with a digit": b"<9><A>x</A></9>",
}


def verdict(parse: Callable[[bytes], dict[str, Any]], data: bytes) -> object:
    """What a parser makes of data: its value, or the BadRequest class if it refuses it."""
    try:
        return parse(data)
    except BadRequest:
        return BadRequest


def assert_same_verdict(data: bytes) -> None:
    assert verdict(xmlcodec.parse, data) == verdict(xmlcodec._parse_expat, data), data


@pytest.mark.parametrize("data", SAMPLE_BYTES + EXTRA + LEFT_TO_EXPAT)
def test_fast_path_equals_expat(data: bytes) -> None:
    assert_same_verdict(data)


@pytest.mark.parametrize("data", DISAGREED.values(), ids=DISAGREED.keys())
def test_former_disagreements_get_expats_verdict(data: bytes) -> None:
    assert_same_verdict(data)


@pytest.mark.parametrize("data", LEFT_TO_EXPAT)
def test_fast_path_declines_the_rest(data: bytes) -> None:
    assert xmlcodec._flat(data) is None


def test_fast_path_is_taken_for_every_flat_sample() -> None:
    """The speed is kept: each flat sample (only leaves) is read without expat."""
    flat = [d for d in SAMPLE_BYTES if all(isinstance(v, str) for v in _leaves(d))]
    assert len(flat) > len(SAMPLE_BYTES) // 2
    for data in flat + EXTRA:
        assert xmlcodec._flat(data) is not None, data


def _leaves(data: bytes) -> list[Any]:
    (inner,) = xmlcodec._parse_expat(data).values()
    return [x for v in inner.values() for x in (v if isinstance(v, list) else [v])]


def test_bad_utf8_is_refused() -> None:
    with pytest.raises(BadRequest, match="malformed XML"):
        xmlcodec.parse(b"<xml><A>\xff\xfe</A></xml>")


def test_a_declared_encoding_is_left_to_expat() -> None:
    """Not UTF-8 is not malformed: the fast path declines, and expat reads the declared encoding."""
    assert xmlcodec.parse(LEFT_TO_EXPAT[-1]) == {"xml": {"A": "é"}}


# --- Property: flat documents with one hazard, mutated real documents, random bytes --------

#: Byte strings that break a flat document, or are fine, depending on where they land.
HAZARD_LIST = [
    *[b"\x00", b"\x01", b"\x08", b"\x0b", b"\x0c", b"\x1f", b"\x7f", b"\t", b"\r", b"\r\n"],
    *[b"]", b"]]", b"]]>", b">", b"<", b"&", b"&amp;", b"&lt;", b"&#0;", b"&#x41;", b"&x;"],
    *["\ufffe".encode(), "\uffff".encode(), "\ufeff".encode(), "\x85".encode(), "中".encode()],
    *[b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe4\xb8", b"\xff\xfe"],
    *[b"<![CDATA[", b"</", b"/", b"!", b"<a/>", b"<b>", b"</b>", b' x="1"', b"<!-- c -->"],
    *[b"<!DOCTYPE x>", b'<?xml version="1.0"?>', b"0", b"-", b":", b" "],
]
HAZARDS = st.sampled_from(HAZARD_LIST) | st.binary(min_size=1, max_size=3)


def _utf8(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return text.map(str.encode)


#: Text a leaf may hold as-is, mostly ("]" and ">" can still make "]]>").
TEXT = _utf8(
    st.text(alphabet="aZ09 _-.,:;!?/=+]>\t\r\n\x7f\x85é中，\ufeff\ufdd0😀\U0001fffe", max_size=8)
)
NAMES = _utf8(st.sampled_from(["xml", "ToUserName", "Encrypt", "AgentID", "A", "_a1", "x-y"]))
ODD_NAMES = _utf8(
    st.sampled_from(["0", "9a", "-a", ".a", "a:b", "中", "a b", ""])
    | st.text(alphabet="Az_09-.:é中 ", max_size=3)
)
SPACE = _utf8(st.text(alphabet=" \t\r\n", max_size=2))
ODD_SPACE = _utf8(st.text(alphabet=" \t\r\n\x0b\x0c\x85\u3000\ufeff", min_size=1, max_size=2))


def _leaf_content(text: bytes, in_cdata: bool) -> bytes:
    return b"<![CDATA[" + text + b"]]>" if in_cdata else text


CONTENT = st.builds(_leaf_content, TEXT, st.booleans())
ODD_CONTENT = st.builds(_leaf_content, st.tuples(TEXT, HAZARDS, TEXT).map(b"".join), st.booleans())


@st.composite
def flat_documents(draw: st.DrawFn) -> bytes:
    """A flat document, well-formed, or with one slot (name, space, content, end tag) spoilt."""
    leaves = draw(st.integers(0, 4))
    spoilt = draw(st.integers(0, 4 + 4 * leaves))  # the slot that gets a hazard; the last: none
    slots = itertools.count()

    def slot(clean: st.SearchStrategy[bytes], odd: st.SearchStrategy[bytes]) -> bytes:
        return draw(odd if next(slots) == spoilt else clean)

    root = slot(NAMES, ODD_NAMES)
    parts = [slot(SPACE, ODD_SPACE), b"<", root, b">"]
    for _ in range(leaves):
        tag = slot(NAMES, ODD_NAMES)
        content, end = slot(CONTENT, ODD_CONTENT), slot(st.just(tag), NAMES | ODD_NAMES)
        parts += [slot(SPACE, ODD_SPACE), b"<", tag, b">", content, b"</", end, b">"]
    parts += [slot(SPACE, ODD_SPACE), b"</", root, b">", slot(SPACE, ODD_SPACE)]
    return b"".join(parts)


@st.composite
def mutated(draw: st.DrawFn, documents: st.SearchStrategy[bytes]) -> bytes:
    """A document with a few bytes inserted, deleted or replaced, or cut short."""
    data = draw(documents)
    for _ in range(draw(st.integers(1, 2))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "truncate"]))
        if op == "insert":
            data = data[:at] + draw(HAZARDS) + data[at:]
        elif op == "replace":
            data = data[:at] + draw(HAZARDS) + data[at + 1 :]
        elif op == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        else:
            data = data[:at]
    return data


# Two properties: a broad one, and one that puts every hazard at the same place of a document
# (one hazard landing in the one spot where it matters is too rare for the broad one alone).
@settings(max_examples=800, derandomize=True, database=None, deadline=None)
@given(
    st.one_of(
        flat_documents(),
        mutated(st.sampled_from(SAMPLE_BYTES + EXTRA + LEFT_TO_EXPAT) | flat_documents()),
        st.binary(max_size=64),
    )
)
def test_fast_path_gives_expats_verdict(data: bytes) -> None:
    assert_same_verdict(data)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.sampled_from(SAMPLE_BYTES + EXTRA) | flat_documents(), st.integers(0, 2**16))
def test_every_hazard_anywhere_gets_expats_verdict(data: bytes, where: int) -> None:
    """Each hazard, inserted at or put in place of one byte of a document, at one position."""
    at = where % (len(data) + 1)
    for hazard in HAZARD_LIST:
        assert_same_verdict(data[:at] + hazard + data[at:])
        assert_same_verdict(data[:at] + hazard + data[at + 1 :])
