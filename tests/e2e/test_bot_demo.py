"""``dexscan bot --demo`` driven through a pipe: the real bot, polling the Bot API fake, answers
commands typed into the console while the demo world runs the real scanner (issue 16)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from dexscan.alerts.telegram.commands import COMMANDS
from dexscan.demo.bot_chat import message_lines
from dexscan.demo.market_sim import MarketSim
from dexscan.demo.world import demo_sim_config

AGE = r"(just now|\d+m ago)"


def _chat(transcript: list[str]) -> list[tuple[str, list[str]]]:
    """(command, the lines the bot printed until the next command) for every ``you › `` line."""
    turns: list[tuple[str, list[str]]] = []
    for line in transcript:
        if line.startswith("you › "):
            turns.append((line.removeprefix("you › "), []))
        elif turns and not line.startswith("demo: "):
            turns[-1][1].append(line)
    return turns


def test_bot_demo_answers_commands_typed_into_the_console(tmp_path: Path) -> None:
    sim = MarketSim(demo_sim_config())
    unsafe = next(t for t in sim.tokens if t.mint_authority and not t.freeze_authority and t.kind != "thin")
    safe = {t.mint for t in sim.tokens if t.safe}
    typed = ["/help", "/top", f"/check {unsafe.mint}", f"/why {unsafe.mint}", "/check nope", "/quit", "/status"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEXSCAN_")}
    db = tmp_path / "bot.db"
    r = subprocess.run([sys.executable, "-m", "dexscan", "bot", "--demo", "--db", str(db)], cwd=tmp_path, env=env,
                       input="\n".join(typed) + "\n", text=True, capture_output=True, timeout=600, check=False)
    assert (r.returncode, r.stderr) == (0, "")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("demo: the real scanner and bot on a simulated market (60 tokens); the bot polls "
                               "a local fake of the Telegram Bot API (http://127.0.0.1:")
    assert any(re.fullmatch(r"demo: ready: \d+ tokens in the universe, first signal on \w+\.", ln) for ln in lines)
    assert lines[-1] == f"demo: chat ended; database {db}, log {db.with_suffix('.log')}."
    turns = dict(_chat(lines))
    assert list(turns) == typed[:5]  # /quit leaves: nothing after it is sent

    help_text = ("dexscan finds early pumps in Solana DEX tokens, behind on-chain safety gates.\n"
                 "Alerts come here with entry, stop, TP1–TP3 and a confidence; updates reply to them.\n\n"
                 + "\n".join(f"/{name} — {text}" for name, text in COMMANDS))
    assert turns["/help"] == message_lines(help_text, False, ())
    assert turns["/help"][:3] == [
        "bot › dexscan finds early pumps in Solana DEX tokens, behind on-chain safety gates.",
        "      Alerts come here with entry, stop, TP1–TP3 and a confidence; updates reply to them.", ""]

    top = turns["/top"]
    assert top[0] == "bot › Top tokens (24h volume)" and len(top) == 1 + 2 * 10
    volumes = []
    for rank, (row, mint_line) in enumerate(zip(top[1::2], top[2::2], strict=True), 1):
        m = re.fullmatch(rf"      {rank}\. \S+ vol \$([\d.]+)([KM]) · liq \$[\d.]+[KM]", row)
        assert m, row
        volumes.append(float(m[1]) * {"K": 1e3, "M": 1e6}[m[2]])
        assert mint_line.startswith("      ") and mint_line.strip() in safe  # universe members only
    assert volumes == sorted(volumes, reverse=True)

    check = turns[f"/check {unsafe.mint}"]
    assert check[0] == f"bot › Gate check {unsafe.mint}"
    gates = {ln.split(":")[0].split()[-1]: ln for ln in check[1:]}
    assert sorted(gates) == ["freeze_authority", "liquidity", "mint_authority", "price_impact",
                             "token2022_extensions", "volume_24h"]
    failing = gates.pop("mint_authority")
    assert re.fullmatch(rf"      ❌ mint_authority: mint authority is set \(\w{{32,44}}\): supply can be inflated"
                        rf" · checked {AGE}", failing), failing
    assert gates["freeze_authority"].startswith("      ✅ freeze_authority: freeze authority renounced · checked ")
    assert all(ln.startswith("      ✅ ") and re.search(rf" · checked {AGE}$", ln) for ln in gates.values())

    why = turns[f"/why {unsafe.mint}"]
    assert why[0] == f"bot › Why {unsafe.mint}"
    assert re.fullmatch(rf"      Not in the universe: 1 gate did not pass \(checked \d\d:\d\d UTC, {AGE}\):", why[1])
    assert why[2:] == [failing.rsplit(" · checked ", 1)[0]]  # /why: only the gate that keeps it out

    assert turns["/check nope"] == ["bot › Usage: /check MINT — a Solana token address (base58, 32 bytes)."]
