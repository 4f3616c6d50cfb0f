"""One daemon per store and one sender per issue, on both engines."""

from __future__ import annotations

import subprocess
import sys

import pytest

from newsdesk.store import open_store
from newsdesk.store.locks import Busy, holder


def test_a_held_lock_refuses_a_second_holder_until_released(store_url: str) -> None:
    first, second = open_store(store_url), open_store(store_url)
    try:
        held = first.lock("daemon", what="another newsdesk daemon runs on this store")
        with pytest.raises(Busy, match="another newsdesk daemon runs on this store"):
            second.lock("daemon", what="another newsdesk daemon runs on this store")
        # Locks have names: the send lock is another one.
        second.lock("send", what="sending").release()
        held.release()
        second.lock("daemon", what="x").release()
    finally:
        first.close()
        second.close()


def test_a_dead_holder_leaves_no_lock_behind(sqlite_url: str) -> None:
    # A process takes the lock and dies without releasing it (as SIGKILL would leave it).
    code = (
        "import os, sys; from newsdesk.store import open_store; "
        f"s = open_store({sqlite_url!r}); s.lock('daemon', what='x'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    store = open_store(sqlite_url)
    try:
        assert holder(store.engine, "daemon") is None
        store.lock("daemon", what="x").release()
    finally:
        store.close()


def test_the_message_names_the_pid_holding_a_sqlite_lock(sqlite_url: str) -> None:
    import os

    store, other = open_store(sqlite_url), open_store(sqlite_url)
    try:
        with store.lock("daemon", what="busy"):
            assert holder(other.engine, "daemon") == os.getpid()
            with pytest.raises(Busy, match=rf"busy \(pid {os.getpid()}\): lock .*daemon\.lock"):
                other.lock("daemon", what="busy")
    finally:
        store.close()
        other.close()
