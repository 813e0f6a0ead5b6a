"""One driver per channel for the conformance suite (tests/channels/test_conformance.py).

A driver plays residents on a channel's fake platform (or terminal), through the real
adapter, and reads back what the bot sent them. Every channel passes the same scenarios.
"""
