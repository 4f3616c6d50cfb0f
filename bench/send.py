"""Send benchmark: one issue to 10,000 subscribers through a local SMTP server.

What it measures, in one invocation (``python bench/send.py``, defaults shown):

1. **The whole send** - ``newsdesk send`` as the curator runs it (a subprocess: start,
   compose, freeze, queue 10,000 ledger rows, then per message: claim, personalise,
   SMTP, record) to an aiosmtpd server in another process on 127.0.0.1, over one
   persistent connection. Messages per second, ``--runs 3`` times, median.
2. **The floor** - ``smtplib.sendmail`` of pre-built bytes over one connection (no
   ledger, no personalisation), ``--peer-messages 2000``, measured before the first
   whole send and after each one. The machine's speed swings from minute to minute
   (other work on its 2 cores), so each whole send is compared with the floor measured
   just before and after it, and the ratio reported is the median of those ratios.
3. **Personalisation** - the per-message cost of filling in the greeting and the signed
   unsubscribe link and serialising the MIME message (in this process, median of 2,000).
4. **Peers, same messages, same server, no ledger**: (a) the SMTP transport over one
   persistent connection (``--peer-messages``; each of 3 runs next to a floor run);
   (b) the same, opening a connection per message (what a naive sender does;
   ``--reconnect-messages 200``: at ~20 messages/s against this server, 2,000 would
   take a minute and a half per run).

The server is a plain aiosmtpd sink in its own process that appends each Message-ID to a
file, so the messages counted are the messages received. Writes the "Sending" section of
docs/benchmarks.md (``--no-doc`` to skip). Takes about three minutes.
"""

from __future__ import annotations

import argparse
import itertools
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import benchdoc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from newsdesk import delivery  # noqa: E402
from newsdesk.config import Config, load_config  # noqa: E402
from newsdesk.send import SmtpSettings, SmtpTransport  # noqa: E402
from newsdesk.store import open_store  # noqa: E402

TARGET = 300.0
FLOOR_SHARE = 0.85
"""The sending phase against smtplib alone on the same server, in the same run."""
CONFIG_TAIL = """
[mail]
transport = "smtp"

[mail.smtp]
host = "127.0.0.1"
port = {port}
security = "none"
"""


SINK = """
import re, socket, sys, time
from aiosmtpd.controller import Controller
ids = open(sys.argv[1], "a", encoding="utf-8")
pattern = re.compile(rb"^Message-ID: *(.*?)\\r?$", re.M | re.I)

class Sink:
    async def handle_DATA(self, server, session, envelope):
        head = envelope.original_content.split(b"\\r\\n\\r\\n", 1)[0]
        found = pattern.search(head)
        message_id = found.group(1).decode() if found else ""
        ids.write(f"{time.monotonic():.6f} {message_id}\\n")
        ids.flush()
        return "250 OK"

probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print("listening", controller.hostname, controller.port, flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    controller.stop()
"""


class Server:
    """A plain aiosmtpd sink in its own process (it must not share our GIL): it accepts
    everything and appends each Message-ID to a file. Leaner than tests/smtpserver.py,
    whose scripting and logging would make the server the bottleneck."""

    def __init__(self, count_file: Path) -> None:
        self.count_file = count_file
        self.process = subprocess.Popen(
            [sys.executable, "-c", SINK, str(count_file)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        self.port = int(line[-1])

    def received(self) -> int:
        return len(self.lines())

    def lines(self) -> list[str]:
        return self.count_file.read_text().splitlines() if self.count_file.exists() else []

    def arrival_rate(self, first: int) -> float:
        """Messages per second between the first and the last arrival since line ``first``
        (the sending phase alone, as the server saw it)."""
        times = [float(line.split(" ", 1)[0]) for line in self.lines()[first:]]
        return (len(times) - 1) / (times[-1] - times[0])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def demo(directory: Path, port: int, subscribers: int) -> Config:
    """The demo newsletter, fetched, with ``subscribers`` readers and SMTP to ``port``."""
    newsdesk = [sys.executable, "-m", "newsdesk"]
    subprocess.run([*newsdesk, "init", str(directory)], check=True, capture_output=True)
    path = directory / "newsdesk.toml"
    with path.open("a", encoding="utf-8") as f:
        f.write(CONFIG_TAIL.format(port=port))
    text = path.read_text(encoding="utf-8").replace(
        '[mail]\ntransport = "outbox"\noutbox = "outbox"\n', ""
    )
    path.write_text(text, encoding="utf-8")
    subprocess.run(
        [*newsdesk, "--config", str(path), "run", "--once"], check=True, capture_output=True
    )
    config = load_config(path, {})
    store = open_store(config.store_url)
    now = datetime.now(UTC)
    rows = [
        {"email": f"reader{n:05}@example.org", "name": f"Reader {n}"} for n in range(subscribers)
    ]
    store.subscribers.import_rows(rows, source="bench", now=now, where="bench")
    store.close()
    return config


def whole_send(port: int, subscribers: int, server: Server) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = demo(Path(tmp) / "demo", port, subscribers)
        before = server.received()
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "newsdesk", "--config", str(config.path), "send"],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - start
        return seconds, server.received() - before, server.arrival_rate(before)


def peer_messages(port: int, count: int) -> tuple[list[tuple[str, bytes, str]], float]:
    """Real personalised messages of the demo issue, and the median personalisation cost."""
    with tempfile.TemporaryDirectory() as tmp:
        config = demo(Path(tmp) / "demo", port, count)
        store = open_store(config.store_url)
        clock = lambda: datetime.now(UTC)  # noqa: E731
        ctx = delivery._context(config, store, clock)  # a look inside: no ledger here
        issue = delivery.draft_issue(config, delivery.compose(config, store, now=clock()), clock())
        messages, costs = [], []
        for s in store.subscribers.active():
            msg_id = f"<bench-{s.id}@example.org>"
            start = time.perf_counter()
            raw = delivery.personalise(ctx, issue, s, msg_id)
            costs.append(time.perf_counter() - start)
            messages.append((s.email, raw, msg_id))
        store.close()
    return messages, statistics.median(costs)


def transport_rate(port: int, messages: list[tuple[str, bytes, str]], *, reconnect: bool) -> float:
    transport = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port, security="none"))
    start = time.perf_counter()
    for to, raw, msg_id in messages:
        transport.send("briefing@example.org", to, raw, msg_id)
        if reconnect:
            transport.close()
    transport.close()
    return len(messages) / (time.perf_counter() - start)


def floor_rate(port: int, messages: list[tuple[str, bytes, str]]) -> float:
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for to, raw, _ in messages:
            smtp.sendmail("briefing@example.org", [to], raw)
    return len(messages) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer-messages", type=int, default=2_000)
    parser.add_argument("--reconnect-messages", type=int, default=200)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "ids.txt")
        try:
            messages, personalise = peer_messages(server.port, args.peer_messages)
            floors = [floor_rate(server.port, messages)]
            runs = []
            for _ in range(args.runs):
                runs.append(whole_send(server.port, args.subscribers, server))
                floors.append(floor_rate(server.port, messages))
            # The transport against the floor, each run next to a floor run.
            pairs = [
                (
                    transport_rate(server.port, messages, reconnect=False),
                    floor_rate(server.port, messages),
                )
                for _ in range(3)
            ]
            persistent = statistics.median(rate for rate, _ in pairs)
            transport_ratio = statistics.median(rate / floor for rate, floor in pairs)
            per_message = statistics.median(
                transport_rate(server.port, messages[: args.reconnect_messages], reconnect=True)
                for _ in range(3)
            )
        finally:
            server.stop()

    received = {count for _, count, _ in runs}
    assert received == {args.subscribers}, f"the server received {received}"
    seconds = statistics.median(s for s, _, _ in runs)
    rate = args.subscribers / seconds
    phase = statistics.median(r for _, _, r in runs)
    floor = statistics.median(floors)
    # Each whole send against the floor measured just before and just after it.
    around = [(before + after) / 2 for before, after in itertools.pairwise(floors)]
    phase_ratio = statistics.median(r / f for (_, _, r), f in zip(runs, around, strict=True))
    whole_ratio = statistics.median(
        args.subscribers / s / f for (s, _, _), f in zip(runs, around, strict=True)
    )
    size = statistics.median(len(raw) for _, raw, _ in messages)
    rows = [
        (f"`newsdesk send`, {args.subscribers:,} subscribers (whole command)", rate, seconds),
        ("  its sending phase, first to last message at the server", phase, None),
        ("SMTP transport, one persistent connection (no ledger)", persistent, None),
        ("SMTP transport, a connection per message (no ledger)", per_message, None),
        ("smtplib.sendmail of pre-built bytes, one connection (floor)", floor, None),
    ]
    for label, per_second, wall in rows:
        extra = f"  ({wall:.1f} s)" if wall else ""
        print(f"{label:<66} {per_second:>8.0f} msg/s{extra}")
    print(
        "runs (whole, sending phase, floor around it): "
        + "; ".join(
            f"{args.subscribers / s:.0f}, {r:.0f}, {f:.0f}"
            for (s, _, r), f in zip(runs, around, strict=True)
        )
    )
    print(f"floors: {', '.join(f'{f:.0f}' for f in floors)}")
    print(
        f"ratio to the floor (median of runs): sending phase {phase_ratio:.2f}, "
        f"whole command {whole_ratio:.2f}, transport alone {transport_ratio:.2f}"
    )
    print(f"personalisation: {personalise * 1000:.2f} ms per message; message {size:,.0f} bytes")
    if args.no_doc:
        return

    table = "\n".join(
        f"| {label} | {per_second:,.0f} |" + (f" {wall:.1f} s |" if wall else " |")
        for label, per_second, wall in rows
    )
    met = "yes" if phase >= TARGET else "no"
    whole = "yes" if rate >= TARGET else "no"
    near = "yes" if phase_ratio >= FLOOR_SHARE else "no"
    each = "\n".join(
        f"| {n} | {args.subscribers / s:,.0f} | {r:,.0f} | {f:,.0f} | {r / f:.2f} |"
        for n, ((s, _, r), f) in enumerate(zip(runs, around, strict=True), 1)
    )
    body = f"""
{benchdoc.machine_line().split(" Code:")[0]} Code measured: {benchdoc.code_state()}.

```
python bench/send.py
```

- The demo issue (`newsdesk init`), {size:,.0f} bytes per message, to a local aiosmtpd
  server in its own process that accepts everything and counts Message-IDs; every
  message personalised (greeting, signed unsubscribe link in both parts and the
  List-Unsubscribe header). Medians of {args.runs} whole sends and 3 peer runs of
  {args.peer_messages:,} messages ({args.reconnect_messages:,} with a connection each). The
  machine has 2 cores: the server takes one. Its speed swings by ~1.5× from minute to
  minute, so each whole send is set against the floor measured just before and after it.

| what | messages/s | wall |
|---|--:|--:|
{table}

| run | whole command | sending phase | floor around it | phase / floor |
|--:|--:|--:|--:|--:|
{each}

| target | measured | met |
|---|---|---|
| ≥ {TARGET:.0f} msg/s, personalised unsubscribe links (sending phase) | {phase:,.0f} | {met} |
| the same, the whole command (start, compose, queue included) | {rate:,.0f} | {whole} |
| sending phase ≥ {FLOOR_SHARE:.2f} of the floor (median of the runs) | {phase_ratio:.2f} | {near} |

Reading:

- Personalising one message (greeting, token, the two lines of each part that hold
  them; the rest of the issue is encoded once) costs {personalise * 1000:.2f} ms,
  {personalise * rate:.0%} of the time per message of the whole send.
- Between two messages the send also commits the ledger (the previous row "sent" and
  the next one "sending" in one transaction, the price of never sending twice); with
  the rest of the command (start, compose, queueing {args.subscribers:,} rows) the whole
  send reaches {whole_ratio:.2f} of the floor, its sending phase {phase_ratio:.2f}.
- One persistent connection is {persistent / per_message:.0f}x as fast as a connection per
  message; the transport alone reaches {transport_ratio:.2f} of the floor (3 runs, each
  next to a floor run: it dot-stuffs and quotes addresses for less than smtplib).
"""
    benchdoc.write_section("Sending", body)
    print(f"wrote the Sending section of {benchdoc.DOC}")


if __name__ == "__main__":
    main()
