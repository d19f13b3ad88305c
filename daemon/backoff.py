"""How pvlog waits and retries: one backoff policy, one supervisor, waits a stop cuts short.

Every reconnect loop (a device's port, each MQTT connection, the InfluxDB writer's
retries) uses these, so they all back off alike: capped exponential steps with full
jitter (a retry waits between a tenth of the step and the step: never zero, so no
tight loop; jittered, so many daemons do not retry in step), and a run of failures
is logged once, not at every retry.

Each loop draws its jitter from a source of its own (``jitter``): seeded from the
OS, unless ``PVLOG_JITTER_SEED`` is set, when it is seeded from that and the loop's
name, so that a test knows every wait a daemon will draw and can check each retry
against its own step, not against a threshold that jitter can miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable
from typing import Any

FIRST_S = 0.2
CAP_S = 5.0
JITTER_SEED_ENV = "PVLOG_JITTER_SEED"


def jitter(loop_name: str, seed: str | None = None) -> random.Random:
    """The source of one retry loop's jitter, seeded with ``seed`` or, by default,
    ``PVLOG_JITTER_SEED`` (see the module's docstring)."""
    seed = seed or os.environ.get(JITTER_SEED_ENV)
    return random.Random(f"{seed}/{loop_name}") if seed else random.Random()


def step_s(attempt: int, *, first_s: float = FIRST_S, cap_s: float = CAP_S) -> float:
    """The longest wait before retry number ``attempt`` (0 first): doubling, capped."""
    return min(cap_s, first_s * 2.0 ** min(attempt, 32))


def backoff_s(
    attempt: int, rng: random.Random, *, first_s: float = FIRST_S, cap_s: float = CAP_S
) -> float:
    """The wait before retry number ``attempt``: between a tenth of its step and the step."""
    step = step_s(attempt, first_s=first_s, cap_s=cap_s)
    return rng.uniform(step / 10, step)


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop``; True if stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def first_of(*aws: Awaitable[Any]) -> list[bool]:
    """Wait until the first of ``aws`` is done; which are done, in order.

    Coroutines are run as tasks made here and cancelled once one is done; futures and
    tasks passed in belong to the caller and are left running.
    """
    made = [not asyncio.isfuture(a) for a in aws]
    futures = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future, ours in zip(futures, made, strict=True):
            if ours:
                future.cancel()
    return [f.done() and not f.cancelled() for f in futures]


async def supervise(
    connection: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    what: str,
    log: logging.Logger,
    retry_on: tuple[type[BaseException], ...],
    failure: str = "connection lost",
    first_s: float = FIRST_S,
    cap_s: float = CAP_S,
    cancel_on_stop: bool = True,
    on_lost: Callable[[], None] | None = None,
    healthy_s: float | None = None,
    rng: random.Random | None = None,
) -> None:
    """Run ``connection()`` again and again until ``stop``, backing off between runs.

    ``connection`` returns or raises when its connection ends. ``retry_on``: the
    failures that are expected (a broker away, a port unplugged): the first of a run
    is logged as a warning; anything else is logged with its traceback, and retried
    all the same (a bug in one connection never ends the daemon). A connection that
    lasted ``healthy_s`` (by default ``cap_s``) or longer was a working one: the next
    failure starts a new run. ``rng``: the jitter (by default ``jitter(what)``).
    ``cancel_on_stop``: cancel the running connection at ``stop``; else let it finish
    (for one that says goodbye, such as publishing offline) and then return.
    """
    loop = asyncio.get_running_loop()
    rng = rng or jitter(what)
    healthy_s = cap_s if healthy_s is None else healthy_s
    attempt = 0
    while not stop.is_set():
        started = loop.time()
        task = asyncio.ensure_future(connection())
        if cancel_on_stop:
            finished, _stopped = await first_of(task, stop.wait())
            if not finished:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return
        else:
            await asyncio.wait([task])
        if on_lost is not None:
            on_lost()
        if loop.time() - started >= healthy_s:
            attempt = 0
        exc = None if task.cancelled() else task.exception()
        if exc is not None and not isinstance(exc, retry_on):
            log.error("%s failed; starting over", what, exc_info=exc)
        elif exc is not None and attempt == 0:
            log.warning("%s: %s (%s); retrying", what, failure, exc)
        attempt += 1
        await sleep_unless(stop, backoff_s(attempt - 1, rng, first_s=first_s, cap_s=cap_s))


async def within(seconds: float, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for ``tasks`` up to ``seconds``, then cancel what is left."""
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
