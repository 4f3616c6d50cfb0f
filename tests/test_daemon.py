"""`newsdesk run` as a real process: it fetches on start and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import write_config

DEMO = Path(__file__).parents[1] / "service" / "newsdesk" / "demo"


def test_the_daemon_fetches_then_exits_0_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "samples").mkdir()
    sample = (DEMO / "samples" / "techwire.xml").read_bytes()
    (tmp_path / "samples" / "a.xml").write_bytes(sample)
    config = write_config(
        tmp_path, '[fetch]\nallow_local_files = true\n[[feed]]\nurl = "file:samples/a.xml"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDESK_")}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "newsdesk", "--config", str(config), "run"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline:
            status = subprocess.run(
                [sys.executable, "-m", "newsdesk", "--config", str(config), "status"],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            ).stdout
            if "entries: 3 " in status:
                break
            time.sleep(0.5)
        if "entries: 3 " not in status:
            daemon.kill()
            raise AssertionError(f"not fetched; daemon said: {daemon.communicate()[1]}")
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, stderr
    assert "fetch round done: 1 feeds: 1 ok" in stderr
    assert "stopping on SIGTERM" in stderr
