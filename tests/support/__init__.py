"""Test kits shared by the test suite and scripts/ (the fuzz corpus, the fault harness); never imported by
the dexscan package, and not shipped in its wheel."""
