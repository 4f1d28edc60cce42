"""Loopback fakes of the external services, speaking their real contracts on 127.0.0.1.

Import the submodules directly: ``market`` (Jupiter, DexScreener, GeckoTerminal, Birdeye), ``rpc``
(Solana JSON-RPC) and ``telegram`` (Bot API).
"""
