"""Demo and live never share artifacts (issue 14): what is fitted on the demo world stays under the
demo's own data folder, and the live scanner refuses a demo calibrator."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from dexscan.backfill import run_backfill
from dexscan.calibration import Calibrator
from dexscan.calibrator_loading import calibrator_label, load_calibrator
from dexscan.config import load_settings
from dexscan.demo_entry import DemoEntry
from dexscan.demo_mode import demo_db_path
from dexscan.evaluate import run_calibrate, run_evaluate
from dexscan.store import Store

BACKFILL_DAYS = 4


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"days": None, "tokens": None, "from_files": None, "source": None, "demo": False,
                               "db": None, "out": None}
    base.update(kw)
    return argparse.Namespace(**base)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.virtual_time  # as `dexscan backfill --demo` runs: the budget waits cost no real time
async def test_demo_runs_never_write_outside_the_demo_data_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.chdir(tmp_path)  # a live run's default reports/ would land here
    settings = load_settings().with_overrides({
        "scoring.min_calibration_samples": 1, "scoring.min_block_samples": 5, "evaluate.folds": 3,
        "evaluate.embargo_days": 0.0})
    db = demo_db_path(settings)
    demo_dir = db.parent
    assert demo_dir == Path(os.environ["DEXSCAN_DATA_DIR"]) / "demo"
    # Four days, not twelve: this test checks where artifacts land, not statistics. Four days of the
    # demo market still give the walk-forward folds dozens of labelled signals (55), so evaluate and
    # calibrate write every artifact checked below; the replay's cost grows with the days.
    assert await run_backfill(settings, _args(demo=True, days=BACKFILL_DAYS, db=str(db)), demo=DemoEntry()) == 0
    before = _files(tmp_path)
    assert await run_evaluate(settings, _args(db=str(db))) == 0
    assert await run_calibrate(settings, _args(db=str(db))) == 0
    written = _files(tmp_path) - before
    assert written, "evaluate and calibrate wrote nothing"
    outside = sorted(str(p) for p in written if demo_dir not in p.parents and not str(p).startswith(str(db)))
    assert outside == []
    assert (demo_dir / "calibrator.json").is_file()  # the demo's own artifact ...
    assert not settings.calibrator_file().exists()  # ... never where the live scanner looks
    reports = [p for p in written if p.name == "signals.csv"]
    assert len(reports) == 2 and all(demo_dir / "reports" in p.parents for p in reports)

    cal = Calibrator.from_json((demo_dir / "calibrator.json").read_text())
    assert cal.world == "demo" and cal.n >= settings.scoring.min_block_samples * 3  # fitted on a real sample
    demo_store = await Store.open(db)
    try:
        assert await load_calibrator(settings, demo_store) == cal  # the demo loads its own artifact
    finally:
        await demo_store.close()
    # The live scanner refuses it, even when someone copies it to the live path.
    settings.calibrator_file().parent.mkdir(parents=True, exist_ok=True)
    settings.calibrator_file().write_text(cal.to_json())
    live_store = await Store.open(settings.db_file())
    try:
        assert await load_calibrator(settings, live_store) is None
    finally:
        await live_store.close()
    label = calibrator_label(cal, settings)
    assert "(demo)" in label and "data 20" in label
    metrics = json.loads(next(p for p in written if p.name == "metrics.json" and "calibration" in p.parent.name)
                         .read_text())
    assert metrics["calibration"]["world"] == "demo"
