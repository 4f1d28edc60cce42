"""dexscan: finds early pumps in Solana DEX tokens, safely."""

__version__ = "0.1.0"
