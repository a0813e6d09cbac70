"""Libraries built on Lua scripts, end to end, against dumpling and against real Redis:
redis-py's Lock and register_script, RQ with its scheduler, Celery with a Redis broker
and result backend.  Each flow must behave the same on both servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from tests.servers import ServerProcess


@pytest.fixture(params=["dumpling", "redis"])
def server(request: pytest.FixtureRequest, dumpling_server: ServerProcess,
           redis_server: ServerProcess) -> Iterator[ServerProcess]:
    chosen = dumpling_server if request.param == "dumpling" else redis_server
    client = redis.Redis(port=chosen.port)
    client.flushall()
    client.script_flush()
    client.close()
    yield chosen


def add(a: int, b: int) -> int:
    return a + b


def test_rq_with_scheduler(server: ServerProcess) -> None:
    rq = pytest.importorskip("rq")
    connection = redis.Redis(port=server.port)
    queue = rq.Queue("default", connection=connection)
    now = queue.enqueue(add, 2, 3)
    later = queue.enqueue_in(timedelta(milliseconds=300), add, 4, 5)
    time.sleep(1.2)  # the scheduled job is due before the worker starts
    worker = rq.SimpleWorker([queue], connection=connection)
    # The worker's command channel (a pub/sub thread) is not under test; its thread join
    # can idle for a minute in redis-py whichever server it talks to.
    worker.subscribe = worker.unsubscribe = lambda: None
    worker.work(burst=True, with_scheduler=True)
    deadline = time.monotonic() + 10
    while later.get_status(refresh=True) != "finished" and time.monotonic() < deadline:
        worker.work(burst=True, with_scheduler=True)
        time.sleep(0.2)
    assert now.get_status(refresh=True) == "finished" and now.return_value() == 5
    assert later.get_status(refresh=True) == "finished" and later.return_value() == 9
    connection.close()


def test_redis_py_lock(server: ServerProcess) -> None:
    client = redis.Redis(port=server.port)
    lock = client.lock("resource", timeout=5)
    assert lock.acquire(blocking=False)
    other = client.lock("resource", timeout=5)
    assert not other.acquire(blocking=False)
    assert lock.extend(10)
    assert 5 < client.pttl("resource") / 1000 <= 15
    other.local.token = b"not-the-owner"
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        other.release()  # the release script refuses a token that is not the owner's
    other.local.token = None
    lock.release()
    assert client.get("resource") is None
    assert other.acquire(blocking=True, blocking_timeout=1)
    assert other.reacquire()
    other.release()
    client.close()


def test_redis_py_register_script(server: ServerProcess) -> None:
    client = redis.Redis(port=server.port)
    incr_by = client.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert incr_by(keys=["counter"], args=[5]) == 5
    assert incr_by(keys=["counter"], args=[-2]) == 3
    client.script_flush()  # redis-py falls back to EVAL on NOSCRIPT
    assert incr_by(keys=["counter"], args=[1]) == 4
    pipe = client.pipeline()
    incr_by(keys=["counter"], args=[10], client=pipe)
    pipe.get("counter")
    assert pipe.execute() == [14, b"14"]
    client.close()


def test_celery_task_round_trip(server: ServerProcess) -> None:
    celery = pytest.importorskip("celery")
    from celery.contrib.testing.worker import start_worker

    url = f"redis://127.0.0.1:{server.port}/0"
    app = celery.Celery(f"dumpling_test_{server.port}", broker=url, backend=url)
    app.conf.update(broker_connection_retry_on_startup=False, worker_hijack_root_logger=False)

    @app.task(name=f"dumpling_test_{server.port}.add")
    def add_task(a: int, b: int) -> int:
        return a + b

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        result = add_task.delay(2, 3)
        assert result.get(timeout=20) == 5
        group = celery.group(add_task.s(i, i) for i in range(5))()
        assert group.get(timeout=20) == [0, 2, 4, 6, 8]
