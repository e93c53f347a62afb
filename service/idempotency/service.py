"""Idempotency-Key for creating POSTs (DESIGN.md section 9).

* no key: the operation just runs;
* first use of a key by a caller: the operation runs once and its response (status and
  body) is kept for ``RECORD_TTL`` (24 h);
* the same key and the same request (fingerprint): the first response is replayed;
* the same key with another request: 422 ``idempotency_key_reused``;
* concurrent duplicates: exactly one runs the operation; the others wait up to
  ``WAIT_SECONDS`` for it and replay its response, or get 409 ``idempotency_in_progress``;
* the operation fails (an error, or a 5xx status): the key is released and may be retried.

An operation that creates something may take the id its new resource should get
(``create=``): the id is made with the key's record and is the same when a retry takes an
abandoned key over, so what a process stored before it died is found under that id rather
than made a second time (the resource's unique ``_id`` refuses the copy).

Keys are scoped to the caller (principal subject): two callers never see each other's
responses. A process that dies mid-operation holds its key only until ``LEASE_SECONDS``
pass; then a retry takes it over.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from service.common.context import Context
from service.common.errors import BadRequestError, ConflictError, ValidationFailedError
from service.common.ids import new_id
from service.common.models import Principal
from service.common.timestamps import json_default
from service.idempotency.repository import DONE, IdempotencyRecord, IdempotencyRepository

RECORD_TTL = timedelta(hours=24)
LEASE_SECONDS = 60.0
WAIT_SECONDS = 5.0
MAX_KEY_LENGTH = 255

Operation = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]
# Given the id the created resource gets (a fresh one when the request has no key).
CreateOperation = Callable[[str], Awaitable[tuple[int, dict[str, Any]]]]


def check_key(key: str) -> str:
    """The key if it is 1-255 printable ASCII characters, else BadRequestError ``invalid_idempotency_key``."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or any(not 0x20 <= ord(c) <= 0x7E for c in key) or not key.strip():
        raise BadRequestError(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters.",
        )
    return key


def _replay(record: IdempotencyRecord) -> tuple[int, dict[str, Any], bool]:
    assert record.status is not None and record.body is not None
    return record.status, json.loads(record.body), True


def _reused() -> ValidationFailedError:
    return ValidationFailedError(
        "idempotency_key_reused",
        "This Idempotency-Key was already used with a different request; use a new key for a new request.",
        errors={"Idempotency-Key": ["Already used with a different request body."]},
    )


async def run_idempotent(
    *,
    ctx: Context,
    principal: Principal,
    key: str | None,
    fingerprint: str,
    operation: Operation | None = None,
    create: CreateOperation | None = None,
    wait_seconds: float = WAIT_SECONDS,
) -> tuple[int, dict[str, Any], bool]:
    """Run ``operation`` (or ``create``) at most once per (caller, key); returns (status, body, replayed)."""
    run = create if create is not None else _ignoring_id(operation)
    if key is None:
        status, body = await run(new_id())
        return status, body, False
    check_key(key)
    repo = IdempotencyRepository(ctx.db)
    owner = secrets.token_hex(8)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = 0.02
    while True:
        now = ctx.now()
        lease_until = now + timedelta(seconds=LEASE_SECONDS)
        resource_id = new_id()
        claimed = await repo.claim(
            subject=principal.subject,
            key=key,
            fingerprint=fingerprint,
            owner=owner,
            now=now,
            lease_until=lease_until,
            expires_at=now + RECORD_TTL,
            resource_id=resource_id if create is not None else None,  # an operation that creates nothing names nothing
        )
        if not claimed:
            record = await repo.get(principal.subject, key)
            if record is None:  # released or expired between our insert and read: try again
                continue
            if record.fingerprint != fingerprint:
                raise _reused()
            if record.state == DONE:
                return _replay(record)
            if record.lease_until <= now and await repo.take_over(record, owner=owner, lease_until=lease_until):
                claimed = True
                resource_id = record.resource_id or resource_id
        if claimed:
            return await _run_once(repo, principal.subject, key, owner, functools.partial(run, resource_id))
        if loop.time() >= deadline:
            raise ConflictError(
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
            )
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _ignoring_id(operation: Operation | None) -> CreateOperation:
    if operation is None:
        raise TypeError("pass operation or create")

    async def run(_resource_id: str) -> tuple[int, dict[str, Any]]:
        return await operation()

    return run


async def _run_once(
    repo: IdempotencyRepository, subject: str, key: str, owner: str, operation: Operation
) -> tuple[int, dict[str, Any], bool]:
    try:
        status, body = await operation()
    except BaseException:
        await asyncio.shield(repo.release(subject=subject, key=key, owner=owner))
        raise
    if status >= 500:
        await repo.release(subject=subject, key=key, owner=owner)
        return status, body, False
    await repo.complete(
        subject=subject,
        key=key,
        owner=owner,
        status=status,
        body=json.dumps(body, ensure_ascii=False, default=json_default),
    )
    return status, body, False
