"""The XML reader's fast path for flat documents gives expat's verdict on these inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
