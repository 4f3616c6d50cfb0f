"""newsdesk.toml: complete validation, every problem at once, env overrides, secrets."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import write_config
from newsdesk.config import known_keys, load_config
from newsdesk.errors import ConfigError
from newsdesk.models import FetchSettings

EXAMPLE = Path(__file__).parents[1] / "config" / "newsdesk.example.toml"


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    return info.value.problems


def test_the_documented_example_is_valid() -> None:
    config = load_config(EXAMPLE, {})
    assert config.feeds[0].url == "https://example.org/feed.xml"
    assert [s.id for s in config.sections] == [
        "lead",
        "photo",
        "second",
        "tools",
        "news",
        "background",
    ]
    assert config.digest.picks == EXAMPLE.parent / "picks.toml"


def test_every_key_is_documented_in_the_example() -> None:
    text = EXAMPLE.read_text()
    # A key is documented when it is set, or shown commented out with its default.
    documented = set(re.findall(r"^[ \t]*#?[ \t]*(\w+)[ \t]*=", text, re.MULTILINE))
    missing = {key for key in known_keys() if key.rsplit(".", 1)[-1] not in documented}
    assert missing == set()


def test_an_empty_file_runs_on_defaults(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, ""), {})
    assert config.store_url == f"sqlite:///{tmp_path / 'newsdesk.db'}"
    assert config.mail.transport == "outbox"
    assert config.mail.outbox == tmp_path / "outbox"
    assert config.fetch.interval == timedelta(minutes=30)


def test_every_problem_is_reported_at_once_with_file_and_key(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
        [newsletter]
        timezone = "Mars/Olympus"
        [fetch]
        interval = "soon"
        concurrency = 0
        colour = "blue"
        [[section]]
        id = "news"
        [[feed]]
        url = "https://ok.example/feed"
        [[feed]]
        url = "ftp://files.example/feed"
        [[feed]]
        url = "https://ok.example/other"
        section = "sports"
        """,
    )
    assert problems(path) == [
        f"{path}: newsletter.timezone: unknown time zone 'Mars/Olympus' (use e.g. 'Europe/Berlin')",
        f"{path}: fetch.interval: expected a duration like '30s', '10m', '6h' or '7d', got 'soon'",
        f"{path}: fetch.concurrency: must be at least 1",
        f"{path}: fetch.colour: unknown key",
        f"{path}: section[1].title: missing (required)",
        f"{path}: feed[2].url: not an http(s) URL",
        f"{path}: feed[3].section: unknown section 'sports' (known: news)",
    ]


def test_toml_syntax_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[fetch\ninterval = 1\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}: invalid TOML:")
    assert "line 1" in problem


def test_a_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.toml") == [
        f"{tmp_path / 'nope.toml'}: not found (create one with `newsdesk init`)"
    ]


def test_duplicate_feeds_and_sections_are_refused(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
        [[section]]
        id = "a"
        title = "A"
        [[section]]
        id = "a"
        title = "B"
        [[feed]]
        url = "https://x.example/"
        [[feed]]
        url = "https://x.example/"
        """,
    )
    assert problems(path) == [
        f"{path}: section[2].id: duplicate section id 'a'",
        f"{path}: feed[2].url: same URL as feed[1]",
    ]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[fetch]\nconcurrency = 5\n")
    config = load_config(
        path,
        {
            "NEWSDESK_FETCH_CONCURRENCY": "7",
            "NEWSDESK_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
            "NEWSDESK_STORE_URL": "postgresql+psycopg://u@db/newsdesk",
        },
    )
    assert config.fetch.settings.concurrency == 7
    assert config.fetch.settings.allow_private_networks is True
    assert config.store_url == "postgresql+psycopg://u@db/newsdesk"


def test_a_bad_environment_value_is_named_by_its_variable(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    assert problems(path, {"NEWSDESK_FETCH_PER_HOST": "many"}) == [
        "NEWSDESK_FETCH_PER_HOST: expected a whole number, got 'many'"
    ]


def test_secrets_come_from_env_or_files_never_from_the_toml(tmp_path: Path) -> None:
    inline = write_config(tmp_path, '[mail.smtp]\npassword = "hunter2"\n')
    [problem] = problems(inline)
    assert problem.startswith(
        f"{inline}: mail.smtp.password: secrets are not read from newsdesk.toml"
    )

    (tmp_path / "smtp.secret").write_text("s3cret\n")
    from_file = write_config(tmp_path, '[mail.smtp]\npassword_file = "smtp.secret"\n', "b.toml")
    assert load_config(from_file, {}).mail.smtp.password == "s3cret"

    env_file = tmp_path / "env.secret"
    env_file.write_text("from-env-file")
    plain = write_config(tmp_path, "", "c.toml")
    config = load_config(plain, {"NEWSDESK_MAIL_SMTP_PASSWORD_FILE": str(env_file)})
    assert config.mail.smtp.password == "from-env-file"
    assert "from-env-file" not in repr(config)


def test_an_unreadable_secret_file_is_a_problem(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[mail.smtp]\npassword_file = "missing.secret"\n')
    [problem] = problems(path)
    assert problem.startswith(f"{path}: mail.smtp.password_file: cannot read secret file")


def test_local_file_feeds_need_an_explicit_opt_in(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[[feed]]\nurl = "file:samples/x.xml"\n')
    assert problems(path) == [
        f"{path}: feed[1].url: file: URLs need fetch.allow_local_files = true"
    ]


def test_relative_sqlite_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[store]\nurl = "sqlite:///data/nd.db"\n')
    assert load_config(path, {}).store_url == f"sqlite:///{tmp_path / 'data' / 'nd.db'}"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("fetch.max_size", '"huge"', "expected a size like '10MB' or '512KiB', got 'huge'"),
        ("fetch.allowed_networks", '["10.0.0.0/8", "intranet"]', "not an IP network"),
        ("newsletter.schedule", '"every monday"', "expected five cron fields"),
        ("newsletter.sender", '"not an address"', "not an email address"),
        ("newsletter.base_url", '"briefing.example.org"', "not an http(s) URL"),
        ("mail.transport", '"pigeon"', "expected one of outbox, smtp, got 'pigeon'"),
        ("fetch.min_interval", '"2d"', "must not be longer than max_interval"),
        ("fetch.interval", "inf", "must be at most 366d"),
        ("fetch.deadline", '"99999999999999w"', "must be at most 366d"),
        ("fetch.deadline", "0", "must be at least 1s"),
        ("fetch.connect_timeout", "-5", "must be at least 1s"),
        ("cluster.threshold", "1.5", "must be at most 1"),
        ("cluster.window", '"10m"', "must be at least 1h"),
        ("cluster.merge_threshold", "0.1", "must not be lower than threshold"),
    ],
)
def test_bad_values_say_what_was_expected(
    tmp_path: Path, key: str, value: str, reason: str
) -> None:
    table, name = key.rsplit(".", 1)
    path = write_config(tmp_path, f"[{table}]\n{name} = {value}\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}: {key}: {reason}")


def test_a_weight_must_be_a_finite_number(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[[feed]]\nurl = "https://a.example/"\nweight = nan\n')
    assert problems(path) == [f"{path}: feed[1].weight: expected a finite number, got nan"]


def test_an_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    path = tmp_path / "newsdesk.toml"
    path.write_text('[mail.smtp]\nhost = "mail.example.org"\n', encoding="utf-8")
    config = load_config(path, {"NEWSDESK_MAIL_SMTP_HOST": "", "NEWSDESK_FETCH_CONCURRENCY": ""})
    assert config.mail.smtp.host == "mail.example.org"
    assert config.fetch.settings.concurrency == FetchSettings().concurrency
