"""Terminal user interface: the live dashboard (``dexscan.ui.dashboard``: layout plan, render, the live
shell and its keys), drawn from the status panel (``panel``), the signal tables (``tables``), their
cells (``cells``) and the fixed-height machinery (``layout``).

Everything here only *reads* a :class:`~dexscan.status.ScannerStatus`; nothing in the UI talks to
providers, the chain or the store.
"""

from dexscan.ui.dashboard import Dashboard, dashboard_height, render

__all__ = ["Dashboard", "dashboard_height", "render"]
