"""A channel that costs nothing: what the delivery worker itself costs, without a platform.

Benchmarks put the repository root on sys.path first, then `from null_channel import
NullChannel`.
"""

from __future__ import annotations

from bot.channels.pacing import ChannelLimiter
from handlers.capabilities import CONSOLE


class NullChannel:
    name = "bench"
    limiter = ChannelLimiter(0, per_chat=False)  # no platform to pace for
    capabilities = CONSOLE

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, user_id: str, message) -> str:
        return user_id
