"""``dexscan stream decode FILE [--json]`` on the real transactions (skipped when absent) and on
hand-built lines: one JSON object per swap, failed transactions record nothing, unusable lines counted
by reason on stderr, exit 0 when the file was read and 2 (one ``dexscan: error:`` line) when not."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dexscan.chain.events import PROGRAM_IDS
from dexscan.chain.events import raydium_cpmm as cpmm
from dexscan.chain.events.codec import b58encode
from dexscan.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".." / "shared" / "data" / "onchain"
REQUIRED = {"signature", "slot", "program", "pool", "mint", "amount_in", "amount_out"}


def note(sig: str, logs: list[str], err: Any = None, slot: int = 42) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "logsNotification", "params": {
        "result": {"context": {"slot": slot}, "value": {"signature": sig, "err": err, "logs": logs}},
        "subscription": 3}})


def cpmm_logs(amount_in: int) -> list[str]:
    raw = cpmm.SWAP + bytes([1]) * 32 + struct.pack("<6Q?", 10, 20, amount_in, 7, 0, 0, True)
    pid = PROGRAM_IDS["raydium_cpmm"]
    return [f"Program {pid} invoke [1]", "Program data: " + base64.b64encode(raw).decode(), f"Program {pid} success"]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["stream", "decode", *args])
    cap = capsys.readouterr()
    return code, cap.out.splitlines(), cap.err


def test_hand_built_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "feed.jsonl"
    f.write_text("\n".join([
        note("ok1", cpmm_logs(300)),
        note("failed1", cpmm_logs(999), err={"InstructionError": [0, {"Custom": 1}]}),
        "{not json",
        note("quiet", ["Program 11111111111111111111111111111111 invoke [1]",
                       "Program 11111111111111111111111111111111 success"]),
        json.dumps({"jsonrpc": "2.0", "result": 7, "id": 1}),  # a subscription confirmation
        "",
        note("ok2", cpmm_logs(301), slot=43),
    ]) + "\n")
    code, out, err = run([str(f), "--json"], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out]
    assert [(r["signature"], r["slot"], r["amount_in"], r["amount_out"]) for r in rows] == [
        ("ok1", 42, 300, 7), ("ok2", 43, 301, 7)]
    assert all(r.keys() >= REQUIRED for r in rows)
    assert rows[0]["program"] == "raydium_cpmm" and rows[0]["pool"] == b58encode(bytes([1]) * 32)
    assert rows[0]["mint"] is None  # the 89-byte layout names no mints
    summary = json.loads(err)["stream_decode"]
    assert summary["lines"] == 6 and summary["swaps"] == 2
    assert summary["unused_lines"] == {"no_event": 1, "not_json": 1, "rpc_answer": 1, "tx_failed": 1}
    code, out2, err = run([str(f)], capsys)  # without --json: the same JSON on stdout, counts as text
    assert code == 0 and out2 == out
    assert "tx_failed=1" in err and "not_json=1" in err
    code, out, _err = run([str(f), "--text"], capsys)  # readable form
    assert code == 0 and len(out) == 2 and "raydium_cpmm" in out[0] and "in 300 out 7" in out[0]


def test_missing_file_is_one_error_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([str(tmp_path / "nope.jsonl")], capsys)
    assert (code, out) == (2, [])
    assert err == f"dexscan: error: stream decode: {tmp_path / 'nope.jsonl'}: no such file\n"
    code, _out, err = run([str(tmp_path)], capsys)
    assert code == 2 and err.startswith("dexscan: error: ") and len(err.splitlines()) == 1


def test_an_empty_or_garbage_file_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "junk"
    f.write_bytes(b"\xff\xfe\x00garbage\n[1,2]\nnull\n")
    code, out, err = run([str(f), "--json"], capsys)
    assert code == 0 and out == []
    assert json.loads(err)["stream_decode"]["unused_lines"] == {"not_json": 1, "unknown_shape": 2}


def _real_lines() -> list[tuple[str, dict[str, Any]]]:
    """Each real getTransaction answer as a line, and the logsNotification its logs would have made."""
    lines = []
    for exp in sorted(DATA.glob("*/*.expected.json")):
        expected = json.loads(exp.read_text())
        if expected.get("shape") not in ("getTransaction result", "getTransaction response"):
            continue
        raw = json.loads(exp.with_name(exp.name.replace(".expected", "")).read_text())
        lines.append((json.dumps(raw), expected))
    return lines


@pytest.mark.skipif(not DATA.is_dir(), reason="no real on-chain data")
def test_real_transactions_through_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = _real_lines()
    assert len(real) >= 10
    f = tmp_path / "real.jsonl"
    f.write_text("\n".join(line for line, _ in real) + "\n")
    code, out, err = run([str(f), "--json"], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out]
    want = []
    for _line, expected in real:
        seen = set()
        for e in expected["events"]:
            d = e.get("decoded")
            if not d or (e["program"], e["event"]) == ("pumpfun", "CreateEvent"):
                continue
            amounts = _amounts(e["program"], e["event"], d)
            if (e["program"], amounts) in seen:  # the log copy and the self-CPI copy of one event
                continue
            seen.add((e["program"], amounts))
            want.append((expected["signature"], e["program"], amounts))
    got = [(r["signature"], r["program"], (r["amount_in"], r["amount_out"])) for r in rows]
    assert sorted(got) == sorted(want)
    assert all(r.keys() >= REQUIRED for r in rows)
    assert json.loads(err)["stream_decode"]["rejections"] == {}


def _amounts(program: str, event: str, d: dict[str, Any]) -> tuple[int, int]:
    if program == "pumpfun":
        return (d["sol_amount"], d["token_amount"]) if d["is_buy"] else (d["token_amount"], d["sol_amount"])
    if event == "BuyEvent":
        return d["quote_amount_in"], d["base_amount_out"]
    if event == "SellEvent":
        return d["base_amount_in"], d["quote_amount_out"]
    if program == "raydium_amm_v4":
        return d["amount_in"], d["out_amount"]
    if program == "raydium_clmm":
        return (d["amount_0"], d["amount_1"]) if d["zero_for_one"] else (d["amount_1"], d["amount_0"])
    if program == "raydium_cpmm":
        return d["input_amount"], d["output_amount"]
    return d["amount_in"] if "amount_in" in d else d["input_amount"], \
        d["amount_out"] if "amount_out" in d else d["output_amount"]


def test_as_a_subprocess(tmp_path: Path) -> None:
    f = tmp_path / "one.jsonl"
    f.write_text(note("sub1", cpmm_logs(5)) + "\n")
    env = {"PATH": "/usr/bin:/bin", "DEXSCAN_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "dexscan", "stream", "decode", str(f), "--json"], cwd=tmp_path,
                       env=env, text=True, capture_output=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["signature"] == "sub1"
    r = subprocess.run([sys.executable, "-m", "dexscan", "stream", "decode", str(tmp_path / "x")], cwd=tmp_path,
                       env=env, text=True, capture_output=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("dexscan: error: ") and len(r.stderr.splitlines()) == 1
