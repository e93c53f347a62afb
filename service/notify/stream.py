"""The staff live feed: events fanned out across processes through Redis pub/sub.

The process whose events loop claims an event (see service/notify/processing.py) numbers it with
the next ``feed_seq`` (a Redis counter, re-seeded from MongoDB if Redis lost it), stores
that number on the claim and publishes the event once. Every web process keeps one
subscription (a :class:`StreamHub`) and hands each message to its local connections,
each through its own bounded queue: a connection whose queue is full is dropped rather
than allowed to hold anyone up, and its client resumes with ``Last-Event-ID``.

Resume: the message id is the ``feed_seq``. A connection subscribes first, then replays
from MongoDB every published event after the given id, then continues live, skipping
what the replay already sent, so there is neither a gap nor a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from service.common.context import Context
from service.common.errors import PermissionDeniedError, ValidationFailedError
from service.common.models import Principal
from service.notify.models import OutboxEvent
from service.notify.outbox import feed_after
from service.notify.repository.outbox import OutboxReader
from service.notify.repository.preferences import PreferencesRepository
from service.notify.rules import effective, recipient_of, stream_visible

log = logging.getLogger("huimin.stream")
REPLAY_PAGE = 500


def _channel(ctx: Context) -> str:
    return ctx.key("stream", "events")


def _encode(feed_seq: int, event: OutboxEvent) -> str:
    body = dataclasses.asdict(event)
    body["time"] = event.time.isoformat()
    return json.dumps({"feed_seq": feed_seq, "event": body}, ensure_ascii=False, default=str)


def _decode(raw: str) -> tuple[int, OutboxEvent]:
    msg = json.loads(raw)
    body = msg["event"]
    body["time"] = datetime.fromisoformat(body["time"])
    return int(msg["feed_seq"]), OutboxEvent(**body)


async def publish_events(*, ctx: Context, events: list[OutboxEvent]) -> None:
    """Number several events for the live feed in the given order (one counter step), record and publish each."""
    if not events:
        return
    reader = OutboxReader(ctx.db)
    key = ctx.key("stream", "feed_seq")
    if not await ctx.redis.exists(key):
        await ctx.redis.set(key, await reader.max_feed_seq(), nx=True)
    last = int(await ctx.redis.incrby(key, len(events)))
    numbered = list(zip(range(last - len(events) + 1, last + 1), events, strict=True))
    for seq, event in numbered:
        # Stored before publishing: a client that subscribed after this point finds it by replay.
        # One at a time, each after its write: a whole batch arriving at once would overflow
        # the bounded queues of clients that are keeping up.
        await reader.set_feed_seq(event.id, seq)
        await ctx.redis.publish(_channel(ctx), _encode(seq, event))


@dataclasses.dataclass(frozen=True, slots=True)
class StreamMessage:
    """One live-feed message (``id`` is the resumable feed number), or a heartbeat when ``event`` is None."""

    id: str | None
    event: dict[str, Any] | None

    @property
    def is_heartbeat(self) -> bool:
        return self.event is None


HEARTBEAT = StreamMessage(None, None)


@dataclasses.dataclass(eq=False)
class _Connection:
    principal: Principal
    table: dict[str, dict[str, bool]]
    queue: asyncio.Queue[tuple[int, OutboxEvent] | None]
    dropped: bool = False


class StreamHub:
    """One Redis subscription per process, fanned out to this process's stream connections."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.connections: set[_Connection] = set()
        self._task: asyncio.Task[None] | None = None
        self._pubsub: Any = None
        self._lock = asyncio.Lock()
        self.closed = False

    async def start(self) -> None:
        """Subscribe (once); returns when the subscription is live."""
        async with self._lock:
            if self._task is not None and not self._task.done():
                return
            self._pubsub = self.ctx.redis.pubsub(ignore_subscribe_messages=True)
            await self._pubsub.subscribe(_channel(self.ctx))
            self._task = asyncio.create_task(self._read(), name="stream-hub")

    async def _read(self) -> None:
        try:
            async for message in self._pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    feed_seq, event = _decode(message["data"])
                except (ValueError, KeyError, TypeError):
                    log.warning("unreadable live-feed message skipped")
                    continue
                self.dispatch(feed_seq, event)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The subscription broke (Redis restarted): drop the connections so their clients
            # reconnect and resume; the next connection subscribes again.
            log.exception("live-feed subscription lost")
            for conn in list(self.connections):
                self.drop(conn)

    def dispatch(self, feed_seq: int, event: OutboxEvent) -> None:
        """Hand an event to every local connection that may see it, never waiting for one."""
        for conn in list(self.connections):
            if not stream_visible(event, conn.principal, conn.table):
                continue
            try:
                conn.queue.put_nowait((feed_seq, event))
            except asyncio.QueueFull:
                log.info("live-feed client too slow; dropping it (it resumes with Last-Event-ID)")
                self.drop(conn)

    def drop(self, conn: _Connection) -> None:
        """Disconnect one connection: its iterator ends at once."""
        conn.dropped = True
        self.connections.discard(conn)
        while not conn.queue.empty():
            conn.queue.get_nowait()
        conn.queue.put_nowait(None)

    async def close(self) -> None:
        """End every stream and the subscription (app shutdown)."""
        self.closed = True
        for conn in list(self.connections):
            self.drop(conn)
        if self._task is not None:
            self._task.cancel()
            # Bounded: a driver that swallows the cancellation must not stall shutdown.
            await asyncio.wait({self._task}, timeout=2.0)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()


async def hub_for(ctx: Context) -> StreamHub:
    """This process's hub, subscribed."""
    hub = ctx.process.stream_hub
    if hub is None or hub.closed:
        hub = ctx.process.stream_hub = StreamHub(ctx)
    await hub.start()
    return hub


async def close_streams(*, ctx: Context) -> None:
    """End all live-feed streams of this process (graceful shutdown)."""
    hub, ctx.process.stream_hub = ctx.process.stream_hub, None
    if hub is not None:
        await hub.close()


MAX_FEED_NUMBER = 2**63 - 1  # feed numbers are stored as 64-bit integers


def parse_last_event_id(value: str | None) -> int | None:
    """The feed number a client last saw; None when absent or not a number.

    A number no feed message can carry (beyond 64 bits) is ValidationFailedError
    ``invalid_last_event_id``, before the stream opens.
    """
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    if len(text) > len(str(MAX_FEED_NUMBER)) or int(text) > MAX_FEED_NUMBER:
        raise ValidationFailedError(
            "invalid_last_event_id",
            "Last-Event-ID (or last_event_id) is larger than any feed message id; reconnect without it.",
            {"last_event_id": [f"At most {MAX_FEED_NUMBER}."]},
        )
    return int(text)


class Stream:
    """An open live feed for one staff member; iterate for messages, ``close()`` when done."""

    def __init__(self, ctx: Context, hub: StreamHub, conn: _Connection, last_seen: int | None) -> None:
        self.ctx = ctx
        self.hub = hub
        self.conn = conn
        self.last_seen = last_seen

    def __aiter__(self) -> AsyncIterator[StreamMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[StreamMessage]:
        replayed: set[int] = set()
        if self.last_seen is not None:
            after = self.last_seen
            while True:
                page = await feed_after(ctx=self.ctx, feed_seq=after, limit=REPLAY_PAGE)
                for feed_seq, event in page:
                    replayed.add(feed_seq)
                    if stream_visible(event, self.conn.principal, self.conn.table):
                        yield StreamMessage(str(feed_seq), event.public_view() | {"id": str(feed_seq)})
                if len(page) < REPLAY_PAGE:
                    break
                after = page[-1][0]
        heartbeat = self.ctx.settings.stream_heartbeat_seconds
        while not self.conn.dropped:
            try:
                item = await asyncio.wait_for(self.conn.queue.get(), timeout=heartbeat)
            except TimeoutError:
                yield HEARTBEAT
                continue
            if item is None:
                return
            feed_seq, event = item
            if feed_seq in replayed or (self.last_seen is not None and feed_seq <= self.last_seen):
                continue
            yield StreamMessage(str(feed_seq), event.public_view() | {"id": str(feed_seq)})

    async def close(self) -> None:
        """Leave the hub."""
        self.hub.connections.discard(self.conn)


async def open_stream(*, ctx: Context, principal: Principal, last_event_id: str | None) -> Stream:
    """Open a staff member's live feed, resuming after ``last_event_id`` when given."""
    if not principal.is_staff:
        raise PermissionDeniedError("role_not_allowed", "The live feed is for station and supervision staff.")
    last_seen = parse_last_event_id(last_event_id)
    prefs = await PreferencesRepository(ctx.db).get(recipient_of(principal))
    hub = await hub_for(ctx)
    conn = _Connection(
        principal=principal,
        table=effective(prefs, principal.role),
        queue=asyncio.Queue(maxsize=ctx.settings.stream_queue_size),
    )
    hub.connections.add(conn)  # before the replay query, so nothing falls between the two
    return Stream(ctx, hub, conn, last_seen)
