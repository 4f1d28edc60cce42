"""The universe's pure membership book: which tokens are members, which are due a check, and what
each gate verdict means for a token's membership (SPEC §3). Time is an argument, no I/O;
:class:`~dexscan.universe.Universe` does the discovery, fetching and storing around it.

- a candidate is **admitted** when every gate verdict passes (``dexscan.gates.admitted``) and the
  universe holds fewer than ``universe.max_tokens`` members;
- a member that fails a **market** gate (liquidity, 24h volume, price impact — also when the
  verdict is *unverified*, e.g. DexScreener did not answer) **stays** until it has failed them
  *continuously* for ``universe.exit_after_s`` (1 h): a brief dip does not drop a live trade; one
  passing check resets the clock;
- any other gate (mint/freeze authority, Token-2022 extensions, top-10 holders, and any gate added
  later: fail closed) that does not pass **removes at once**;
- **re-checks**: members are re-checked every ``universe.discovery_interval_s``; a rejected or
  removed token after ``universe.recheck_failed_after_s`` (it may renounce); a new candidate at
  once. Candidates that are neither members nor watched and have not been re-discovered for a day
  are forgotten (:meth:`UniverseBook.prune`), so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dexscan.config import UniverseSettings
from dexscan.domain import DiscoveredToken, GateVerdict
from dexscan.gates import admitted

#: Gates whose failure must be *sustained* (for ``exit_after_s``) before a member leaves.
SUSTAINED_GATES = frozenset({"liquidity", "volume_24h", "price_impact"})
#: A candidate neither admitted nor watched is forgotten this long after it was last discovered.
FORGET_AFTER_S = 86_400
WATCH_SOURCE = "user:watch"

Action = Literal["admitted", "kept", "removed", "rejected"]


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """The book's decision for one token after one check."""

    mint: str
    action: Action
    at: int
    reason: str
    member: bool
    failing_since: int | None = None
    next_check_at: int = 0

    @property
    def changed(self) -> bool:
        return self.action in ("admitted", "removed")


@dataclass(slots=True)
class _Entry:
    mint: str
    sources: set[str] = field(default_factory=set)
    watched: bool = False
    member: bool = False
    since: int | None = None
    failing_since: int | None = None
    checked_at: int | None = None
    next_check_at: int = 0
    last_seen: int = 0
    reason: str = "not checked yet"


@dataclass(frozen=True, slots=True)
class EntryState:
    """A read-only view of one token's standing in the book."""

    mint: str
    sources: tuple[str, ...]
    watched: bool
    member: bool
    since: int | None
    failing_since: int | None
    checked_at: int | None
    next_check_at: int
    reason: str


def _describe(v: GateVerdict) -> str:
    return f"{v.gate} {v.status.value}: {v.reason}"


class UniverseBook:
    """Pure membership bookkeeping (see the module docstring for every rule)."""

    def __init__(self, settings: UniverseSettings) -> None:
        self.exit_after_s = int(settings.exit_after_s)
        self.recheck_failed_after_s = int(settings.recheck_failed_after_s)
        self.recheck_member_s = int(settings.discovery_interval_s)
        self.max_tokens = settings.max_tokens
        self._entries: dict[str, _Entry] = {}

    # -- candidates ------------------------------------------------------------------------------

    def _entry(self, mint: str, now: int) -> _Entry:
        e = self._entries.get(mint)
        if e is None:
            e = _Entry(mint, next_check_at=now, last_seen=now)
            self._entries[mint] = e
        return e

    def discovered(self, tokens: Iterable[DiscoveredToken], now: int) -> list[str]:
        """Record what the feeds surfaced; returns the mints that are new to the book."""
        new: list[str] = []
        for t in tokens:
            if t.mint not in self._entries:
                new.append(t.mint)
            e = self._entry(t.mint, now)
            e.sources.add(t.source)
            e.last_seen = now
        return new

    def watch(self, mint: str, now: int) -> None:
        """A user asked for this mint: check it now (it still has to pass every gate)."""
        e = self._entry(mint, now)
        e.watched = True
        e.sources.add(WATCH_SOURCE)
        e.last_seen = now
        e.next_check_at = min(e.next_check_at, now)

    def unwatch(self, mint: str) -> None:
        e = self._entries.get(mint)
        if e is not None:
            e.watched = False
            e.sources.discard(WATCH_SOURCE)

    def restore(self, mint: str, *, member: bool, since: int | None, failing_since: int | None, watched: bool,
                now: int) -> None:
        """Reload a token's standing after a restart (from the store); it is re-checked now."""
        e = self._entry(mint, now)
        e.member, e.since, e.failing_since, e.watched = member, since, failing_since, watched
        if watched:
            e.sources.add(WATCH_SOURCE)
        e.next_check_at = now

    # -- scheduling ------------------------------------------------------------------------------

    def due(self, now: int) -> list[str]:
        """Tokens to check now: members first, then watched, then the rest; oldest schedule first."""
        due = [e for e in self._entries.values() if e.next_check_at <= now]
        due.sort(key=lambda e: (not e.member, not e.watched, e.next_check_at, e.mint))
        return [e.mint for e in due]

    def recheck_at(self, mint: str, at: int) -> None:
        """Check ``mint`` again no later than ``at`` (a token on a bonding curve: every round)."""
        e = self._entries.get(mint)
        if e is not None:
            e.next_check_at = min(e.next_check_at, at)

    def prune(self, now: int) -> list[str]:
        """Forget stale candidates (not members, not watched, not seen for FORGET_AFTER_S)."""
        gone = [m for m, e in self._entries.items()
                if not e.member and not e.watched and now - e.last_seen >= FORGET_AFTER_S]
        for m in gone:
            del self._entries[m]
        return gone

    # -- decisions -------------------------------------------------------------------------------

    def apply(self, mint: str, verdicts: Sequence[GateVerdict], now: int) -> MembershipChange:
        """Decide on one token from a complete set of gate verdicts taken at ``now``."""
        e = self._entry(mint, now)
        e.checked_at = now
        hard = [v for v in verdicts if v.gate not in SUSTAINED_GATES and not v.passed]
        soft = [v for v in verdicts if v.gate in SUSTAINED_GATES and not v.passed]
        action: Action
        if admitted(verdicts):
            e.failing_since = None
            e.next_check_at = now + self.recheck_member_s
            if e.member:
                action, reason = "kept", "all gates pass"
            elif self.member_count() >= self.max_tokens:
                action, reason = "rejected", f"all gates pass, but the universe is full ({self.max_tokens} tokens)"
            else:
                action, reason = "admitted", "all gates pass"
                e.member, e.since = True, now
        elif hard or not soft:
            reason = _describe(hard[0]) if hard else "no gate verdicts (fail closed)"
            action = "removed" if e.member else "rejected"
            e.member, e.since, e.failing_since = False, None, None
            e.next_check_at = now + self.recheck_failed_after_s
        elif e.member:
            first = _describe(soft[0])
            if e.failing_since is None:
                e.failing_since = now
            failing_for = now - e.failing_since
            if failing_for >= self.exit_after_s:
                action, reason = "removed", f"{first} (failing for {failing_for} s)"
                e.member, e.since, e.failing_since = False, None, None
                e.next_check_at = now + self.recheck_failed_after_s
            else:
                action = "kept"
                reason = (f"{first} (failing for {failing_for} s; leaves after {self.exit_after_s} s "
                          "of continuous failure)")
                e.next_check_at = now + self.recheck_member_s
        else:
            action, reason = "rejected", _describe(soft[0])
            e.next_check_at = now + self.recheck_failed_after_s
        e.reason = reason
        return MembershipChange(mint, action, now, reason, e.member, e.failing_since, e.next_check_at)

    def observe_market(self, mint: str, market_verdicts: Sequence[GateVerdict], now: int) -> MembershipChange | None:
        """Market-gate verdicts between full checks (live snapshots): only the sustained-exit rule.

        Never admits and never judges safety; for a non-member it does nothing (None).
        """
        e = self._entries.get(mint)
        if e is None or not e.member:
            return None
        failing = [v for v in market_verdicts if v.gate in SUSTAINED_GATES and not v.passed]
        if not failing:
            e.failing_since = None
            return MembershipChange(mint, "kept", now, "market gates pass", True, None, e.next_check_at)
        if e.failing_since is None:
            e.failing_since = now
        failing_for = now - e.failing_since
        first = _describe(failing[0])
        if failing_for < self.exit_after_s:
            return MembershipChange(mint, "kept", now, f"{first} (failing for {failing_for} s)", True,
                                    e.failing_since, e.next_check_at)
        e.member, e.since, e.failing_since = False, None, None
        e.next_check_at = now + self.recheck_failed_after_s
        e.reason = f"{first} (failing for {failing_for} s)"
        return MembershipChange(mint, "removed", now, e.reason, False, None, e.next_check_at)

    # -- reading ---------------------------------------------------------------------------------

    def members(self) -> list[str]:
        return sorted(m for m, e in self._entries.items() if e.member)

    def member_count(self) -> int:
        return sum(1 for e in self._entries.values() if e.member)

    def is_member(self, mint: str) -> bool:
        e = self._entries.get(mint)
        return e is not None and e.member

    def watched(self) -> list[str]:
        return sorted(m for m, e in self._entries.items() if e.watched)

    def state(self, mint: str) -> EntryState | None:
        e = self._entries.get(mint)
        if e is None:
            return None
        return EntryState(e.mint, tuple(sorted(e.sources)), e.watched, e.member, e.since, e.failing_since,
                          e.checked_at, e.next_check_at, e.reason)

    def __len__(self) -> int:
        return len(self._entries)
