"""Typed messages to the app from outside its event loop."""

from __future__ import annotations

from textual.message import Message


class SnapshotReady(Message):
    """The session built a new snapshot (posted from its thread): the app takes the latest one.
    It carries nothing, so a screen that falls behind takes one snapshot, not a queue of them."""
