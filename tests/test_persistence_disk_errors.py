"""Saves and AOF writes that the disk refuses: reported, nothing crashes, the last good
file stays, writes come back once the disk does.

The tests run as root, and root ignores permission bits (CAP_DAC_OVERRIDE: a ``chmod
0500`` directory is still writable), so two failures that do stop root are used:

* **disk full** - ``RLIMIT_FSIZE`` set on the running server with ``prlimit(2)``: a write
  past the limit writes what fits, then fails with ``EFBIG`` ("File too large"), as a
  full disk fails with ``ENOSPC`` half-way through a file.  Python ignores ``SIGXFSZ``,
  so the server (and its forked BGSAVE child, which inherits the limit) sees the error
  instead of being killed.  The limit is far above the server log's size.
* **unwritable dir** - the ``dir`` directory renamed away and a regular file put at its
  path: opening ``<dir>/temp-<pid>.rdb`` fails with ``ENOTDIR`` for root too.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from tests.servers import ServerProcess
from tests.test_persistence_aof import client
from tests.test_persistence_rdb import dumpling, info, raw_call, shutdown, wait_for

MISCONF = (
    b"-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands "
    b"that may modify the data set are disabled, because this instance is configured to report errors during "
    b"writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for "
    b"details about the RDB error.\r\n"
)
LIMIT = 256 * 1024


def limit_file_size(server: ServerProcess, size: int) -> None:
    """Only the soft limit: raising a hard one back needs CAP_SYS_RESOURCE."""
    _, hard = resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (size, hard))


def unlimit(server: ServerProcess) -> None:
    _, hard = resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))


def bgsave_and_wait(server: ServerProcess) -> str:
    assert raw_call(server, "BGSAVE") == b"+Background saving started\r\n"
    wait_for(lambda: info(server)["rdb_bgsave_in_progress"] == "0", timeout=20)
    return info(server)["rdb_last_bgsave_status"]


def temp_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith("temp-")]


def test_disk_full_save_is_reported_and_the_last_good_file_stays(tmp_path: Path) -> None:
    with dumpling(tmp_path, "--save", "3600 1") as server:
        c = client(server)
        c.set("good", "1")
        assert c.save()
        good = (tmp_path / "dump.rdb").read_bytes()
        c.set("big", os.urandom(2 * LIMIT))  # incompressible: the file must pass the limit
        limit_file_size(server, LIMIT)
        assert bgsave_and_wait(server) == "err"
        assert raw_call(server, "SET", "x", "1") == MISCONF
        assert raw_call(server, "PING") == MISCONF  # as in Redis: PING counts as a write here
        assert raw_call(server, "GET", "good") == b"$1\r\n1\r\n"  # reads still served
        assert raw_call(server, "SAVE") == b"-ERR\r\n"
        assert (tmp_path / "dump.rdb").read_bytes() == good and temp_files(tmp_path) == []
        log = server.log()
        assert "Write error while saving DB to the disk(rdbSaveRio): File too large" in log
        assert "Background saving error" in log
        assert server.proc.poll() is None
        unlimit(server)
        assert bgsave_and_wait(server) == "ok"
        assert raw_call(server, "SET", "x", "1") == b"+OK\r\n"
        assert (tmp_path / "dump.rdb").stat().st_size > 2 * LIMIT


def test_unwritable_dir_save_is_reported_and_the_last_good_file_stays(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    moved = tmp_path / "moved"
    with dumpling(data, "--save", "3600 1") as server:
        c = client(server)
        c.set("good", "1")
        assert c.save()
        good = (data / "dump.rdb").read_bytes()
        c.set("later", "2")
        data.rename(moved)
        data.write_text("a regular file where the directory was\n")
        try:
            assert bgsave_and_wait(server) == "err"
            assert raw_call(server, "SET", "x", "1") == MISCONF
            assert raw_call(server, "SAVE") == b"-ERR\r\n"
            assert "(in server root dir unknown) for saving: Not a directory" in server.log()
            assert server.proc.poll() is None
        finally:
            data.unlink()
            moved.rename(data)
        assert (data / "dump.rdb").read_bytes() == good and temp_files(data) == []
        assert bgsave_and_wait(server) == "ok"
        assert raw_call(server, "SET", "x", "1") == b"+OK\r\n"
    with dumpling(data) as server:
        assert client(server).mget("good", "later", "x") == [b"1", b"2", b"1"]


def test_stop_writes_on_bgsave_error_no_keeps_accepting_writes(tmp_path: Path) -> None:
    with dumpling(tmp_path, "--save", "3600 1", "--stop-writes-on-bgsave-error", "no") as server:
        c = client(server)
        c.set("big", os.urandom(2 * LIMIT))
        limit_file_size(server, LIMIT)
        assert bgsave_and_wait(server) == "err"
        assert raw_call(server, "SET", "x", "1") == b"+OK\r\n"
        unlimit(server)


def test_aof_write_error_refuses_writes_with_redis_text_until_the_disk_is_back(tmp_path: Path) -> None:
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        c = client(server)
        c.set("before", "1")
        incr = tmp_path / "appendonlydir" / "appendonly.aof.1.incr.aof"
        wait_for(lambda: b"before" in incr.read_bytes())
        limit_file_size(server, incr.stat().st_size + 1000)
        big = os.urandom(50_000)
        assert c.set("big", big)  # acknowledged: the failed write stays in the AOF buffer
        wait_for(lambda: info(server)["aof_last_write_status"] == "err")
        assert raw_call(server, "SET", "x", "1") == b"-MISCONF Errors writing to the AOF file: File too large\r\n"
        assert raw_call(server, "GET", "before") == b"$1\r\n1\r\n"
        assert "Error writing to the AOF file: File too large" in server.log()
        assert server.proc.poll() is None
        unlimit(server)
        wait_for(lambda: info(server)["aof_last_write_status"] == "ok", timeout=5)  # the cron retries
        assert "AOF write error looks solved, Redis can write again." in server.log()
        assert raw_call(server, "SET", "x", "1") == b"+OK\r\n"
        shutdown(server, "NOSAVE")
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        assert client(server).mget("before", "big", "x") == [b"1", big, b"1"]
