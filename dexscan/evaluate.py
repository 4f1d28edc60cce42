"""``dexscan evaluate`` and ``dexscan calibrate``: the commands, their report folder and ``signals.csv``.

The replay (:mod:`dexscan.replay`) pushes stored history through the live detector; the metrics
(:mod:`dexscan.metrics`) are computed over purged walk-forward folds; the report is written by
:mod:`dexscan.report`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from dexscan.calibration import NO_SKILL, fit_calibrator
from dexscan.config import Settings
from dexscan.demo_mode import demo_dir, is_demo_db
from dexscan.detector import Detector
from dexscan.domain import Signal
from dexscan.errors import InputError
from dexscan.metrics import as_sample, build_metrics, rounded, skill_validation
from dexscan.replay import Replay, SignalRecord, load_histories, run_replay
from dexscan.report import REPORT_FILE, write_report
from dexscan.store import Store
from dexscan.store.connection import LockWait
from dexscan.tape import TapeReplay, bootstrap_notes, replay_tape

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _db(settings: Settings, args: argparse.Namespace) -> Path:
    return Path(args.db).expanduser() if getattr(args, "db", None) else settings.db_file()


async def replay_store(settings: Settings, store: Store, mints: Sequence[str] | None
                       ) -> tuple[Replay, list[str]]:
    histories, notes = await load_histories(store, mints)
    if not histories:
        raise InputError("no stored history to evaluate: run `dexscan backfill` (or `dexscan backfill --demo`, "
                         "then pass its --db) first" + (f"; {notes[0]}" if notes else ""))
    replay = await asyncio.to_thread(run_replay, settings, histories)
    return replay, notes


def _user_path(text: str) -> Path:
    return Path(text).expanduser()


async def evaluate(settings: Settings, store: Store, mints: Sequence[str] | None, out: Path | None = None
                   ) -> tuple[Path, dict[str, Any]]:
    """Replay the stored history (and the trade tape of a streamed session, when the database has
    one) and write the report; returns (report directory, metrics)."""
    replay, notes = await replay_store(settings, store, mints)
    metrics, charts = build_metrics(settings, replay, notes)
    session = await replay_session(settings, store)
    out_dir = out or reports_dir(settings, Path(store.path)) / metrics["run"]
    if session is not None:
        live = [sig for _, sig, _ in await store.signals()]
        metrics["tape"] = rounded(tape_section(session, live))
        horizon = round(settings.ladder.time_stop_h * 3600)
        await asyncio.to_thread(write_signals_csv, out_dir, [SignalRecord(s, None, horizon) for s in session.signals],
                                TAPE_SIGNALS_FILE)
    await asyncio.to_thread(write_report, out_dir, metrics, charts)
    await asyncio.to_thread(write_signals_csv, out_dir, replay.records)
    return out_dir, metrics


async def replay_session(settings: Settings, store: Store) -> TapeReplay | None:
    """The recorded streamed session fed again to a fresh live detector (:func:`dexscan.tape.replay_tape`),
    with the live scanner's strategies and calibrator; None when the database holds no trade tape."""
    from dexscan.calibrator_loading import load_calibrator
    from dexscan.demo_mode import DEMO_CLOCK_KEY

    if not await bootstrap_notes(store):
        return None
    detector = Detector(settings, await load_calibrator(settings, store))
    clock = await store.kv_get(DEMO_CLOCK_KEY)
    return await replay_tape(detector, store, settings.scan.hot_refresh_s, until=int(float(clock)) if clock else None)


def tape_section(session: TapeReplay, live: Sequence[Signal]) -> dict[str, Any]:
    """The tape replay against the session's stored signals: which came out the same, field by field."""
    mine = {s.key: s for s in session.signals}
    theirs = {s.key: s for s in live if s.mint in {m.mint for m in session.signals} or s.key in mine}
    same = sorted(k for k in mine.keys() & theirs.keys() if mine[k] == theirs[k])
    return {
        "trades": session.trades, "tokens": session.tokens, "bootstraps": session.bootstraps,
        "advances": session.advances, "skipped": session.skipped, "signals": len(mine),
        "same_as_live": len(same),
        "different": [list(k) for k in sorted(mine.keys() & theirs.keys()) if mine[k] != theirs[k]],
        "only_replayed": [list(k) for k in sorted(mine.keys() - theirs.keys())],
    }


async def run_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    """``dexscan evaluate``: replay stored history through the detector; write reports/<run>/."""
    store = await Store.open(_db(settings, args), LockWait.of(settings))
    try:
        out = _user_path(args.out) if getattr(args, "out", None) else None
        out_dir, m = await evaluate(settings, store, getattr(args, "tokens", None), out)
    finally:
        await store.close()
    console = Console(soft_wrap=True)  # whole lines, also in a pipe or a narrow terminal
    c = m["overall"]["candles"]
    ign = c["ignition"]
    console.print(f"{m['tokens']} tokens, {c['candles']} 4H candles, {c['pumps']} pumps")
    if ign["status"] == "ok":
        console.print(f"ignition: recall {_fmt_pct(ign['recall'])}, precision {_fmt_pct(ign['precision'])}, "
                      f"{ign['ignitions']} ignitions, {ign['missed']} missed pumps, median lead "
                      f"{fmt_minutes(ign['lead_time_s']['median'])}")
    else:
        console.print(f"ignition: {ign['status']}")
    tape = m.get("tape")
    if tape is not None:
        console.print(f"trade tape: {tape['trades']} trades of {tape['tokens']} streamed tokens replayed, "
                      f"{tape['signals']} signals, {tape['same_as_live']} the same as live"
                      + (f", {len(tape['different'])} different" if tape["different"] else "")
                      + f" ({TAPE_SIGNALS_FILE})")
    console.print(f"report: {out_dir / REPORT_FILE}")
    return 0


def fmt_minutes(seconds: float | None) -> str:
    """A lead time as a trader reads it: ``15 min``, ``7.5 min``, ``–`` when there is none."""
    if seconds is None:
        return "–"
    return f"{round(seconds / 60, 1):g} min"


def _fmt_pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


async def run_calibrate(settings: Settings, args: argparse.Namespace) -> int:
    """``dexscan calibrate``: fit the confidence model, measure its held-out skill, write the artifact.

    Samples are the labelled signals the walk-forward folds hold (purged and embargoed ones left
    out). The held-out skill per strategy (:func:`skill_validation`) is stored in the artifact; a
    strategy without positive held-out Brier skill is "no skill" and the scanner shows its base
    rate instead of a percentage. Below ``scoring.min_calibration_samples`` no artifact is written.
    An artifact fitted on a demo database is written under the demo's own folder, never where the
    live scanner looks.
    """
    db = _db(settings, args)
    world = world_of(settings, db)
    store = await Store.open(db, LockWait.of(settings))
    console = Console()
    try:
        replay, notes = await replay_store(settings, store, None)
        run = await asyncio.to_thread(skill_validation, settings, replay)
        metrics, charts = build_metrics(settings, replay, notes, skill=run)
        held = run.held
        skill = run.metrics
        need = settings.scoring.min_calibration_samples
        section: dict[str, Any] = {"samples": len(held), "positives": sum(1 for r in held if r.tp1_first),
                                   "min_samples": need, "world": world}
        artifact_path = _user_path(args.out) if getattr(args, "out", None) else default_artifact_path(settings, db)
        if len(held) >= need and run.oof_scores:
            by = skill.get("by_strategy", {})
            cal = fit_calibrator(
                [as_sample(r) for r in held], run.oof_scores, run.oof_labels,
                skill={k: {x: v[x] for x in ("n", "brier", "brier_base_rate", "brier_skill", "auc", "log_loss",
                                             "log_loss_base_rate", "ece", "has_skill", "verdict")}
                       for k, v in by.items()},
                version=f"{metrics['run']}-n{len(held)}", created_at=int(time.time()), min_samples=need,
                min_block=settings.scoring.min_block_samples, c=settings.scoring.regularization_c, world=world,
                ece=float((by.get("all") or {}).get("ece") or 0.0), worth=metrics.get("worth"))
            await asyncio.to_thread(_write_text, artifact_path, cal.to_json())
            await store.save_calibrator(cal.version, cal.created_at, cal.to_json())
            section.update(status="calibrated" if cal.status != NO_SKILL else NO_SKILL, version=cal.version,
                           artifact=str(artifact_path), blocks=cal.blocks.to_dict(), base_rates=cal.base_rates,
                           skill_strategies=sorted(k for k, v in cal.skill.items() if v.get("has_skill")))
            if cal.status == NO_SKILL:
                section["note"] = ("no strategy showed positive held-out skill: the artifact is stored as "
                                   "\"no skill\" and the scanner shows each strategy's measured base rate "
                                   "(\"TP1 first N% historically, no edge measured\"), never a per-signal percentage.")
        else:
            why = (f"{len(held)} labelled signals < {need} (scoring.min_calibration_samples)" if len(held) < need
                   else "no fold had enough earlier signals for an out-of-fold fit")
            section.update(status="uncalibrated",
                           note=f"{why}: no artifact written; the scanner stays \"uncalibrated\" and shows the raw "
                                "score. Backfill more tokens or days and run `dexscan calibrate` again.")
        metrics["calibration"] = rounded(section)
        out_dir = reports_dir(settings, db) / f"{metrics['run']}-calibration"
        await asyncio.to_thread(write_report, out_dir, metrics, charts)
        await asyncio.to_thread(write_signals_csv, out_dir, replay.records)
    finally:
        await store.close()
    if section["status"] in ("calibrated", NO_SKILL):
        console.print(f"calibrator {section['version']} ({section['status']}) written to {artifact_path} "
                      f"({len(held)} labelled signals, {world} data)")
    else:
        console.print(f"[yellow]uncalibrated[/yellow]: {section['note']}")
    for name, v in sorted(skill.get("by_strategy", {}).items()):
        console.print(f"held-out {name}: n={v['n']}, Brier skill {_fmt_num(v.get('brier_skill'))}, "
                      f"AUC {_fmt_num(v.get('auc_model_output'))} (raw score {_fmt_num(v.get('auc_ranking'))}), "
                      f"log loss {_fmt_num(v.get('log_loss'))} "
                      f"vs {_fmt_num(v.get('log_loss_base_rate'))} → {v['verdict']}")
    console.print(f"report: {out_dir / REPORT_FILE}")
    return 0


def _fmt_num(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"


def world_of(settings: Settings, db: Path) -> str:
    """``"demo"`` for a demo database (:func:`dexscan.demo_mode.is_demo_db`), else ``"live"``."""
    return "demo" if is_demo_db(settings, db) else "live"


def default_artifact_path(settings: Settings, db: Path) -> Path:
    """Where ``calibrate`` writes without ``--out``: the demo folder for demo data, else where the scanner loads."""
    if world_of(settings, db) == "demo":
        return demo_dir(settings) / "calibrator.json"
    return settings.calibrator_file()


def reports_dir(settings: Settings, db: Path) -> Path:
    """Reports of demo data go under the demo folder; others under ``app.reports_dir``."""
    if world_of(settings, db) == "demo":
        return demo_dir(settings) / "reports"
    return Path(settings.app.reports_dir).expanduser()


SIGNALS_FILE = "signals.csv"
#: The signals of the trade tape's replay (a streamed session), beside ``signals.csv``.
TAPE_SIGNALS_FILE = "tape_signals.csv"
SIGNAL_COLUMNS = ("mint", "symbol", "pool", "strategy", "layer", "candle_ts", "candle_utc", "ts", "time_utc", "entry",
                  "sl", "tp1", "tp2", "tp3", "atr", "atr_source", "flags", "raw_score", "confidence", "result",
                  "realized_r", "closed_at", "tp1_first")


def signal_rows(records: Sequence[SignalRecord]) -> list[dict[str, Any]]:
    """One audit row per replayed signal (levels, ATR and its source, flags, score, outcome)."""
    out = []
    for r in records:
        sig, lv, oc = r.signal, r.signal.levels, r.outcome
        conf = sig.confidence
        flags = list(lv.flags) if lv is not None else []
        flags += [k for k in ("no_ladder", "missed_ignition") if sig.features.get(k)]
        out.append({
            "mint": sig.mint, "symbol": sig.symbol, "pool": sig.pool or "", "strategy": sig.strategy,
            "layer": sig.layer, "candle_ts": sig.candle_ts, "candle_utc": _iso(sig.candle_ts), "ts": sig.ts,
            "time_utc": _iso(sig.ts), "entry": sig.price,
            "sl": None if lv is None else lv.sl, "tp1": None if lv is None else lv.tp1,
            "tp2": None if lv is None else lv.tp2, "tp3": None if lv is None else lv.tp3,
            "atr": None if lv is None else lv.atr, "atr_source": None if lv is None else lv.atr_source,
            "flags": ";".join(flags), "raw_score": None if conf is None else conf.raw_score,
            "confidence": None if conf is None else conf.probability,
            "result": "no_ladder" if oc is None else oc.result,
            "realized_r": None if oc is None or not oc.closed else oc.realized_r,
            "closed_at": None if oc is None else oc.closed_at,
            "tp1_first": None if not r.labelled else int(r.tp1_first),
        })
    return out


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_signals_csv(out_dir: Path, records: Sequence[SignalRecord], name: str = SIGNALS_FILE) -> Path:
    """``signals.csv`` in the run's report folder: every signal of the replay, auditable row by row."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SIGNAL_COLUMNS)
        for row in signal_rows(records):
            w.writerow([_cell(row[c]) for c in SIGNAL_COLUMNS])
    return path


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
