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


def test_the_stream_survives_the_same_mutations_as_raw_messages() -> None:
    """The WebSocket client's message handler on 3,000 mutants sent as text (and raw junk): it never
    raises, and every message is counted."""
    import json
    import random

    from dexscan.chain.events.fuzz import mutate
    from dexscan.chain.stream import LogStream

    stream = LogStream(["ws://127.0.0.1:1"], ["CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"])
    conn = stream.connections[0]
    conn.sub_to_mention[1] = conn.mentions[0]
    rng = random.Random(21)
    corpus = seed_corpus(DATA if DATA.is_dir() else None)
    for i in range(3_000):
        mutant = mutate(rng.choice(corpus), rng)
        text = mutant if isinstance(mutant, str) else json.dumps(mutant)
        stream.handle(text if i % 7 else text.encode("utf-8", "surrogatepass")[: rng.randrange(1, 4000)], conn)
    counts = stream.stats.counts
    assert counts["messages"] == 3_000
    assert "internal_error" not in stream.stats.rejected
    assert counts["notifications"] > 1_000 and counts["decoded"] > 0
