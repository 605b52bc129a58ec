"""Reliability tests: nothing to configure; the helpers live in cluster.py and ledger.py."""
