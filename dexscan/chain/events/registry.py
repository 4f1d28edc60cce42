"""The table the dispatcher reads: program id -> its name and its events by discriminator.

Adding a program is one module with ``PROGRAM_ID``, ``NAME`` and ``EVENTS`` and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from dexscan.chain.events import (
    meteora_dlmm,
    orca_whirlpool,
    pumpfun,
    pumpswap,
    raydium_amm_v4,
    raydium_clmm,
    raydium_cpmm,
)
from dexscan.chain.events.model import Event, Rejection, TxContext

EventDecoder = Callable[[bytes, TxContext, int], Event | Rejection | None]


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    program_id: str
    name: str
    #: 8-byte Anchor discriminator -> (event name, decoder of the whole payload incl. discriminator)
    events: dict[bytes, tuple[str, EventDecoder]]


def _spec(module: ModuleType) -> ProgramSpec:
    return ProgramSpec(module.PROGRAM_ID, module.NAME, dict(getattr(module, "EVENTS", {})))


PROGRAMS: dict[str, ProgramSpec] = {
    s.program_id: s
    for s in map(_spec, (raydium_amm_v4, pumpfun, pumpswap, raydium_cpmm, raydium_clmm, orca_whirlpool,
                         meteora_dlmm))
}
PROGRAM_IDS: dict[str, str] = {name: pid for pid, name in ((s.program_id, s.name) for s in PROGRAMS.values())}
RAYDIUM_AMM_V4 = raydium_amm_v4.PROGRAM_ID
