"""Telegram's HTML parse mode as the Bot API applies it: the tags and entities it accepts, the text
and ``MessageEntity`` list it makes (offsets in UTF-16 code units), and its error wording."""

from __future__ import annotations

import html
import re
from typing import Any

_TAG_ENTITY = {
    "b": "bold", "strong": "bold",
    "i": "italic", "em": "italic",
    "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")


_TAG_NAME_RE = re.compile(r"[A-Za-z0-9-]*")


_ATTR_RE = re.compile(r"""\s*([A-Za-z-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")


class HtmlParseError(ValueError):
    """The text is not valid Telegram HTML; the message is Telegram's own wording."""


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def parse_telegram_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities of an HTML-formatted message, as Telegram derives them."""
    out: list[str] = []
    pos16 = 0
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(source)

    def offset(k: int) -> int:
        return len(source[:k].encode("utf-8"))

    def emit(s: str) -> None:
        nonlocal pos16
        out.append(s)
        pos16 += utf16_len(s)

    while i < n:
        c = source[i]
        if c == "&":
            m = _ENTITY_RE.match(source, i)
            if m:
                if m.group(1):
                    emit(_NAMED_ENTITIES[m.group(1)])
                else:
                    code = int(m.group(2)) if m.group(2) else int(m.group(3), 16)
                    if not 0 < code <= 0x10FFFF:
                        raise HtmlParseError(f"Can't decode the character reference at byte offset {offset(i)}")
                    emit(chr(code))
                i = m.end()
            else:
                emit("&")
                i += 1
            continue
        if c != "<":
            emit(c)
            i += 1
            continue
        if i + 1 < n and source[i + 1] == "/":
            end = source.find(">", i)
            if end < 0:
                raise HtmlParseError(f"Unclosed end tag at byte offset {offset(i)}")
            name = source[i + 2:end].strip().lower()
            if not stack:
                raise HtmlParseError(f"Unexpected end tag at byte offset {offset(i)}")
            top, start16, attrs = stack.pop()
            if top != name:
                raise HtmlParseError(
                    f'Unmatched end tag at byte offset {offset(i)}, expected "</{top}>", found "</{name}>"'
                )
            length = pos16 - start16
            if length > 0:
                ent: dict[str, Any] = {"type": _TAG_ENTITY[top], "offset": start16, "length": length}
                if top == "a":
                    ent["url"] = attrs.get("href", "")
                if top == "tg-emoji":
                    ent["custom_emoji_id"] = attrs.get("emoji-id", "")
                entities.append(ent)
            i = end + 1
            continue
        m = _TAG_NAME_RE.match(source, i + 1)
        name = m.group(0).lower() if m else ""
        if name not in _TAG_ENTITY:
            raise HtmlParseError(f'Unsupported start tag "{name}" at byte offset {offset(i)}')
        j = m.end() if m else i + 1
        attrs = {}
        while True:
            if j >= n:
                raise HtmlParseError(f'Unclosed start tag "{name}" at byte offset {offset(i)}')
            if source[j] == ">":
                break
            am = _ATTR_RE.match(source, j)
            if not am or am.end() == j:
                raise HtmlParseError(f'Unclosed start tag "{name}" at byte offset {offset(i)}')
            raw = am.group(2) or ""
            if raw[:1] in ("'", '"'):
                raw = raw[1:-1]
            attrs[am.group(1).lower()] = html.unescape(raw)
            j = am.end()
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset(i)}')
        stack.append((name, pos16, attrs))
        i = j + 1
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities
