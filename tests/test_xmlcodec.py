"""The XML reader's fast path for flat documents agrees with expat on every sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from callback.errors import BadRequest
from callback.inbound import xmlcodec

SAMPLES = sorted((Path(__file__).parent / "samples" / "xml").glob("*.xml"))
EXTRA = [
    b"<xml><A><![CDATA[line1\r\nline2\rline3]]></A><B>plain \r\n text</B></xml>",
    b"<xml>\n  <A>1</A>\n  <A>2</A>\n  <A>3</A>\n</xml>\n",
    b"<xml><A><![CDATA[<b>markup</b> & stuff]]></A><E></E></xml>",
    "<xml><A><![CDATA[中文 😀]]></A></xml>".encode(),
]


@pytest.mark.parametrize("data", [p.read_bytes() for p in SAMPLES] + EXTRA)
def test_fast_path_equals_expat(data: bytes) -> None:
    assert xmlcodec.parse(data) == xmlcodec._parse(data, fast=False)


def test_fast_path_is_taken_for_flat_documents_only() -> None:
    assert xmlcodec._flat(EXTRA[1]) is not None
    assert xmlcodec._flat(b"<xml><A><B>1</B></A></xml>") is None  # nested: expat
    assert xmlcodec._flat(b"<xml><A>x &amp; y</A></xml>") is None  # an entity: expat
    assert xmlcodec._flat(b'<?xml version="1.0"?><xml><A>1</A></xml>') is None


def test_bad_utf8_is_refused() -> None:
    with pytest.raises(BadRequest, match="UTF-8"):
        xmlcodec.parse(b"<xml><A>\xff\xfe</A></xml>")
