"""Errors carry what failed, and survive the trip back from a parser process."""

from __future__ import annotations

import pickle

import pytest

from newsdesk.errors import (
    BlockedAddress,
    ConfigError,
    FeedGone,
    FetchError,
    NewsdeskError,
    ParseError,
    RateLimited,
)


@pytest.mark.parametrize(
    "error",
    [
        ParseError("https://a.example/feed", "not a feed: HTML page"),
        FetchError("https://a.example/feed", "HTTP 500 Internal Server Error"),
        FeedGone("https://a.example/feed", "gone (HTTP 410)"),
        BlockedAddress("https://a.example/feed", "refused: resolves to 10.0.0.1"),
        RateLimited("https://a.example/feed", "HTTP 429 Too Many Requests", 120.0),
        ConfigError(["a.toml: x: bad", "a.toml: y: worse"]),
    ],
)
def test_errors_pickle_round_trip(error: NewsdeskError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_a_feed_error_names_the_url() -> None:
    assert str(ParseError("https://a.example/feed", "invalid XML")) == (
        "https://a.example/feed: invalid XML"
    )
