"""Safe, small XML reading and writing for WeCom's flat documents (no DTDs, no entities)."""

from __future__ import annotations

import re
from typing import Any
from xml.parsers import expat

from callback.errors import BadRequest

#: The UTF-8 byte order mark some editors and clients put before a document.
BOM = b"\xef\xbb\xbf"

#: Deepest element nesting accepted; WeCom's deepest documents (ApprovalInfo) use about 7.
MAX_DEPTH = 32

#: A parsed element: leaf text, a dict of children (a repeated tag becomes a list), or a list.
Node = str | dict[str, Any] | list[Any]


class _Builder:
    """Expat callbacks that build nested dicts; DOCTYPE and entity declarations are refused."""

    __slots__ = ("root", "stack", "texts")

    def __init__(self) -> None:
        self.stack: list[dict[str, Any]] = [{}]
        self.texts: list[list[str]] = [[]]
        self.root: dict[str, Any] = self.stack[0]

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if len(self.stack) > MAX_DEPTH:
            raise BadRequest(f"XML nested deeper than {MAX_DEPTH} levels is refused")
        self.stack.append({})
        self.texts.append([])

    def end(self, tag: str) -> None:
        children = self.stack.pop()
        text = "".join(self.texts.pop())
        value: Node = children if children else text
        parent = self.stack[-1]
        if tag in parent:
            existing = parent[tag]
            if isinstance(existing, list):
                existing.append(value)
            else:
                parent[tag] = [existing, value]
        else:
            parent[tag] = value

    def data(self, text: str) -> None:
        self.texts[-1].append(text)


def _refuse_dtd(*_: object) -> None:
    raise BadRequest("XML with a DOCTYPE or entity declaration is refused")


# WeCom's envelopes and most messages are flat: <xml> and leaf children, each plain text (no
# markup, no entity) or one CDATA section. Those are read by two regexes, the rest by expat. The
# fast path takes only what expat takes as-is and reads the same way, and declines the rest.
#: XML's whitespace; not \s, which also takes characters expat refuses there.
_S = r"[ \t\r\n]*"
#: An ASCII name; not \w+, which also takes a leading digit and non-ASCII letters.
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: The C0 controls XML forbids (all but tab, LF, CR): one check over the bytes is cheaper than a
#: character class in the regexes.
_CONTROLS = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])


def _no_cdata_end(char: str) -> str:
    """Any run of `char` and "]" that has no "]]>" (unrolled: no per-character lookahead)."""
    return char + r"*(?:\](?!\]>)" + char + r"*)*"


#: A leaf's content: one CDATA section (group 1) or text without markup, entity or "]]>" (2).
_CDATA_BODY, _TEXT = _no_cdata_end(r"[^\]]"), _no_cdata_end(r"[^\]<&]")
_CONTENT = rf"(?:<!\[CDATA\[({_CDATA_BODY})\]\]>|({_TEXT}))"
#: The whole document: at least one leaf (an empty root is a string to expat, not a dict).
_FLAT = re.compile(rf"{_S}<({_NAME})>(?:{_S}<({_NAME})>{_CONTENT}</\2>)+{_S}</\1>{_S}")
_LEAF = re.compile(rf"<({_NAME})>{_CONTENT}</\1>")


def _flat(data: bytes) -> dict[str, Any] | None:
    """The flat fast path: expat's result for such documents, None for others (expat decides)."""
    if len(data.translate(None, _CONTROLS)) != len(data):
        return None
    try:
        text = data.decode()
    except UnicodeDecodeError:  # not necessarily malformed: an encoding="..." document is not UTF-8
        return None
    root = _FLAT.fullmatch(text)
    if root is None or "\ufffe" in text or "\uffff" in text:  # not XML characters
        return None
    fields: dict[str, Any] = {}
    for key, cdata_text, plain in _LEAF.findall(text, root.end(1) + 1):
        value = cdata_text or plain
        if "\r" in value:  # XML's line-end normalisation, as expat does it
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        if key in fields:
            existing = fields[key]
            fields[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            fields[key] = value
    return {root.group(1): fields}


def parse(data: bytes) -> dict[str, Any]:
    """Parse an XML document into {root_tag: Node}; raise BadRequest on anything malformed."""
    flat = _flat(data)
    return flat if flat is not None else _parse_expat(data)


def _parse_expat(data: bytes) -> dict[str, Any]:
    """The reference reader, for what the fast path declines (and for tests to compare with)."""
    builder = _Builder()
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd  # type: ignore[assignment]
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise BadRequest(f"malformed XML: {expat.errors.messages[exc.code]}") from None
    except (LookupError, ValueError):  # from expat's handler for an unknown encoding="..."
        raise BadRequest("malformed XML: unsupported encoding declaration") from None
    return builder.root


def cdata(text: str) -> str:
    """Wrap text in CDATA, splitting any ']]>' so the section cannot be closed early."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def element(tag: str, value: object) -> str:
    """One element: strings as CDATA, numbers as bare text, dicts/lists recursively."""
    if isinstance(value, bool):
        inner = "true" if value else "false"
    elif isinstance(value, int | float):
        inner = str(value)
    elif isinstance(value, dict):
        inner = "".join(element(k, v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        return "".join(element(tag, item) for item in value)
    else:
        inner = cdata(str(value))
    return f"<{tag}>{inner}</{tag}>"
