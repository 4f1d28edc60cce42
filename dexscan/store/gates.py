"""Gate verdicts and the on-chain mint facts they were judged on."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict

from dexscan.domain import GateStatus, GateVerdict, MintExtension, MintFacts
from dexscan.store.connection import Database, dumps


def facts_to_json(f: MintFacts) -> str:
    d = asdict(f)
    d["extensions"] = [{"name": e.name, "state": dict(e.state)} for e in f.extensions]
    return dumps(d)


def facts_from_json(text: str) -> MintFacts:
    d = json.loads(text)
    d["extensions"] = tuple(MintExtension(e["name"], e["state"]) for e in d.get("extensions", []))
    d["vouched_by"] = tuple(d.get("vouched_by") or ())
    return MintFacts(**d)


class Gates(Database):
    """Rows of ``gate_verdicts`` (natural key ``(mint, gate, checked_at)``) and ``mint_facts``."""

    async def save_verdicts(self, verdicts: Iterable[GateVerdict]) -> None:
        rows = [
            (v.mint, v.gate, v.checked_at, v.status.value, v.reason, dumps(dict(v.details)))
            for v in verdicts
        ]
        await self._write_many(
            """INSERT OR REPLACE INTO gate_verdicts(mint, gate, checked_at, status, reason, details)
               VALUES (?, ?, ?, ?, ?, ?)""",
            rows,
        )

    async def latest_verdicts(self, mint: str) -> list[GateVerdict]:
        rows = await self._all(
            """SELECT v.* FROM gate_verdicts v
               JOIN (SELECT gate, MAX(checked_at) AS at FROM gate_verdicts WHERE mint = ? GROUP BY gate) m
                 ON v.gate = m.gate AND v.checked_at = m.at
               WHERE v.mint = ? ORDER BY v.gate""",
            (mint, mint),
        )
        return [
            GateVerdict(r["mint"], r["gate"], GateStatus(r["status"]), r["reason"], r["checked_at"],
                        json.loads(r["details"]))
            for r in rows
        ]

    async def save_mint_facts(self, facts: MintFacts) -> None:
        await self._write(
            """INSERT INTO mint_facts(mint, checked_at, facts) VALUES (?, ?, ?)
               ON CONFLICT(mint) DO UPDATE SET checked_at = excluded.checked_at, facts = excluded.facts""",
            (facts.mint, facts.checked_at, facts_to_json(facts)),
        )

    async def mint_facts(self, mint: str) -> MintFacts | None:
        row = await self._one("SELECT facts FROM mint_facts WHERE mint = ?", (mint,))
        return None if row is None else facts_from_json(row["facts"])
