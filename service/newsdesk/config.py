"""Read and validate ``newsdesk.toml`` plus ``NEWSDESK_*`` environment overrides.

Validation is complete before anything starts: every problem is collected and reported
at once as ``config/newsdesk.toml: feed[3].url: not an http(s) URL`` (arrays are counted
from 1, as a person counts the ``[[feed]]`` blocks), then :class:`ConfigError` is raised.

Every scalar key can be overridden from the environment: ``[fetch] concurrency`` is
``NEWSDESK_FETCH_CONCURRENCY``, ``[mail.smtp] host`` is ``NEWSDESK_MAIL_SMTP_HOST``. Each
also has a ``*_FILE`` form that reads the value from a file (Docker/systemd secrets).
Secrets (the SMTP password) are accepted only from the environment or a file, never as
plain text in newsdesk.toml.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from newsdesk import __version__
from newsdesk.cluster import ClusterParams
from newsdesk.config_values import (
    read_address,
    read_bool,
    read_choice,
    read_cron,
    read_duration,
    read_feed_url,
    read_float,
    read_http_url,
    read_int,
    read_language,
    read_networks,
    read_nonempty,
    read_size,
    read_str,
    read_str_list,
    read_timezone,
)
from newsdesk.errors import ConfigError
from newsdesk.labels import label_keys
from newsdesk.models import FeedSpec, FetchSettings
from newsdesk.plan import AUTO_KINDS, SECTION_KINDS, SectionConfig
from newsdesk.semantic import available as semantic_available

T = TypeVar("T")

DEFAULT_CONFIG = Path("config/newsdesk.toml")


@dataclass(frozen=True)
class NewsletterConfig:
    name: str = "newsdesk digest"
    language: str = "en"
    timezone: str = "UTC"
    sender: str = "newsdesk <newsdesk@localhost>"
    base_url: str = "http://127.0.0.1:8080"
    schedule: str = "0 7 * * mon"
    lookback: timedelta = timedelta(days=7)
    """Candidate stories are those with an entry published this long before composing."""


@dataclass(frozen=True)
class DigestConfig:
    picks: Path = Path("picks.toml")
    """The curator's picks for the next issue."""
    templates: Path | None = None
    """A folder whose templates replace the shipped ones of the same name."""
    archive: Path = Path("archive")
    """Sent issues as HTML, with index.html and feed.atom."""
    issues: Path = Path("issues")
    """Where the picks file of each sent issue is kept (``issues/2026-12-07.toml``)."""
    labels: tuple[tuple[str, str], ...] = ()
    """``[labels]`` overrides of the template strings."""


@dataclass(frozen=True)
class FetchConfig:
    interval: timedelta = timedelta(minutes=30)
    min_interval: timedelta = timedelta(minutes=10)
    max_interval: timedelta = timedelta(days=1)
    pause_after: int = 10
    parse_workers: int = 0
    """Worker processes for parsing; 0 means one per CPU core."""
    allow_local_files: bool = False
    settings: FetchSettings = field(default_factory=FetchSettings)
    lease: timedelta = timedelta(minutes=10)
    """How long a claimed feed is reserved for the instance that claimed it."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: timedelta = timedelta(seconds=30)
    ca_file: Path | None = None
    """CA bundle to verify the server's certificate with, instead of the system's."""


@dataclass(frozen=True)
class MailConfig:
    transport: str = "outbox"
    outbox: Path = Path("outbox")
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    signing_keys_file: Path = Path("newsdesk.keys")
    """Keys that sign unsubscribe links and Message-IDs; created on first use."""
    signing_keys: str = field(default="", repr=False)
    """The keys themselves, from NEWSDESK_MAIL_SIGNING_KEYS (wins over the file)."""
    unsubscribe_mailto: str = ""
    """Address of the mailto: List-Unsubscribe; empty: the sender's address."""
    rate_limit: float = 0.0
    """Messages per second at most; 0: as fast as the server takes them."""
    retries: int = 3
    """Attempts after a temporary (4xx) failure, with exponential backoff."""
    retry_backoff: timedelta = timedelta(seconds=2)
    max_failures: int = 10
    """Failures in a row after which a send pauses (the server is likely refusing us)."""
    unknown: str = "resend"
    """Messages whose fate a crash hid: "resend" (same Message-ID) or "hold"."""
    greeting: bool = False
    """Start each message with the greeting label and the subscriber's name."""


@dataclass(frozen=True)
class SubscribersConfig:
    file: Path | None = None
    """A CSV of subscribers synced on each send (unsubscribes and bounces win)."""


@dataclass(frozen=True)
class ClusterConfig:
    params: ClusterParams = field(default_factory=ClusterParams)
    half_life: timedelta = timedelta(hours=72)
    """Ranking: a story's recency bonus halves every ``half_life`` since its last entry."""


@dataclass(frozen=True)
class DaemonConfig:
    tick: timedelta = timedelta(minutes=1)
    """How often ``newsdesk run`` looks for due feeds (each feed keeps its own interval)."""
    send: bool = True
    """Compose and send each issue at ``newsletter.schedule``; false: only fetch."""
    send_deadline: timedelta = timedelta(hours=6)
    """A send the daemon missed (stopped, busy) is made up this long after its time, no later."""
    maintenance: str = "30 4 * * *"
    """When the retention and the maintenance run (cron, in the newsletter's time zone)."""
    stop_timeout: timedelta = timedelta(seconds=30)
    """On SIGTERM, how long the feed or message in flight may take before it is abandoned."""
    health_to: str = ""
    """Address that gets a feed-health mail after maintenance when feeds keep failing."""
    health_after: timedelta = timedelta(days=1)
    """A feed counts as failing in health reports once it has failed this long."""


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True)
class Config:
    path: Path
    newsletter: NewsletterConfig = field(default_factory=NewsletterConfig)
    store_url: str = "sqlite:///newsdesk.db"
    fetch: FetchConfig = field(default_factory=FetchConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    sections: tuple[SectionConfig, ...] = ()
    """As declared; :attr:`digest_sections` falls back to a lead and a news section."""
    feeds: tuple[FeedSpec, ...] = ()
    digest: DigestConfig = field(default_factory=DigestConfig)
    subscribers: SubscribersConfig = field(default_factory=SubscribersConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    log: LogConfig = field(default_factory=LogConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    store_pool_size: int = 5
    """PostgreSQL connections each process keeps (see the sizing rule in the README)."""
    retention: timedelta = timedelta(days=180)
    """Entries older than this are pruned (0: never); stories of sent issues are kept."""

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config (store, outbox, samples) are relative to this."""
        return self.path.parent

    @property
    def digest_sections(self) -> tuple[SectionConfig, ...]:
        """The sections of an issue: as declared, else one lead story and the top news."""
        return self.sections or DEFAULT_SECTIONS


DEFAULT_SECTIONS = (
    SectionConfig(id="lead", title="Top story", kind="featured", auto=1),
    SectionConfig(id="news", title="News", kind="list", auto=10),
)


def config_path(cli_value: str | None, env: Mapping[str, str]) -> Path:
    """``--config`` wins, then ``NEWSDESK_CONFIG``, then ``config/newsdesk.toml``."""
    return Path(cli_value or env.get("NEWSDESK_CONFIG") or DEFAULT_CONFIG)


def known_keys() -> set[str]:
    """Every key newsdesk.toml may hold, as ``fetch.interval`` or ``feed[1].url``."""
    validator = Validator(Path("newsdesk.toml"), {})
    # The empty blocks lack their required keys; only the keys asked for matter here.
    with contextlib.suppress(ConfigError):
        validator.config({"section": [{}], "feed": [{}]})
    return validator.asked


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from ``env`` and validate; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    try:
        # utf-8-sig: editors on Windows save a byte-order mark that TOML does not allow.
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: not found (create one with `newsdesk init`)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    return Validator(path, env).config(raw)


class Validator:
    """Walks the raw TOML once, collecting every problem instead of stopping at the first."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env
        self.problems: list[str] = []
        self.asked: set[str] = set()
        """Every key the validator looked for: the documented surface of the config."""

    def problem(self, where: str, reason: str) -> None:
        # Environment overrides are named on their own: the file is not where they went wrong.
        source = where if where.startswith("NEWSDESK_") else f"{self.path}: {where}"
        self.problems.append(f"{source}: {reason}")

    def config(self, raw: dict[str, Any]) -> Config:
        root = Table(self, raw, "", env_prefix="NEWSDESK")
        newsletter = self.newsletter(root.table("newsletter"))
        store = root.table("store")
        store_url = store.get("url", read_nonempty, "sqlite:///newsdesk.db")
        retention = store.get(
            "retention", read_duration(timedelta(0), timedelta(days=3650)), Config.retention
        )
        pool_size = store.get("pool_size", read_int(1, 100), Config.store_pool_size)
        if timedelta(0) < retention < timedelta(days=1):
            self.problem(store.where("retention"), "must be 0 (keep everything) or at least 1d")
        store.done()
        fetch = self.fetch(root.table("fetch"))
        mail = self.mail(root.table("mail"))
        sections = tuple(self.section(t) for t in root.array("section"))
        feeds = tuple(self.feed(t, fetch) for t in root.array("feed"))
        cluster = self.cluster(root.table("cluster"))
        digest = self.digest(root.table("digest"), root.table("labels"))
        subscribers_table = root.table("subscribers")
        subscribers_file = subscribers_table.get("file", read_str, "")
        subscribers_table.done()
        subscribers = SubscribersConfig(
            file=self.path.parent / subscribers_file if subscribers_file else None
        )
        log = root.table("log")
        log_config = LogConfig(
            level=log.get("level", read_choice("debug", "info", "warning", "error"), "info"),
            format=log.get("format", read_choice("text", "json"), "text"),
        )
        log.done()
        daemon = self.daemon(root.table("daemon"))
        root.done()
        self.cross_check(sections, feeds)
        if self.problems:
            raise ConfigError(self.problems)
        return Config(
            path=self.path,
            newsletter=newsletter,
            store_url=_resolve_sqlite_url(store_url, self.path.parent),
            fetch=fetch,
            mail=mail,
            sections=sections,
            feeds=feeds,
            digest=digest,
            subscribers=subscribers,
            cluster=cluster,
            log=log_config,
            daemon=daemon,
            retention=retention,
            store_pool_size=pool_size,
        )

    def daemon(self, t: Table) -> DaemonConfig:
        d = DaemonConfig()
        health_to = t.get("health_to", read_str, d.health_to)
        if health_to:
            try:
                read_address(health_to)
            except ValueError as exc:
                self.problem(t.where("health_to"), str(exc))
        result = DaemonConfig(
            tick=t.get("tick", read_duration(timedelta(seconds=1), timedelta(hours=1)), d.tick),
            send=t.get("send", read_bool, d.send),
            send_deadline=t.get(
                "send_deadline",
                read_duration(timedelta(minutes=1), timedelta(days=7)),
                d.send_deadline,
            ),
            maintenance=t.get("maintenance", read_cron, d.maintenance),
            stop_timeout=t.get(
                "stop_timeout",
                read_duration(timedelta(seconds=1), timedelta(minutes=10)),
                d.stop_timeout,
            ),
            health_to=health_to,
            health_after=t.get(
                "health_after",
                read_duration(timedelta(minutes=1), timedelta(days=60)),
                d.health_after,
            ),
        )
        t.done()
        return result

    def newsletter(self, t: Table) -> NewsletterConfig:
        d = NewsletterConfig()
        result = NewsletterConfig(
            name=t.get("name", read_nonempty, d.name),
            language=t.get("language", read_language, d.language),
            timezone=t.get("timezone", read_timezone, d.timezone),
            sender=t.get("sender", read_address, d.sender),
            base_url=t.get("base_url", read_http_url, d.base_url),
            schedule=t.get("schedule", read_cron, d.schedule),
            lookback=t.get(
                "lookback", read_duration(timedelta(hours=1), timedelta(days=366)), d.lookback
            ),
        )
        t.done()
        return result

    def fetch(self, t: Table) -> FetchConfig:
        d, s = FetchConfig(), FetchSettings()
        minute, week = timedelta(minutes=1), timedelta(days=7)
        timeout = read_duration(timedelta(seconds=1), timedelta(hours=1))
        interval = t.get("interval", read_duration(minute, week), d.interval)
        min_interval = t.get("min_interval", read_duration(minute, week), d.min_interval)
        max_interval = t.get(
            "max_interval", read_duration(minute, timedelta(days=30)), d.max_interval
        )
        if min_interval > max_interval:
            self.problem(t.where("min_interval"), "must not be longer than max_interval")
        settings = FetchSettings(
            user_agent=t.get("user_agent", read_nonempty, f"newsdesk/{__version__} (feed digest)"),
            connect_timeout=_seconds(t.get("connect_timeout", timeout, _td(s.connect_timeout))),
            read_timeout=_seconds(t.get("read_timeout", timeout, _td(s.read_timeout))),
            deadline=_seconds(t.get("deadline", timeout, _td(s.deadline))),
            max_bytes=t.get("max_size", read_size(1024, 1024**3), s.max_bytes),
            max_redirects=t.get("max_redirects", read_int(0, 20), s.max_redirects),
            concurrency=t.get("concurrency", read_int(1, 1000), s.concurrency),
            per_host=t.get("per_host", read_int(1, 100), s.per_host),
            allow_private_networks=t.get("allow_private_networks", read_bool, False),
            allowed_networks=t.get("allowed_networks", read_networks, ()),
        )
        result = FetchConfig(
            interval=interval,
            min_interval=min_interval,
            max_interval=max_interval,
            pause_after=t.get("pause_after", read_int(1, 1000), d.pause_after),
            parse_workers=t.get("parse_workers", read_int(0, 64), d.parse_workers),
            allow_local_files=t.get("allow_local_files", read_bool, False),
            settings=settings,
            lease=t.get("lease", read_duration(timedelta(seconds=10), timedelta(hours=6)), d.lease),
        )
        if result.lease.total_seconds() < 2 * settings.deadline:
            self.problem(t.where("lease"), "must be at least twice fetch.deadline")
        t.done()
        return result

    def cluster(self, t: Table) -> ClusterConfig:
        mode = t.get("semantic", read_choice("off", "e5"), "off")
        if mode == "e5" and (problem := semantic_available()):
            self.problem(t.where("semantic"), problem)
        d = ClusterParams.defaults(semantic=mode == "e5")
        share = read_float(0.0, 1.0)
        params = ClusterParams(
            semantic=d.semantic,
            window=t.get("window", read_duration(timedelta(hours=1), timedelta(days=30)), d.window),
            threshold=t.get("threshold", share, d.threshold),
            cross_threshold=t.get("cross_threshold", share, d.cross_threshold),
            merge_threshold=t.get("merge_threshold", share, d.merge_threshold),
            story_merge_threshold=t.get("story_merge_threshold", share, d.story_merge_threshold),
        )
        if params.merge_threshold < params.threshold:
            self.problem(t.where("merge_threshold"), "must not be lower than threshold")
        half_life = t.get(
            "half_life",
            read_duration(timedelta(hours=1), timedelta(days=365)),
            ClusterConfig().half_life,
        )
        t.done()
        return ClusterConfig(params=params, half_life=half_life)

    def digest(self, t: Table, labels: Table) -> DigestConfig:
        base = self.path.parent
        templates = t.get("templates", read_str, "")
        if templates and not (base / templates).is_dir():
            self.problem(t.where("templates"), f"{base / templates}: not a folder")
        result = DigestConfig(
            picks=base / t.get("picks", read_nonempty, "picks.toml"),
            templates=base / templates if templates else None,
            archive=base / t.get("archive", read_nonempty, "archive"),
            issues=base / t.get("issues", read_nonempty, "issues"),
            labels=tuple((key, labels.get(key, read_nonempty, "")) for key in sorted(label_keys())),
        )
        t.done()
        labels.done()
        return replace(result, labels=tuple((k, v) for k, v in result.labels if v))

    def mail(self, t: Table) -> MailConfig:
        transport = t.get("transport", read_choice("outbox", "smtp"), "outbox")
        outbox = Path(t.get("outbox", read_nonempty, "outbox"))
        st = t.table("smtp")
        d = SmtpConfig()
        if "password" in st.raw:
            self.problem(
                st.where("password"),
                "secrets are not read from newsdesk.toml: set NEWSDESK_MAIL_SMTP_PASSWORD "
                "or point mail.smtp.password_file at a file",
            )
            st.used.add("password")
        password_file = st.get("password_file", read_str, "")
        password = st.env_value("password") or ""
        if not password and password_file:
            password = self.read_secret(st.where("password_file"), Path(password_file))
        smtp = SmtpConfig(
            host=st.get("host", read_nonempty, d.host),
            port=st.get("port", read_int(1, 65535), d.port),
            security=st.get("security", read_choice("starttls", "ssl", "none"), d.security),
            user=st.get("user", read_str, d.user),
            password=password,
            timeout=st.get("timeout", read_duration(timedelta(seconds=1)), d.timeout),
            ca_file=self.path.parent / ca if (ca := st.get("ca_file", read_str, "")) else None,
        )
        st.done()
        if "signing_keys" in t.raw:
            self.problem(
                t.where("signing_keys"),
                "secrets are not read from newsdesk.toml: set NEWSDESK_MAIL_SIGNING_KEYS "
                "or point mail.signing_keys_file at a file",
            )
            t.used.add("signing_keys")
        md = MailConfig()
        result = MailConfig(
            transport=transport,
            outbox=self.path.parent / outbox,
            smtp=smtp,
            signing_keys_file=self.path.parent
            / t.get("signing_keys_file", read_nonempty, str(md.signing_keys_file)),
            signing_keys=t.env_value("signing_keys") or "",
            unsubscribe_mailto=t.get("unsubscribe_mailto", read_str, ""),
            rate_limit=t.get("rate_limit", read_float(0.0, 10_000.0), md.rate_limit),
            retries=t.get("retries", read_int(0, 20), md.retries),
            retry_backoff=t.get(
                "retry_backoff",
                read_duration(timedelta(0), timedelta(minutes=10)),
                md.retry_backoff,
            ),
            max_failures=t.get("max_failures", read_int(1, 100_000), md.max_failures),
            unknown=t.get("unknown", read_choice("resend", "hold"), md.unknown),
            greeting=t.get("greeting", read_bool, md.greeting),
        )
        t.done()
        return result

    def section(self, t: Table) -> SectionConfig:
        result = SectionConfig(
            id=t.get("id", read_nonempty, None, required=True) or "",
            title=t.get("title", read_nonempty, None, required=True) or "",
            kind=t.get("kind", read_choice(*SECTION_KINDS), "list"),
            auto=t.get("auto", read_int(0, 100), 0),
            min_items=t.get("min_items", read_int(0, 100), 0),
        )
        if result.auto and result.kind not in AUTO_KINDS:
            self.problem(
                t.where("auto"),
                f"a {result.kind} section is filled by picks only; auto needs kind "
                + " or ".join(repr(k) for k in AUTO_KINDS),
            )
        t.done()
        return result

    def feed(self, t: Table, fetch: FetchConfig) -> FeedSpec:
        url = t.get("url", read_feed_url, None, required=True) or ""
        if url.lower().startswith("file:") and not fetch.allow_local_files:
            self.problem(t.where("url"), "file: URLs need fetch.allow_local_files = true")
        result = FeedSpec(
            url=url,
            name=t.get("name", read_nonempty, None),
            section=t.get("section", read_nonempty, None),
            tags=t.get("tags", read_str_list, ()),
            weight=t.get("weight", read_float(0.0, 100.0), 1.0),
            priority=t.get("priority", read_int(-1000, 1000), 0),
        )
        t.done()
        return result

    def cross_check(self, sections: tuple[SectionConfig, ...], feeds: tuple[FeedSpec, ...]) -> None:
        seen_sections: set[str] = set()
        for i, section in enumerate(sections, 1):
            if section.id in seen_sections:
                self.problem(f"section[{i}].id", f"duplicate section id {section.id!r}")
            seen_sections.add(section.id)
        seen_urls: dict[str, int] = {}
        for i, feed in enumerate(feeds, 1):
            if not feed.url:
                continue
            if feed.url in seen_urls:
                self.problem(f"feed[{i}].url", f"same URL as feed[{seen_urls[feed.url]}]")
            seen_urls.setdefault(feed.url, i)
            if feed.section and sections and feed.section not in seen_sections:
                known = ", ".join(s.id for s in sections)
                self.problem(
                    f"feed[{i}].section", f"unknown section {feed.section!r} (known: {known})"
                )

    def read_secret(self, where: str, path: Path) -> str:
        path = path if path.is_absolute() else self.path.parent / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.problem(where, f"cannot read secret file {path}: {exc.strerror}")
            return ""


class Table:
    """One TOML table being validated: typed gets, env overrides, unknown-key detection."""

    def __init__(self, v: Validator, raw: Any, where: str, env_prefix: str | None = None) -> None:
        self.v = v
        self.where_prefix = where
        # Arrays of tables (feed[3]) have no env overrides: there is no stable name for them.
        self.env_prefix = env_prefix
        self.used: set[str] = set()
        if isinstance(raw, dict):
            self.raw: dict[str, Any] = raw
        else:
            self.raw = {}
            v.problem(where, f"expected a table, got {type(raw).__name__}")

    def where(self, key: str) -> str:
        return f"{self.where_prefix}.{key}" if self.where_prefix else key

    def env_name(self, key: str) -> str | None:
        return f"{self.env_prefix}_{key.upper()}" if self.env_prefix else None

    def env_value(self, key: str) -> str | None:
        """``NEWSDESK_…`` wins over the file; ``NEWSDESK_…_FILE`` reads the value from a file."""
        name = self.env_name(key)
        if name is None:
            return None
        # An empty variable counts as unset: compose's ``${VAR:-}`` and systemd's
        # ``VAR=`` mean "not given", not "the empty string".
        if self.v.env.get(name):
            return self.v.env[name]
        if self.v.env.get(f"{name}_FILE"):
            return self.v.read_secret(f"{name}_FILE", Path(self.v.env[f"{name}_FILE"]))
        return None

    def get(
        self,
        key: str,
        reader: Callable[[Any], T],
        default: T,
        *,
        required: bool = False,
    ) -> T:
        self.used.add(key)
        self.v.asked.add(self.where(key))
        from_env = self.env_value(key)
        where = self.where(key)
        if from_env is not None:
            value: Any = from_env
            where = f"{self.env_name(key)}"
        elif key in self.raw:
            value = self.raw[key]
        elif required:
            self.v.problem(where, "missing (required)")
            return default
        else:
            return default
        try:
            return reader(value)
        except ValueError as exc:
            self.v.problem(where, str(exc))
            return default

    def table(self, key: str) -> Table:
        self.used.add(key)
        prefix = self.env_name(key)
        return Table(self.v, self.raw.get(key, {}), self.where(key), env_prefix=prefix)

    def array(self, key: str) -> list[Table]:
        self.used.add(key)
        raw = self.raw.get(key, [])
        if not isinstance(raw, list):
            self.v.problem(self.where(key), f"expected [[{key}]] blocks")
            return []
        return [Table(self.v, item, f"{key}[{i}]") for i, item in enumerate(raw, 1)]

    def done(self) -> None:
        for key in self.raw:
            if key not in self.used:
                self.v.problem(self.where(key), "unknown key")


def _resolve_sqlite_url(url: str, base: Path) -> str:
    """Make ``sqlite:///relative.db`` relative to the config file, not the working dir."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    target = Path(url[len(prefix) :])
    if target.is_absolute() or url.startswith("sqlite:////"):
        return url
    return prefix + str((base / target).resolve())


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def _td(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
