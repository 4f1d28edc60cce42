"""Loopback fakes of the external services, speaking their real contracts on 127.0.0.1.

Import the submodules directly: ``market`` (Jupiter, DexScreener, GeckoTerminal, Birdeye), ``rpc``
(Solana JSON-RPC, serving a ``fake_chain``: the LiteSVM chain) and ``telegram`` (Bot API).
"""
