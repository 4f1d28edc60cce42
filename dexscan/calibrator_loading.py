"""Which confidence calibrator a run uses (:class:`dexscan.calibration.Calibrator`, fitted by
``dexscan calibrate``), and how the status line names it."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Protocol

from dexscan.calibration import Calibrator
from dexscan.config import Settings
from dexscan.demo_mode import demo_dir, is_demo_db
from dexscan.errors import ConfigError

log = logging.getLogger(__name__)


class CalibratorStore(Protocol):
    """The database a calibrator may be stored in (:class:`dexscan.store.Store`)."""

    @property
    def path(self) -> str | Path | None: ...

    async def latest_calibrator(self) -> str | None: ...


async def load_calibrator(settings: Settings, store: CalibratorStore) -> Calibrator | None:
    """The confidence calibrator: the artifact file, else the newest one in the store, else None.

    Demo and live never share artifacts: a demo database (under the demo's own folder) reads the
    demo's ``calibrator.json`` there, and an artifact is refused when its ``world`` (what it was
    fitted on) is not the one being scanned — the live scanner never loads a demo calibrator.
    """

    def world_and_path() -> tuple[str, Path]:
        demo = store.path is not None and is_demo_db(settings, Path(store.path))
        if demo:
            return "demo", demo_dir(settings).resolve() / "calibrator.json"
        return "live", settings.calibrator_file()

    world, path = world_and_path()
    text: str | None = None
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        text = await store.latest_calibrator()
    if not text:
        return None
    try:
        cal = Calibrator.from_json(text)
    except ConfigError as exc:
        log.warning("calibrator %s ignored (confidence stays uncalibrated): %s", path, exc)
        return None
    if cal.world != world:
        log.warning("calibrator %s ignored: it was fitted on %s data and this is a %s run "
                    "(demo and live never share artifacts)", cal.version, cal.world, world)
        return None
    return cal


def calibrator_label(calibrator: Calibrator | None, settings: Settings) -> str:
    """The status line's calibrator: uncalibrated, no skill (with the measured base rate), or the
    calibrated artifact — each with the data span it was fitted on."""
    if calibrator is None or calibrator.n < settings.scoring.min_calibration_samples:
        return "uncalibrated"
    fmt = "%Y-%m-%d"
    span = (f"data {time.strftime(fmt, time.gmtime(calibrator.data_start))}→"
            f"{time.strftime(fmt, time.gmtime(calibrator.data_end))}")
    world = " (demo)" if calibrator.world == "demo" else ""
    if calibrator.status == "no skill":
        return f"no skill · {calibrator.no_skill_text(None)} · {span}{world}"
    skilled = ", ".join(sorted(k for k, v in calibrator.skill.items() if k != "all" and v.get("has_skill")))
    return (f"{calibrator.version} · n={calibrator.n} · ECE {calibrator.ece:.3f} · skill: {skilled or 'all'} · "
            f"{span}{world}")

