"""LiteSVM must not disturb the arithmetic of the scanner that shares the demo's process."""

from __future__ import annotations

import hashlib

import numpy as np

from dexscan.demo.servers.fake_chain import FakeChain


def test_litesvm_leaves_this_threads_float_state_alone() -> None:
    chain = FakeChain()
    for i in range(3):
        chain.create_mint(hashlib.sha256(f"iso{i}".encode()).digest(), token2022=True, transfer_fee_bps=500,
                          holders=[10, 20, 30])
    # native LiteSVM code run on this thread used to make numpy's float floor-division return NaN
    assert (np.array([7.5, 3.0]) // 2.0).tolist() == [3.0, 1.0]
    assert (np.array([7.5]) % 2.0).tolist() == [1.5]
    assert chain.transactions > 0


def test_the_slot_kept_by_the_fake_chain_is_litesvms() -> None:
    chain = FakeChain()
    chain.create_mint(hashlib.sha256(b"slot").digest(), holders=[10])  # transactions do not move the slot
    assert chain.slot == int(chain.svm.get_clock().slot) == 341_197_247
    chain.advance_slots(51)
    assert chain.slot == int(chain.svm.get_clock().slot) == 341_197_298
