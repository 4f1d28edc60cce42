"""The built-in simulated market (``market_sim``) and loopback fakes of every external service.

The demo scanner and the test suite share them, so there is one fake per service, not one per test.
"""
