"""The fake Bot API speaks the real contract: envelopes, errors, flood control, edits, long polling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from dexscan.clock import SimClock
from dexscan.demo.servers.telegram import NOT_MODIFIED, FakeTelegram
from dexscan.demo.servers.telegram_html import parse_telegram_html

TOKEN = "123456789:TEST-token_for_the_fake_bot_api"
CHAT = 1001
T0 = 1_763_700_000


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN, SimClock(T0), chats=[CHAT]) as f:
        yield f


async def call(fake: FakeTelegram, method: str, token: str = TOKEN, **params: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.post(f"{fake.base_url}/bot{token}/{method}", json=params) as r:
        return r.status, await r.json()


def advance(fake: FakeTelegram, seconds: float) -> None:
    assert isinstance(fake.clock, SimClock)
    fake.clock.advance(seconds)


async def test_wrong_token_is_401_and_unknown_method_404(fake: FakeTelegram) -> None:
    assert await call(fake, "getMe", token="123456789:wrong") == (
        401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    assert await call(fake, "noSuchMethod") == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    status, body = await call(fake, "getMe")
    assert status == 200 and body["result"]["id"] == 123456789 and body["result"]["is_bot"] is True


async def test_send_message_envelope_and_form_encoding(fake: FakeTelegram) -> None:
    form = {"chat_id": str(CHAT), "text": "<b>hi</b> &amp; bye", "parse_mode": "HTML",
            "reply_markup": json.dumps({"inline_keyboard": [[{"text": "DS", "url": "https://dexscreener.com/x"}]]})}
    async with aiohttp.ClientSession() as s, s.post(f"{fake.base_url}/bot{TOKEN}/sendMessage", data=form) as r:
        body = await r.json()
    assert r.status == 200
    msg = body["result"]
    assert msg["message_id"] == 1 and msg["chat"] == {"id": CHAT, "type": "private", "first_name": "User"}
    assert msg["text"] == "hi & bye"
    assert msg["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
    [sent] = fake.sent(CHAT)
    assert sent.buttons == ((("DS", "https://dexscreener.com/x"),),)


async def test_flood_control_tolerates_a_small_burst_then_429s(fake: FakeTelegram) -> None:
    results = [await call(fake, "sendMessage", chat_id=CHAT, text=f"m{i}") for i in range(4)]
    assert [s for s, _ in results] == [200, 200, 200, 429]
    assert results[3][1] == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                             "parameters": {"retry_after": 1}}
    advance(fake, 1.0)
    assert (await call(fake, "sendMessage", chat_id=CHAT, text="after"))[0] == 200
    for i in range(10):
        advance(fake, 1.05)
        assert (await call(fake, "sendMessage", chat_id=CHAT, text=f"steady {i}"))[0] == 200


async def test_forced_429_carries_retry_after(fake: FakeTelegram) -> None:
    fake.force_429(retry_after=35)
    status, body = await call(fake, "sendMessage", chat_id=CHAT, text="x")
    assert status == 429 and body["parameters"] == {"retry_after": 35}
    assert body["description"] == "Too Many Requests: retry after 35"
    assert (await call(fake, "sendMessage", chat_id=CHAT, text="x"))[0] == 200


@pytest.mark.parametrize(("text", "description"), [
    ("<b>open", "Can't find end tag corresponding to start tag \"b\""),
    ("a < b", "Unsupported start tag \"\" at byte offset 2"),
    ("<b>x</i>", "Unmatched end tag at byte offset 4, expected \"</b>\", found \"</i>\""),
    ("<span>x</span>", "Tag \"span\" must have class \"tg-spoiler\" at byte offset 0"),
])
async def test_broken_html_cannot_be_parsed(fake: FakeTelegram, text: str, description: str) -> None:
    status, body = await call(fake, "sendMessage", chat_id=CHAT, text=text, parse_mode="HTML")
    assert status == 400
    assert body["description"] == f"Bad Request: can't parse entities: {description}"
    assert fake.sent(CHAT) == []


async def test_length_limit_is_on_parsed_text_in_utf16_units(fake: FakeTelegram) -> None:
    ok = "<b>" + "x" * 4096 + "</b>"
    assert (await call(fake, "sendMessage", chat_id=CHAT, text=ok, parse_mode="HTML"))[0] == 200
    assert (await call(fake, "sendMessage", chat_id=CHAT, text="😀" * 2048))[0] == 200
    advance(fake, 5)
    status, body = await call(fake, "sendMessage", chat_id=CHAT, text="😀" * 2049)
    assert (status, body["description"]) == (400, "Bad Request: message is too long")
    status, body = await call(fake, "sendMessage", chat_id=CHAT, text="  ")
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")


async def test_unknown_and_blocked_chats(fake: FakeTelegram) -> None:
    status, body = await call(fake, "sendMessage", chat_id=4242, text="x")
    assert (status, body["description"]) == (400, "Bad Request: chat not found")
    fake.block(CHAT)
    status, body = await call(fake, "sendMessage", chat_id=CHAT, text="x")
    assert (status, body["description"]) == (403, "Forbidden: bot was blocked by the user")
    fake.block(CHAT, False)
    assert (await call(fake, "sendMessage", chat_id=CHAT, text="x"))[0] == 200


async def test_ids_are_shared_with_users_and_edits_behave_like_telegram(fake: FakeTelegram) -> None:
    markup = {"inline_keyboard": [[{"text": "a", "url": "https://a.example"}]]}
    _, first = await call(fake, "sendMessage", chat_id=CHAT, text="<b>card</b>", parse_mode="HTML",
                          reply_markup=markup)
    user_mid = fake.inject_user_message(CHAT, "hello")
    assert (first["result"]["message_id"], user_mid) == (1, 2)

    async def edit(mid: int, text: str, **kw: Any) -> tuple[int, str]:
        advance(fake, 2)
        status, body = await call(fake, "editMessageText", chat_id=CHAT, message_id=mid, text=text, **kw)
        return status, body.get("description", "ok")

    assert await edit(1, "<b>card</b>", parse_mode="HTML", reply_markup=markup) == (400, NOT_MODIFIED)
    assert await edit(1, "<b>card</b>", parse_mode="HTML") == (200, "ok")  # keyboard removed: modified
    assert await edit(2, "x") == (400, "Bad Request: message can't be edited")
    assert await edit(3, "x") == (400, "Bad Request: message to edit not found")
    assert fake.sent(CHAT)[0].edits == 1


async def test_send_photo_multipart_and_edit_of_a_photo(fake: FakeTelegram) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    form.add_field("caption", "<i>chart</i>")
    form.add_field("parse_mode", "HTML")
    form.add_field("reply_parameters", json.dumps({"message_id": 99, "allow_sending_without_reply": True}))
    form.add_field("photo", "attach://file1")
    form.add_field("file1", b"\x89PNG-bytes", filename="chart.png", content_type="image/png")
    async with aiohttp.ClientSession() as s, s.post(f"{fake.base_url}/bot{TOKEN}/sendPhoto", data=form) as r:
        body = await r.json()
    assert r.status == 200 and body["result"]["caption"] == "chart"
    [photo] = fake.sent(CHAT)
    assert (photo.photo, photo.reply_to) == (b"\x89PNG-bytes", None)
    advance(fake, 2)
    status, body = await call(fake, "editMessageText", chat_id=CHAT, message_id=1, text="x")
    assert (status, body["description"]) == (400, "Bad Request: there is no text in the message to edit")
    status, body = await call(fake, "sendMessage", chat_id=CHAT, text="r", reply_parameters={"message_id": 77})
    assert (status, body["description"]) == (400, "Bad Request: message to be replied not found")


async def test_get_updates_offset_confirms_and_long_poll_wakes(fake: FakeTelegram) -> None:
    fake.inject_user_message(CHAT, "/start")
    fake.inject_user_message(CHAT, "/help")
    _, body = await call(fake, "getUpdates")
    updates = body["result"]
    assert [u["message"]["text"] for u in updates] == ["/start", "/help"]
    assert updates[0]["message"]["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
    _, body = await call(fake, "getUpdates", offset=updates[0]["update_id"] + 1)
    assert [u["message"]["text"] for u in body["result"]] == ["/help"]
    _, body = await call(fake, "getUpdates", offset=updates[1]["update_id"] + 1, timeout=0.05)
    assert body == {"ok": True, "result": []}

    poll = asyncio.create_task(call(fake, "getUpdates", offset=updates[1]["update_id"] + 1, timeout=30))
    await asyncio.sleep(0.05)
    fake.inject_user_message(CHAT, "/status")
    _, body = await asyncio.wait_for(poll, 5)
    assert [u["message"]["text"] for u in body["result"]] == ["/status"]


async def test_a_second_poller_ends_the_first_with_409(fake: FakeTelegram) -> None:
    first = asyncio.create_task(call(fake, "getUpdates", timeout=30))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(call(fake, "getUpdates", timeout=0.05))
    status, body = await asyncio.wait_for(first, 5)
    assert status == 409
    assert body["description"].startswith("Conflict: terminated by other getUpdates request")
    assert (await second)[0] == 200


async def test_outage_modes(fake: FakeTelegram) -> None:
    await fake.set_down("refuse")
    with pytest.raises(aiohttp.ClientConnectorError):
        await call(fake, "getMe")
    await fake.set_down("reset")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(fake, "sendMessage", chat_id=CHAT, text="lost")
    assert fake.sent(CHAT) == []
    await fake.set_down("accept_then_reset")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(fake, "sendMessage", chat_id=CHAT, text="landed")
    assert [m.text for m in fake.sent(CHAT)] == ["landed"]
    await fake.set_down(None)
    assert (await call(fake, "getMe"))[0] == 200


def test_entities_offsets_count_utf16_units() -> None:
    text, entities = parse_telegram_html("😀 <b>x&lt;y</b> <a href=\"https://a.example/?q=1&amp;r=2\">l</a>")
    assert text == "😀 x<y l"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 3},
        {"type": "text_link", "offset": 7, "length": 1, "url": "https://a.example/?q=1&r=2"},
    ]
