"""``newsdesk serve``: the unsubscribe links and the issue archive over HTTP (Starlette).

Routes::

    GET  /unsubscribe/{token}   a confirmation page with a button; never unsubscribes
                                (mail scanners open every link in a message)
    POST /unsubscribe/{token}   RFC 8058 one-click: the signed token is the authority, so
                                no cookie, CSRF token or body is needed; 200, no redirect
    GET  /archive/...           the sent issues (index.html, <slug>.html, feed.atom)
    GET  /                      redirects to /archive/
    GET  /healthz               "ok"

A forged, altered or retired token gets the same 404 page as an unknown subscriber: the
page says nothing about why. Every response carries the security headers below.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsdesk import keys as signing
from newsdesk.config import Config
from newsdesk.labels import load_labels
from newsdesk.store import Store
from newsdesk.store.subscribers import Subscriber
from newsdesk.tokens import SigningKey, verify_unsubscribe_token

PREVIEW_TOKEN = "preview"
"""The token of the unsubscribe link in previews and test copies: it unsubscribes nobody."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The unsubscribe button must not be clickable through someone else's frame.
    "X-Frame-Options": "DENY",
}
ATOM = "application/atom+xml; charset=utf-8"

_STYLE = (
    "body{font:17px/1.5 system-ui,sans-serif;color:#222;max-width:34rem;margin:4rem auto;"
    "padding:0 1rem}h1{font-size:1.4rem}button{font:inherit;padding:.5rem 1.25rem;border:0;"
    "border-radius:4px;background:#222;color:#fff;cursor:pointer}"
)


def create_app(
    config: Config,
    store: Store,
    *,
    keys: Sequence[SigningKey] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ASGIApp:
    """The whole site for one newsletter; ``keys`` default to the installation's own."""
    verifying_keys = tuple(keys if keys is not None else signing.signing_keys(config))
    pages = _Pages(config)

    def subscriber_of(token: str) -> Subscriber | None:
        subscriber_id = verify_unsubscribe_token(token, verifying_keys)
        return None if subscriber_id is None else store.subscribers.get_by_id(subscriber_id)

    # Sync endpoints: Starlette runs them in its thread pool, beside the blocking store.
    def confirm(request: Request) -> Response:
        token = request.path_params["token"]
        if token == PREVIEW_TOKEN:
            return pages.preview()
        subscriber = subscriber_of(token)
        if subscriber is None:
            return pages.invalid()
        if subscriber.status == "unsubscribed":
            return pages.done(subscriber, already=True)
        return pages.confirm(subscriber)

    def unsubscribe(request: Request) -> Response:
        # The body (List-Unsubscribe=One-Click, form- or multipart-encoded, or nothing)
        # is not read: RFC 8058 makes the signed URL alone the request.
        token = request.path_params["token"]
        if token == PREVIEW_TOKEN:
            return pages.preview()
        subscriber = subscriber_of(token)
        if subscriber is None:
            return pages.invalid()
        changed = store.subscribers.unsubscribe(subscriber.id, now=clock())
        return pages.done(subscriber, already=not changed)

    def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    def home(request: Request) -> Response:
        return RedirectResponse("/archive/", status_code=302)

    app = Starlette(
        routes=[
            Route("/unsubscribe/{token}", confirm, methods=["GET"]),
            Route("/unsubscribe/{token}", unsubscribe, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/", home, methods=["GET"]),
            Mount(
                "/archive",
                app=_Archive(directory=config.digest.archive, html=True, check_dir=False),
            ),
        ]
    )
    return SecurityHeaders(app)


def serve(config: Config, store: Store, *, host: str, port: int) -> None:
    """Run the site until SIGTERM or SIGINT (uvicorn finishes the requests in flight)."""
    import uvicorn

    uvicorn.run(
        create_app(config, store),
        host=host,
        port=port,
        # newsdesk's own logging stays as set up; the access log would write every
        # unsubscribe token to disk.
        log_config=None,
        access_log=False,
        server_header=False,
    )


def mask_address(email: str) -> str:
    """``alice@example.org`` -> ``a***@example.org``: enough to recognise, not to harvest."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response, errors and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Archive(StaticFiles):
    """The archive folder: 404 until the first issue creates it; feed.atom as Atom."""

    async def check_config(self) -> None:
        if self.directory is None or not os.path.isdir(self.directory):
            raise HTTPException(status_code=404)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        # The system's MIME table may not know .atom (Python's built-in one does not).
        if os.fspath(full_path).endswith(".atom"):
            response.headers["content-type"] = ATOM
        return response


class _Pages:
    """The few HTML pages of the site, in the subscriber's (else the newsletter's) language."""

    def __init__(self, config: Config) -> None:
        self.newsletter = config.newsletter.name
        self.language = config.newsletter.language
        self.folder = config.digest.templates
        self.overrides = dict(config.digest.labels)
        self._cache: dict[str, dict[str, str]] = {}

    def confirm(self, subscriber: Subscriber) -> Response:
        t, language = self._labels(subscriber.language)
        body = (
            f"<p>{self._fill(t['unsubscribe_confirm'], subscriber.email)}</p>\n"
            '<form method="post">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{self._fill(t["unsubscribe"])}</button></form>'
        )
        return self._page(language, self._fill(t["unsubscribe_title"]), body)

    def done(self, subscriber: Subscriber, *, already: bool) -> Response:
        t, language = self._labels(subscriber.language)
        key = "unsubscribe_again" if already else "unsubscribe_done"
        body = f"<p>{self._fill(t[key + '_text'], subscriber.email)}</p>"
        return self._page(language, self._fill(t[key]), body)

    def preview(self) -> Response:
        t, language = self._labels(None)
        body = f"<p>{self._fill(t['unsubscribe_preview_text'])}</p>"
        return self._page(language, self._fill(t["unsubscribe_preview"]), body)

    def invalid(self) -> Response:
        t, language = self._labels(None)
        body = f"<p>{self._fill(t['unsubscribe_invalid_text'])}</p>"
        return self._page(language, self._fill(t["unsubscribe_invalid"]), body, status=404)

    def _labels(self, language: str | None) -> tuple[dict[str, str], str]:
        language = language or self.language
        if language not in self._cache:
            self._cache[language] = load_labels(
                language, folder=self.folder, overrides=self.overrides
            )
        return self._cache[language], language

    def _fill(self, label: str, email: str = "") -> str:
        """A label with its placeholders filled, escaped for HTML."""
        text = label.replace("{newsletter}", self.newsletter)
        return html.escape(text.replace("{email}", mask_address(email)) if email else text)

    def _page(self, language: str, title: str, body: str, *, status: int = 200) -> Response:
        """A whole page; ``title`` and ``body`` are HTML already."""
        document = (
            "<!doctype html>\n"
            f'<html lang="{html.escape(language)}">\n<head>\n'
            '<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="robots" content="noindex">\n'
            f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
        )
        # A page behind a personal link is nobody's to cache.
        return HTMLResponse(document, status_code=status, headers={"Cache-Control": "no-store"})
