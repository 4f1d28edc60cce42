"""Telegram start-up and polling against a hostile Bot API (issue 17 point 6).

``getMe`` answered by an HTML 502 page that echoes the URL (token included) is retried with backoff,
one masked line per attempt, no traceback; a rejected token (401) inside ``scan`` is one error line
and one ``getMe`` per 15 minutes, not a retry storm; a poison update is skipped, counted and logged
once, and the commands after it are answered. Timers run on virtual time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from dexscan.alerts.telegram.cli import run_bot
from dexscan.alerts.telegram.commands import build_dispatcher
from dexscan.alerts.telegram.runner import run_telegram
from dexscan.alerts.telegram.transport import REJECTED_TOKEN_RETRY_S, UpdatePoller, create_bot
from dexscan.backend import StoreBackend
from dexscan.clock import LoopClock
from dexscan.config import load_settings
from dexscan.demo.servers.telegram import FakeTelegram
from dexscan.store import Store
from tests.integration.test_telegram_delivery import CHAT, T0, TOKEN, settings_for

TOKEN_SECRET = TOKEN.split(":", 1)[1]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``run_bot`` installs its own handlers on the root logger: put pytest's back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])


def get_me_times(fake: FakeTelegram) -> list[tuple[float, int]]:
    return [(r.at - T0, r.status) for r in fake.requests if r.method == "getme"]


@pytest.mark.virtual_time
@pytest.mark.usefixtures("restore_logging")
async def test_bot_retries_an_html_502_get_me_with_backoff_and_no_secret_in_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``dexscan bot``: three HTML 502 pages echoing the token, then Telegram answers; a command is served."""
    async with FakeTelegram(TOKEN, LoopClock(T0), chats=[CHAT]) as fake:
        fake.fail_with_html("getMe", times=3)
        fake.inject_user_message(CHAT, "/help")
        settings = load_settings(env={"DEXSCAN_TELEGRAM_TOKEN": TOKEN}).with_overrides(
            {"telegram.base_url": fake.base_url, "telegram.chat_ids": [CHAT]})
        args = SimpleNamespace(demo=False, duration=30.0, db=str(tmp_path / "bot.db"))
        assert await run_bot(settings, args) == 0
        assert get_me_times(fake) == [(0.0, 502), (1.0, 502), (3.0, 502), (7.0, 200)]
        assert len(fake.sent(CHAT)) == 1  # /help answered
    err = capsys.readouterr().err
    assert TOKEN_SECRET not in err and "Traceback" not in err
    failures = [line.split(" telegram: ", 1)[1] for line in err.splitlines() if "getMe failed" in line]
    assert failures == [
        f"getMe failed (ClientDecodeError: bad answer at <body>: not JSON (JSONDecodeError)); retrying in {s}s"
        for s in (1, 2, 4)]


@pytest.mark.virtual_time
async def test_rejected_token_in_scan_is_one_error_and_one_get_me_per_15_minutes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = LoopClock(T0)
    async with FakeTelegram("123456789:the-token-the-server-expects-0000", clock, chats=[CHAT]) as fake:
        store = await Store.open(tmp_path / "scan.db")
        try:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.call_later(60.0, stop.set)
            with caplog.at_level(logging.INFO, logger="dexscan.alerts.telegram"):
                await run_telegram(settings_for(fake), store, StoreBackend(store), stop, clock, TOKEN, 1,
                                   exit_on_rejected_token=False)
            assert get_me_times(fake) == [(0.0, 401)]  # not one a second: one in 60 simulated seconds
            assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("ERROR", (
                "telegram: the bot token was rejected (401 Unauthorized); check DEXSCAN_TELEGRAM_TOKEN; Telegram "
                "is paused for this run (alerts wait in the outbox, the scanner keeps running); asking again "
                "every 15 min"))]
            assert all(r.exc_info is None for r in caplog.records)

            caplog.clear()
            stop = asyncio.Event()
            loop.call_later(2 * REJECTED_TOKEN_RETRY_S + 60, stop.set)
            fake.inject_user_message(CHAT, "/help")
            start = clock.now() - T0
            loop.call_later(REJECTED_TOKEN_RETRY_S + 10, setattr, fake, "token", TOKEN)  # accepted again
            with caplog.at_level(logging.INFO, logger="dexscan.alerts.telegram"):
                await run_telegram(settings_for(fake), store, StoreBackend(store), stop, clock, TOKEN, 1,
                                   exit_on_rejected_token=False)
            assert get_me_times(fake)[1:] == [(start, 401), (start + REJECTED_TOKEN_RETRY_S, 401),
                                              (start + 2 * REJECTED_TOKEN_RETRY_S, 200)]
            messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
            assert sum("was rejected" in m for m in messages) == 1
            assert "telegram: the bot token is accepted again" in messages
            assert len(fake.sent(CHAT)) == 1  # /help answered once Telegram took the token
        finally:
            await store.close()


async def test_poison_update_is_skipped_counted_and_later_commands_answered(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = LoopClock(T0)
    async with FakeTelegram(TOKEN, clock, chats=[CHAT]) as fake:
        settings = settings_for(fake)
        store = await Store.open(tmp_path / "poison.db")
        bot = create_bot(settings, store, clock, token=TOKEN)
        try:
            poller = UpdatePoller(bot, build_dispatcher(StoreBackend(store, clock=clock), store, settings, clock),
                                  store, clock)
            fake.inject_user_message(CHAT, "/help")
            poison = fake.inject_poison_update()
            fake.inject_user_message(CHAT, "/settings")
            with caplog.at_level(logging.WARNING, logger="dexscan.alerts.telegram"):
                assert await poller.poll_once() == 2
            assert poller.skipped_updates == 1
            assert await store.kv_get(UpdatePoller.OFFSET_KEY) == str(poison + 2)
            assert [r.getMessage() for r in caplog.records] == [
                f"telegram: update {poison} skipped: bad field message.message_id (Input should be a valid "
                "integer, unable to parse string as an integer); 1 skipped so far"]
            assert fake.pending_updates() == 3  # Telegram forgets them at the next offset

            fake.inject_user_message(CHAT, "/settings")
            before = len(fake.sent(CHAT))
            assert await poller.poll_once() == 1  # the poison is not served again
            assert len(fake.sent(CHAT)) == before + 1
            assert fake.pending_updates() == 1
            assert poller.skipped_updates == 1
            replies = [m.text for m in fake.sent(CHAT)]
            assert len(replies) == 3 and replies[1] == replies[2]  # /help, /settings, /settings again
        finally:
            await bot.session.close()
            await store.close()


@pytest.mark.virtual_time
async def test_a_redirect_to_another_host_never_carries_the_token(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """aiohttp follows a 307 with the path, token included: the Bot API session refuses to leave its host."""
    clock = LoopClock(T0)
    async with FakeTelegram(TOKEN, clock, chats=[CHAT]) as fake:
        fake.redirect_elsewhere("getMe", times=2)
        fake.inject_user_message(CHAT, "/help")
        store = await Store.open(tmp_path / "redirect.db")
        try:
            stop = asyncio.Event()
            fake.on_accept = lambda _m: stop.set()
            with caplog.at_level(logging.WARNING, logger="dexscan.alerts.telegram"):
                await run_telegram(settings_for(fake), store, StoreBackend(store), stop, clock, TOKEN, 1)
        finally:
            await store.close()
        assert fake.elsewhere.requests == []  # nothing, the token least of all, reached the other host
        assert get_me_times(fake) == [(0.0, 307), (1.0, 307), (3.0, 200)]
        assert len(fake.sent(CHAT)) == 1  # then Telegram answered and /help was served
        port = fake.elsewhere.url.rsplit(":", 1)[1]
        assert [r.getMessage() for r in caplog.records] == [
            f"telegram: getMe failed (TelegramNetworkError: ClientConnectionError: redirect to "
            f"another host (http://localhost:{port}/***) not followed, so that the bot token stays with "
            f"telegram.base_url's host); retrying in {s}s" for s in (1, 2)]
