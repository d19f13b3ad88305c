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


async def failing(runs: int, error: Exception) -> int:
    """Supervise a connection that fails with ``error`` until it has run ``runs``
    times (then stops the supervisor); how many times it ran."""
    stop = asyncio.Event()
    ran = 0

    async def connection() -> None:
        nonlocal ran
        ran += 1
        if ran == runs:
            stop.set()
        raise error

    # Waits of a millisecond or less; a connection counts as having worked only after a
    # minute, so however slowly a loaded machine runs them, these runs are one run.
    supervisor = supervise(
        connection,
        stop,
        what="thing",
        log=log,
        retry_on=(Flaky,),
        first_s=0.0001,
        cap_s=0.001,
        healthy_s=60,
    )
    await asyncio.wait_for(supervisor, 5)
    return ran


async def test_failures_are_retried_and_the_first_of_a_run_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    assert await failing(5, Flaky("away")) == 5
    assert [r.getMessage() for r in caplog.records] == ["thing: connection lost (away); retrying"]


async def test_a_bug_is_logged_with_its_traceback_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await failing(2, KeyError("bug")) == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert all(r.exc_info for r in errors)


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


async def test_a_connection_that_worked_makes_the_next_failure_a_new_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    stop = asyncio.Event()
    ran = 0

    async def connection() -> None:
        nonlocal ran
        ran += 1
        await asyncio.sleep(0.02)  # at least as long as ``healthy_s``, however loaded
        if ran == 3:
            stop.set()
        raise Flaky("lost")

    supervisor = supervise(
        connection, stop, what="thing", log=log, retry_on=(Flaky,), cap_s=0.001, healthy_s=0.01
    )
    await asyncio.wait_for(supervisor, 5)
    assert len(caplog.records) == 3, "each failure after a working connection is said"
