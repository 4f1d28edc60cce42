"""10,000 seeded mutations of real notifications (and getTransaction answers) through the decoders:
zero crashes, every rejection counted with a reason, no malformed event (``dexscan.chain.events.fuzz``;
``scripts/fuzz_decoders.py`` prints the same run as JSON)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dexscan.chain.events.fuzz import run, seed_corpus

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "onchain"


@pytest.mark.parametrize("data_dir", [DATA, None], ids=["real-seeds", "synthetic-seeds"])
def test_ten_thousand_mutations_no_crash_every_rejection_named(data_dir: Path | None) -> None:
    if data_dir is not None and not data_dir.is_dir():
        pytest.skip(f"no real on-chain data at {data_dir}")
    report = run(10_000, seed=13, data_dir=data_dir)
    assert report["crashes"] == 0, report["crash_examples"]
    assert report["malformed_events"] == 0, report["malformed_examples"]
    assert report["rejections"] == sum(report["rejections_by_reason"].values()) > 0
    assert "" not in report["rejections_by_reason"]
    # the mutations reach the decoders' own checks, not only the envelope
    for reason in ("bad_base64", "short_payload", "bad_field", "log_truncated", "tx_failed"):
        assert report["rejections_by_reason"].get(reason, 0) > 0, reason
    assert report["events"] > 0


def test_the_run_is_deterministic_for_a_seed() -> None:
    assert run(500, seed=5) == run(500, seed=5)


def test_the_real_seeds_are_used_when_present() -> None:
    if not DATA.is_dir():
        pytest.skip("no real data")
    assert len(seed_corpus(DATA)) > len(seed_corpus(None)) + 20
