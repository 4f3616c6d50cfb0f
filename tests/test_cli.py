"""The command line contract: exit codes, one-line errors, and the README quick start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import newsdesk.store
from conftest import write_config
from feedserver import FeedServer, Reply
from newsdesk.cli import cli


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child process, as a user or script runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDESK_")}
    return subprocess.run(
        [sys.executable, "-m", "newsdesk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_quick_start_runs_offline_on_the_embedded_defaults(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    init = run("init", str(demo))
    assert init.returncode == 0, init.stderr
    once = run("--config", str(demo / "newsdesk.toml"), "run", "--once")
    assert once.returncode == 0, once.stderr
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert once.stdout.strip() in readme, "the README shows another output of the quick start"
    fetch_line, maintenance_line = once.stdout.strip().splitlines()
    fetched, clustered = fetch_line.split("; clustered ")
    assert fetched == "fetch: 3 feeds: 3 ok, 0 not modified, 0 failed; 8 new entries"
    assert clustered.startswith("8 entries: ")
    assert maintenance_line.startswith("maintenance: ")  # the demo sends only by hand
    assert (demo / "newsdesk.db").exists()
    preview = run("--config", str(demo / "newsdesk.toml"), "preview")
    assert preview.returncode == 0, preview.stderr
    assert preview.stderr == ""  # the demo issue is complete: no warnings
    subject, files, *_ = preview.stdout.splitlines()
    assert subject in readme
    assert files.endswith(" KB HTML, 8 items in 5 sections)")
    assert (demo / "preview" / "issue.html").exists()

    # The Musk bid is in all three sample feeds, one of them German: one story.
    stories = run(
        "--config", str(demo / "newsdesk.toml"), "stories", "--since", "2020-01-01", "--json"
    )
    assert stories.returncode == 0, stories.stderr
    bid = [s for s in json.loads(stories.stdout) if "97" in s["title"]]
    assert len(bid) == 1
    assert bid[0]["outlets"] == 3
    assert {e["lang"] for e in bid[0]["entries"]} == {"en", "de"}

    status = run("--config", str(demo / "newsdesk.toml"), "status", "--json")
    report = json.loads(status.stdout)
    assert report["feeds"]["total"] == 3
    assert report["store"]["entries"] == 8
    assert report["stories"] == {"total": len(json.loads(stories.stdout)), "pending_entries": 0}


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert run("init", str(tmp_path / "d")).returncode == 0
    again = run("init", str(tmp_path / "d"))
    assert again.returncode == 1
    assert "already exists (use --force to overwrite)" in again.stderr


def test_config_errors_are_one_line_each_and_exit_1_without_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[fetch]\ninterval = "soon"\n[[feed]]\nurl = "gopher://x"\n')
    result = run("--config", str(path), "check")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {path}: fetch.interval: expected a duration like '30s', '10m', '6h' or '7d', "
        "got 'soon'",
        f"Error: {path}: feed[1].url: not an http(s) URL",
    ]
    assert "Traceback" not in result.stderr


def test_config_path_comes_from_the_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    result = CliRunner().invoke(cli, ["check"], env={"NEWSDESK_CONFIG": str(path)})
    assert result.exit_code == 0
    assert result.output == (
        f"{path}: ok (0 feeds, 0 sections)\n"
        f"{tmp_path / 'picks.toml'}: ok (0 picks)\n"
        "templates: ok (the next issue renders)\n"
    )


def test_usage_errors_exit_2() -> None:
    result = CliRunner().invoke(cli, ["fetch", "--no-such-flag"])
    assert result.exit_code == 2


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "[fetch]\nallow_private_networks = true\npause_after = 2\n")


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_feeds_add_fetch_list_and_revive(config: Path) -> None:
    with FeedServer() as server:
        server.route("/broken.xml", Reply(status=404))
        url = server.url("/broken.xml")
        assert invoke(config, "feeds", "add", url) == (0, f"added {url}\n")
        for _ in range(2):
            code, out = invoke(config, "fetch", "--all")
        assert code == 0
        assert "1 feeds: 0 ok, 0 not modified, 1 failed; 0 new entries" in out
        assert f"failed: {url}: HTTP 404 Not Found" in out

        code, out = invoke(config, "feeds", "list")
        assert out.splitlines()[1].split()[:2] == ["paused", "2"]
        assert "HTTP 404 Not Found" in out

        code, out = invoke(config, "status")
        assert "1 paused" in out and "2 failures" in out and url in out

        assert invoke(config, "feeds", "revive", url) == (0, f"revived {url}\n")
        code, out = invoke(config, "feeds", "list", "--json")
        [feed] = json.loads(out)
        assert (feed["status"], feed["error_count"]) == ("active", 0)


def test_feeds_add_refuses_non_http_urls(config: Path) -> None:
    code, out = invoke(config, "feeds", "add", "javascript:alert(1)")
    assert code == 1
    assert out == "Error: javascript:alert(1): not an http(s) URL\n"


def test_removing_an_unknown_feed_names_it(config: Path) -> None:
    code, out = invoke(config, "feeds", "remove", "https://nope.example/")
    assert code == 1
    assert out == "Error: https://nope.example/: no such feed (see `newsdesk feeds list`)\n"


def test_opml_round_trip(config: Path, tmp_path: Path) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text(
        """<?xml version="1.0"?><opml version="2.0"><head/><body>
        <outline text="AI"><outline text="One" xmlUrl="https://one.example/feed"/>
        <outline text="Bad" xmlUrl="file:///etc/passwd"/></outline>
        <outline text="Two" xmlUrl="https://two.example/rss"/></body></opml>"""
    )
    code, out = invoke(config, "feeds", "import", str(opml))
    assert code == 0
    assert out.splitlines()[-1] == "2 feeds added, 0 already known, 1 skipped"
    code, out = invoke(config, "feeds", "export")
    assert 'xmlUrl="https://one.example/feed"' in out and 'xmlUrl="https://two.example/rss"' in out
    code, out = invoke(config, "feeds", "list", "--json")
    assert {f["url"]: f["tags"] for f in json.loads(out)}["https://one.example/feed"] == ["AI"]


def test_db_upgrade_reports_what_it_did(config: Path) -> None:
    versions = Path(newsdesk.store.__file__).parent / "migrations" / "versions"
    count = len(list(versions.glob("0*.py")))
    assert invoke(config, "db", "upgrade") == (0, f"applied {count} migrations\n")
    assert invoke(config, "db", "upgrade") == (0, "schema is up to date\n")


@pytest.mark.parametrize(
    ("store_url", "message"),
    [
        ("postgresql+psycopg://u@h:notaport/x", "Error: store.url <invalid URL>: invalid literal"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/x", "Error: cannot migrate the store at"),
        ("sqlite:////dev/null/x.db", "Error: store.url sqlite:////dev/null/x.db:"),
    ],
    ids=["bad port", "nothing listening", "not a directory"],
)
def test_store_problems_are_one_line_errors(tmp_path: Path, store_url: str, message: str) -> None:
    path = write_config(tmp_path, f'[store]\nurl = "{store_url}"\n')
    result = run("--config", str(path), "status")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(message)


def test_a_byte_order_mark_in_the_config_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "newsdesk.toml"
    path.write_bytes(b'\xef\xbb\xbf[fetch]\ninterval = "5m"\n')
    assert invoke(path, "check")[0] == 0


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '<?xml version="1.0"?><opml version="2.0"><head/><body>'
            + '<outline text="a">' * 1500
            + "</outline>" * 1500
            + "</body></opml>",
            "outlines nested too deep",
        ),
        ('<?xml version="1.0" encoding="x-foo"?><opml/>', "not an OPML file: unknown encoding"),
        ("<html><body>not opml</body></html>", "not an OPML file: no <opml><body>"),
    ],
    ids=["deep", "unknown encoding", "html"],
)
def test_bad_opml_files_are_one_line_errors(
    config: Path, tmp_path: Path, document: str, message: str
) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text(document)
    code, out = invoke(config, "feeds", "import", str(opml))
    assert code == 1
    assert out == f"Error: {opml}: {message}" + out.split(message, 1)[1]
    assert len(out.splitlines()) == 1


def test_a_password_in_a_feed_url_stays_out_of_every_output(config: Path) -> None:
    with FeedServer() as server:
        server.route("/private.xml", Reply(status=401))
        url = server.url("/private.xml").replace("http://", "http://reader:s3cret@")
        outputs = [invoke(config, "feeds", "add", url)[1]]
        outputs += [invoke(config, *args)[1] for args in (["fetch", "--all"], ["status"])]
        outputs += [invoke(config, "status", "--json")[1], invoke(config, "feeds", "list")[1]]
        outputs += [invoke(config, "-v", "feeds", "list", "--json")[1]]
    assert server.requests[0].headers["authorization"].startswith("Basic ")
    assert all("s3cret" not in out for out in outputs)
    assert "reader:***@127.0.0.1" in outputs[1]
