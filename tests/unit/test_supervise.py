"""The one supervisor every reconnect loop uses: retries with backoff, says the first
failure of a run once, lets a goodbye finish when asked, and never dies of a bug."""

from __future__ import annotations

import asyncio
import logging

import pytest

from daemon.backoff import first_of, supervise

log = logging.getLogger("test.supervise")


class Flaky(Exception):
    pass


async def test_failures_are_retried_and_the_first_of_a_run_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    runs = 0

    async def connection() -> None:
        nonlocal runs
        runs += 1
        if runs == 5:
            stop.set()
        raise Flaky(f"try {runs}")

    caplog.set_level(logging.WARNING)
    await asyncio.wait_for(
        supervise(
            connection, stop, what="thing", log=log, retry_on=(Flaky,), first_s=0.001, cap_s=0.01
        ),
        5,
    )
    assert runs == 5
    assert [r.getMessage() for r in caplog.records] == ["thing: connection lost (try 1); retrying"]


async def test_a_bug_is_logged_with_its_traceback_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    runs = 0

    async def connection() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            stop.set()
        raise KeyError("bug")

    await asyncio.wait_for(
        supervise(connection, stop, what="thing", log=log, retry_on=(Flaky,), first_s=0.001), 5
    )
    assert runs == 2
    assert all(r.exc_info for r in caplog.records if r.levelno == logging.ERROR)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2


@pytest.mark.parametrize("cancel", [True, False])
async def test_stop_cancels_a_connection_or_lets_it_say_goodbye(cancel: bool) -> None:
    stop = asyncio.Event()
    said: list[str] = []

    async def connection() -> None:
        await stop.wait()
        await asyncio.sleep(0.01)
        said.append("goodbye")

    task = asyncio.create_task(
        supervise(connection, stop, what="t", log=log, retry_on=(), cancel_on_stop=cancel)
    )
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert said == ([] if cancel else ["goodbye"])


async def test_first_of_cancels_only_what_it_made() -> None:
    theirs: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done = asyncio.Event()
    done.set()
    assert await first_of(theirs, done.wait()) == [False, True]
    assert not theirs.cancelled(), "a future of the caller's is left as it is"
