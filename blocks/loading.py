"""`Block.load` for synchronous callers, with its real return type.

Prefect's ``sync_compatible`` makes ``Block.load`` look like it may return a coroutine; in a sync
flow it returns the block. This keeps flows typed without a cast at every call.
"""

from __future__ import annotations

from typing import TypeVar, cast

from prefect.blocks.core import Block

B = TypeVar("B", bound=Block)


def load_block(cls: type[B], name: str) -> B:
    """The saved block ``name`` of type ``cls`` (ValueError names it when it does not exist)."""
    return cast(B, cls.load(name))
