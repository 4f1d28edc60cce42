"""The status panel: time (local and UTC), universe and gates, calibrator, RPC, prices stream, queues and
every source's health and budget, as a table or, on short terminals, one summary line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dexscan.fmt import DASH, fmt_duration
from dexscan.status import RpcEndpointStatus, ScannerStatus, SourceStatus
from dexscan.ui.cells import styled, zones
from dexscan.ui.layout import ColumnSpec, FixedHeight, column_table, fit_chunks, fit_columns

_STATE_STYLES = {"ok": "green", "degraded": "yellow", "down": "red", "circuit open": "bold red"}


def status_panel_height(status: ScannerStatus, compact: bool = False) -> int:
    """Borders (2) + three info lines + the sources header + one line per source; or, ``compact``,
    borders + three info lines + one line summing up every source."""
    return 2 + 3 + 1 if compact else 2 + 3 + 1 + len(status.sources)


def _budget_bar(used: int, limit: int, cells: int = 10) -> Text:
    share = 0.0 if limit <= 0 else min(1.0, used / limit)
    filled = round(share * cells)
    style = "green" if share < 0.7 else "yellow" if share < 0.9 else "red"
    return Text.assemble(("▰" * filled, style), ("▱" * (cells - filled), "grey35"))


def _sources_table(sources: Sequence[SourceStatus], width: int) -> Table:
    columns = (
        ColumnSpec("name", "source", 13, 100),
        ColumnSpec("state", "state", 14, 99),
        ColumnSpec("latency", "latency", 7, 95, "right"),
        ColumnSpec("requests", "requests", 8, 80, "right"),
        ColumnSpec("r429", "429s", 5, 96, "right"),
        ColumnSpec("errors", "errors", 6, 90, "right"),
        ColumnSpec("budget", "budget", 11, 97, "right"),
        ColumnSpec("bar", "", 10, 60),
    )
    cols = fit_columns(columns, width)
    table = column_table(cols)
    for s in sources:
        cells = {
            "name": styled(s.name, "bold"),
            "state": styled(f"● {s.state}", _STATE_STYLES.get(s.state, "")),
            "latency": styled(DASH if s.latency_ms is None else f"{s.latency_ms:.0f}ms"),
            "requests": styled(f"{s.requests:,}"),
            "r429": styled(str(s.rate_limited), "yellow" if s.rate_limited else "dim"),
            "errors": styled(str(s.errors), "red" if s.errors else "dim"),
            "budget": styled(_budget_text(s)),
            "bar": _budget_bar(s.budget_used, s.budget_limit),
        }
        table.add_row(*[cells[c.key] for c, _ in cols])
    return table


def _rpc_text(status: ScannerStatus) -> Text:
    up = sum(1 for e in status.rpc if e.healthy)
    active: RpcEndpointStatus | None = next((e for e in status.rpc if e.name == status.active_rpc), None)
    out = Text("rpc ", style="grey62")
    if status.active_rpc is None:
        if not status.rpc or not any(e.requests or e.latency_ms is not None for e in status.rpc):
            out.append("● probing", style="yellow")  # nothing asked yet: no verdict to give
        elif up:
            out.append("● no answer yet", style="yellow")
        else:
            out.append("● none healthy", style="bold red")
    else:
        out.append("● ", style="green" if active is None or active.healthy else "red")
        out.append(status.active_rpc.split("://", 1)[-1], style="bold")
        if active is not None:
            if active.latency_ms is not None:
                out.append(f" {active.latency_ms:.0f}ms")
            if active.slot_lag is not None:
                out.append(f" lag {active.slot_lag}", style="dim")
    if status.rpc:
        out.append(f" ({up}/{len(status.rpc)} up)", style="dim" if up == len(status.rpc) else "yellow")
    return out


def _budget_text(s: SourceStatus) -> str:
    window = f"/{s.budget_window_s:.0f}s" if s.budget_window_s else ""
    return f"{s.budget_used}/{s.budget_limit}{window}"


def _sources_line(sources: Sequence[SourceStatus], width: int) -> Text:
    """Every source in one line (the compact panel): how many are ok, then the ones that are not
    (they matter most), then the healthy ones with latency and budget, as far as the width allows."""
    ok = sum(1 for s in sources if s.state == "ok")
    chunks: list[tuple[Text, int]] = [(Text.assemble(
        ("sources ", "grey62"), (f"{ok}/{len(sources)} ok", "green" if ok == len(sources) else "yellow")), 100)]
    for i, s in enumerate(sources):
        if s.state == "ok":
            latency = "" if s.latency_ms is None else f" {s.latency_ms:.0f}ms"
            chunks.append((Text.assemble((s.name, "bold"), f"{latency} {_budget_text(s)}"), 50 - i))
        else:
            chunks.append((Text.assemble((s.name, "bold"), " ", (f"● {s.state}", _STATE_STYLES.get(s.state, ""))),
                           90 - i))
    return fit_chunks(chunks, width, sep=" · ")


def status_panel(status: ScannerStatus, width: int, compact: bool = False) -> FixedHeight:
    """Time (UTC and local), universe and gates, calibrator, RPC, backlog, and every source's health
    (a table, or one summary line when ``compact``, for short terminals)."""
    z = zones(status)
    inner = max(10, width - 4)
    utc = datetime.fromtimestamp(status.now, UTC)
    local = datetime.fromtimestamp(status.now, z.local)
    time_chunks: list[tuple[Text, int]] = [
        (Text.assemble((local.strftime("%H:%M:%S"), "bold"), f" {z.name}"), 100),
        (Text.assemble((utc.strftime("%H:%M:%S"), "bold"), " UTC"), 99),
        (Text(utc.strftime("%a %d %b %Y"), style="grey62"), 50),
        (Text(status.local_zone, style="dim"), 20),
    ]
    if z.is_utc:
        time_chunks = [time_chunks[1], time_chunks[2]]
    uncalibrated = status.calibrator_label.strip().lower().startswith("uncalibrated")
    time_chunks.append((Text.assemble(
        ("calibrator ", "grey62"), (status.calibrator_label, "yellow" if uncalibrated else "green"),
    ), 95))
    if uncalibrated:
        time_chunks.append((Text("(conf column = raw score)", style="dim italic"), 10))
    if status.mode != "live":
        time_chunks.append((Text(f"mode {status.mode}", style="bold magenta"), 90))
    if status.started_at is not None:
        time_chunks.append((Text(f"up {fmt_duration(status.now - status.started_at, DASH)}", style="grey62"), 40))

    gates = Text.assemble(
        ("last gate round ", "grey62"), (f"✓{status.gates_passed}", "green"), " ",
        (f"✗{status.gates_failed}", "red"), " ",
        (f"?{status.gates_unverified}", "yellow" if status.gates_unverified else "dim"),
    )
    universe_chunks: list[tuple[Text, int]] = [
        (Text.assemble(("universe ", "grey62"), (str(status.universe_size), "bold")), 100),
        (gates, 95),
        (Text.assemble(("warming up ", "grey62"), (str(status.warming_up), "yellow" if status.warming_up else "")), 90),
        (Text.assemble(("outbox ", "grey62"), (str(status.outbox_backlog), "yellow" if status.outbox_backlog else "")),
         85),
    ]
    rpc_chunks: list[tuple[Text, int]] = [(_rpc_text(status), 100)]
    if status.stream is not None:
        rpc_chunks.append((Text.assemble(("prices ", "grey62"), (status.stream, "green" if status.stream.startswith(
            "stream") else "yellow")), 90))
    if status.queue_depths:
        queues = " · ".join(f"{k} {v}" for k, v in sorted(status.queue_depths.items()))
        rpc_chunks.append((Text.assemble(("queues ", "grey62"), queues), 30))
    signal_total = sum(status.signals_by_strategy.values())
    if status.signals_by_strategy:
        universe_chunks.append((Text.assemble(("signals ", "grey62"), (str(signal_total), "bold")), 40))

    body_lines = [fit_chunks(time_chunks, inner), fit_chunks(universe_chunks, inner), fit_chunks(rpc_chunks, inner)]
    sources = _sources_line(status.sources, inner) if compact else _sources_table(status.sources, inner)
    body = Group(*body_lines, sources)
    title = Text.assemble((" dexscan ", "bold black on cyan"))
    panel = Panel(body, title=title, title_align="left", border_style="cyan", padding=(0, 1), width=width)
    return FixedHeight(panel, status_panel_height(status, compact))
