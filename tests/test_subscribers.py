"""Subscribers: who gets the issue, and why an unsubscribe is never undone by a file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import NOW, write_config
from newsdesk.errors import UsageError
from newsdesk.store import Store, open_store
from newsdesk.store.subscribers import ImportResult, read_csv
from test_cli import run

LATER = NOW + timedelta(days=1)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# -- one address -------------------------------------------------------------------------


def test_add_keeps_the_address_with_its_domain_lower_cased(store: Store) -> None:
    added = store.subscribers.add(
        " Ann.Smith@Example.ORG ", name="Ann Smith", language="de", now=NOW
    )
    assert (added.email, added.name, added.language) == ("Ann.Smith@example.org", "Ann Smith", "de")
    assert (added.status, added.source, added.created_at) == ("active", "cli", NOW)
    assert store.subscribers.get("ann.smith@example.org") == added
    assert store.subscribers.get_by_id(added.id) == added
    assert store.subscribers.get_by_id(added.id + 1) is None


def test_an_active_address_cannot_be_added_twice_in_any_case(store: Store) -> None:
    store.subscribers.add("ann@example.org", now=NOW)
    with pytest.raises(UsageError, match=r"^ann@example.org: already subscribed$"):
        store.subscribers.add("ANN@example.org", now=NOW)
    assert len(store.subscribers.listed()) == 1


@pytest.mark.parametrize(
    ("email", "name", "language", "reason"),
    [
        ("bob@@example.org", None, None, "'bob@@example.org': not an email address"),
        ("bob", None, None, "'bob': not an email address"),
        ("bob@example", None, None, "not an email address"),
        ("bob@example.org\r\nBcc: x@y.org", None, None, "not an email address"),
        ("bob@example.org", "Bob\r\nBcc: all@example.org", None, "no line breaks"),
        ("bob@example.org", "Bob\x07", None, "control characters"),
        ("bob@example.org", "B" * 201, None, "longer than 200 characters"),
        ("bob@example.org", None, "German", "expected a language code"),
    ],
)
def test_add_refuses_what_would_break_a_to_header(
    store: Store, email: str, name: str | None, language: str | None, reason: str
) -> None:
    with pytest.raises(UsageError, match=reason.replace("(", r"\(")):
        store.subscribers.add(email, name=name, language=language, now=NOW)
    assert store.subscribers.listed() == []


def test_remove_keeps_the_row_and_only_resubscribe_brings_it_back(store: Store) -> None:
    ann = store.subscribers.add("ann@example.org", name="Ann", now=NOW)
    removed = store.subscribers.remove("Ann@Example.org", now=LATER)
    assert (removed.id, removed.status, removed.updated_at) == (ann.id, "unsubscribed", LATER)
    assert store.subscribers.active() == []
    with pytest.raises(UsageError, match=r"ann@example.org: unsubscribed; .*--resubscribe"):
        store.subscribers.add("ann@example.org", now=LATER)
    back = store.subscribers.add("ann@example.org", language="en", resubscribe=True, now=LATER)
    assert (back.id, back.status, back.name, back.language) == (ann.id, "active", "Ann", "en")


def test_a_bounced_address_names_its_status_when_added_again(store: Store) -> None:
    bob = store.subscribers.add("bob@example.org", now=NOW)
    assert store.subscribers.mark_bounced(bob.id, "550 5.1.1 no such user", now=LATER)
    with pytest.raises(UsageError, match=r"bob@example\.org: bounced"):
        store.subscribers.add("bob@example.org", now=LATER)


def test_removing_an_unknown_address_is_an_error(store: Store) -> None:
    with pytest.raises(UsageError, match=r"^nobody@example.org: not a subscriber$"):
        store.subscribers.remove("nobody@example.org", now=NOW)


def test_unsubscribe_says_whether_it_changed_anything(store: Store) -> None:
    ann = store.subscribers.add("ann@example.org", now=NOW)
    assert store.subscribers.unsubscribe(ann.id, now=LATER) is True
    assert store.subscribers.unsubscribe(ann.id, now=LATER) is False  # a replay
    assert store.subscribers.unsubscribe(ann.id + 100, now=LATER) is False
    after = store.subscribers.get_by_id(ann.id)
    assert after is not None and (after.status, after.updated_at) == ("unsubscribed", LATER)


def test_a_bounce_never_overrides_an_unsubscribe_but_an_unsubscribe_overrides_a_bounce(
    store: Store,
) -> None:
    ann = store.subscribers.add("ann@example.org", now=NOW)
    bob = store.subscribers.add("bob@example.org", now=NOW)
    store.subscribers.unsubscribe(ann.id, now=NOW)
    assert store.subscribers.mark_bounced(ann.id, "550 gone", now=LATER) is False
    assert store.subscribers.mark_bounced(bob.id, "550 gone", now=LATER) is True
    assert store.subscribers.mark_bounced(bob.id, "550 gone", now=LATER) is False
    assert store.subscribers.unsubscribe(bob.id, now=LATER) is True
    assert store.subscribers.count_by_status() == {"active": 0, "unsubscribed": 2, "bounced": 0}


def test_active_subscribers_come_in_subscription_order_and_listings_by_address(
    store: Store,
) -> None:
    for email in ("carl@example.org", "Ann@example.org", "bob@example.org", "dora@example.org"):
        store.subscribers.add(email, now=NOW)
    store.subscribers.remove("dora@example.org", now=NOW)
    assert [s.email for s in store.subscribers.active()] == [
        "carl@example.org",
        "Ann@example.org",
        "bob@example.org",
    ]
    assert [s.email for s in store.subscribers.listed()] == [
        "Ann@example.org",
        "bob@example.org",
        "carl@example.org",
        "dora@example.org",
    ]
    assert [s.email for s in store.subscribers.listed("unsubscribed")] == ["dora@example.org"]
    assert store.subscribers.count_by_status() == {"active": 3, "unsubscribed": 1, "bounced": 0}
    with pytest.raises(UsageError, match="status 'gone'"):
        store.subscribers.listed("gone")


# -- files -------------------------------------------------------------------------------


def test_an_import_names_each_bad_row_and_imports_the_rest(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text(
        "email,name,language\n"
        "ann@example.org,Ann,de\n"  # row 2
        "bob@@x,Bob,\n"  # row 3
        "\n"  # row 4: blank, ignored
        "carl@example.org,Carl,klingon\n"  # row 5
        ",Nobody,\n"  # row 6
        "ANN@example.org,Ann again,\n"  # row 7
        "dora@example.org,,\n",  # row 8
        encoding="utf-8",
    )
    result = store.subscribers.import_rows(
        read_csv(path), source="import", now=NOW, where="subscribers.csv"
    )
    assert result.problems == [
        "subscribers.csv: row 3: 'bob@@x': not an email address",
        "subscribers.csv: row 5: language: expected a language code like 'de' or 'en', "
        "got 'klingon'",
        "subscribers.csv: row 6: no email address",
        "subscribers.csv: row 7: ANN@example.org: listed again (first in row 2); "
        "the first one counts",
    ]
    assert (result.added, result.updated, result.unchanged, result.skipped) == (2, 0, 0, 0)
    ann = store.subscribers.get("ann@example.org")
    assert ann is not None and (ann.name, ann.language, ann.source) == ("Ann", "de", "import")
    assert [s.email for s in store.subscribers.active()] == ["ann@example.org", "dora@example.org"]


def test_a_file_sync_never_subscribes_an_unsubscribed_or_bounced_address_again(
    store: Store, tmp_path: Path
) -> None:
    ann = store.subscribers.add("ann@example.org", now=NOW)
    bob = store.subscribers.add("bob@example.org", now=NOW)
    store.subscribers.add("carl@example.org", name="Carl", now=NOW)
    store.subscribers.unsubscribe(ann.id, now=NOW)
    store.subscribers.mark_bounced(bob.id, "550 5.1.1 unknown user", now=NOW)
    path = tmp_path / "subscribers.csv"
    path.write_text(
        "email,name\nAnn@Example.org,Ann\nbob@example.org,Bob\n"
        "carl@example.org,Carl\ndora@example.org,Dora\n",
        encoding="utf-8",
    )
    result = store.subscribers.sync_file(path, now=LATER)
    assert result == ImportResult(added=1, updated=0, unchanged=1, skipped=2, problems=[])
    assert store.subscribers.count_by_status() == {"active": 2, "unsubscribed": 1, "bounced": 1}
    dora = store.subscribers.get("dora@example.org")
    assert dora is not None and dora.source == "file"
    # Synced again with a new name: updated, and still nobody re-activated.
    path.write_text("email,name\nann@example.org,Ann\ncarl@example.org,Carl C.\n", "utf-8")
    again = store.subscribers.sync_file(path, now=LATER)
    assert (again.added, again.updated, again.unchanged, again.skipped) == (0, 1, 0, 1)
    assert [s.email for s in store.subscribers.active()] == ["carl@example.org", "dora@example.org"]


def test_a_file_without_a_name_column_keeps_the_names_given_by_hand(
    store: Store, tmp_path: Path
) -> None:
    store.subscribers.add("ann@example.org", name="Ann", language="de", now=NOW)
    path = tmp_path / "list.csv"
    path.write_text("\ufeffEmail\nann@example.org\n", encoding="utf-8")  # BOM, capitalised
    result = store.subscribers.sync_file(path, now=LATER)
    assert (result.added, result.unchanged) == (0, 1)
    ann = store.subscribers.get("ann@example.org")
    assert ann is not None and (ann.name, ann.language, ann.updated_at) == ("Ann", "de", NOW)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("name,language\nAnn,de\n", "row 1: expected a header with an email column"),
        ("email,phone\nann@example.org,123\n", "row 1: unknown column 'phone'"),
        ("", "row 1: expected a header with an email column"),
        (b"email\nj\xf6rg@example.org\n", "not UTF-8 text"),
    ],
)
def test_a_file_that_cannot_be_read_as_a_whole_is_refused(
    tmp_path: Path, content: str | bytes, reason: str
) -> None:
    path = tmp_path / "subscribers.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=reason):
        read_csv(path)
    with pytest.raises(UsageError, match="cannot read"):
        read_csv(tmp_path / "missing.csv")


def test_an_export_imported_into_a_new_store_keeps_every_unsubscribe(
    store: Store, tmp_path: Path
) -> None:
    store.subscribers.add("ann@example.org", name='Ann "A", Smith', language="de", now=NOW)
    bob = store.subscribers.add("bob@example.org", now=NOW)
    carl = store.subscribers.add("carl@example.org", name="Carl", now=NOW)
    store.subscribers.unsubscribe(bob.id, now=NOW)
    store.subscribers.mark_bounced(carl.id, "550", now=NOW)
    exported = store.subscribers.export()
    assert exported.splitlines() == [
        "email,name,language,status",
        'ann@example.org,"Ann ""A"", Smith",de,active',
        "bob@example.org,,,unsubscribed",
        "carl@example.org,Carl,,bounced",
    ]
    path = tmp_path / "export.csv"
    path.write_text(exported, encoding="utf-8")
    fresh = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        result = fresh.subscribers.import_rows(
            read_csv(path), source="import", now=NOW, where=str(path)
        )
        assert (result.added, result.problems) == (3, [])
        assert fresh.subscribers.export() == exported
        # ...and the file still lists bob: importing it again subscribes nobody.
        again = fresh.subscribers.import_rows(
            rows("email\nbob@example.org\n"), source="import", now=LATER, where="x.csv"
        )
        assert (again.skipped, fresh.subscribers.count_by_status()["active"]) == (1, 1)
    finally:
        fresh.close()


# -- the command line --------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> str:
    return str(write_config(tmp_path, '[newsletter]\nname = "Test Letter"\n'))


def test_subscribers_add_remove_and_resubscribe_on_the_command_line(config: str) -> None:
    added = run("--config", config, "subscribers", "add", "Ann@Example.ORG", "--name", "Ann")
    assert (added.returncode, added.stdout, added.stderr) == (0, "added Ann@example.org\n", "")
    twice = run("--config", config, "subscribers", "add", "ann@example.org")
    assert (twice.returncode, twice.stderr) == (1, "Error: Ann@example.org: already subscribed\n")
    bad = run("--config", config, "subscribers", "add", "ann@", "--name", "x")
    assert (bad.returncode, bad.stderr) == (1, "Error: 'ann@': not an email address\n")
    removed = run("--config", config, "subscribers", "remove", "ann@example.org")
    assert (removed.returncode, removed.stdout) == (0, "removed Ann@example.org\n")
    again = run("--config", config, "subscribers", "remove", "ann@example.org")
    assert again.stdout == "Ann@example.org was already unsubscribed\n"
    unknown = run("--config", config, "subscribers", "remove", "nobody@example.org")
    assert (unknown.returncode, unknown.stderr) == (
        1,
        "Error: nobody@example.org: not a subscriber\n",
    )
    refused = run("--config", config, "subscribers", "add", "ann@example.org")
    assert refused.returncode == 1
    assert "unsubscribed" in refused.stderr and "--resubscribe" in refused.stderr
    back = run("--config", config, "subscribers", "add", "ann@example.org", "--resubscribe")
    assert (back.returncode, back.stdout) == (0, "added Ann@example.org\n")
    listed = run("--config", config, "subscribers", "list", "--json")
    [ann] = json.loads(listed.stdout)
    assert {k: ann[k] for k in ("email", "name", "status", "source")} == {
        "email": "Ann@example.org",
        "name": "Ann",
        "status": "active",
        "source": "cli",
    }
    none = run("--config", config, "subscribers", "list", "--status", "bounced")
    assert (none.returncode, none.stdout) == (0, "no subscribers with status bounced\n")
    usage = run("--config", config, "subscribers", "list", "--status", "gone")
    assert usage.returncode == 2


def test_subscribers_import_and_export_on_the_command_line(config: str, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,language\nann@example.org,Ann,de\nbob@@x,Bob,\ncarl@example.org,,\n",
        encoding="utf-8",
    )
    imported = run("--config", config, "subscribers", "import", str(path))
    assert imported.returncode == 0
    assert imported.stdout == (
        "2 added, 0 updated, 0 unchanged, 0 skipped (unsubscribed or bounced), 1 problems\n"
    )
    assert imported.stderr == f"not imported: {path}: row 3: 'bob@@x': not an email address\n"
    table = run("--config", config, "subscribers", "list")
    assert table.stdout.splitlines() == [
        "STATUS       LANG  SOURCE  EMAIL",
        "active       de    import  ann@example.org  (Ann)",
        "active       -     import  carl@example.org",
    ]
    exported = run("--config", config, "subscribers", "export")
    assert exported.stdout == (
        "email,name,language,status\nann@example.org,Ann,de,active\ncarl@example.org,,,active\n"
    )
    missing = run("--config", config, "subscribers", "import", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"Error: {tmp_path / 'nope.csv'}: cannot read")
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("ann@example.org\n", encoding="utf-8")
    refused = run("--config", config, "subscribers", "import", str(headerless))
    assert refused.returncode == 1
    assert "row 1: expected a header with an email column" in refused.stderr
