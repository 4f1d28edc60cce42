"""Telegram: alert delivery and the bot's commands (imported on demand: it pulls in aiogram).

- :mod:`.transport`: the Bot API session (same origin only), sending within the flood limits,
  ``getUpdates`` polling, start-up with backoff;
- :mod:`.outbox`: delivering the alert outbox, exactly once (crash recovery), digests, one alert per move;
- :mod:`.commands`: who may ask, and one handler per command, each asking
  :class:`~dexscan.backend.ScannerBackend`; :mod:`.answers` renders what they send;
- :mod:`.runner`: delivery and commands together until stopped, standalone or inside ``dexscan scan``;
- :mod:`.cli`: ``dexscan bot``.
"""
