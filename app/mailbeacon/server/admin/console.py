"""The console's pages: log in, set up, Reps, Policy, Team report (and its CSV), Health.

Plain server-rendered HTML (Jinja2 through Starlette's templates, autoescaped), one
stylesheet of its own, no script: every action is a form that posts back here with
the session's CSRF token. Each request opens a short-lived store connection of its own
on a worker thread (the console's traffic is an administrator's clicks), so nothing
here shares the hit path's writer. The whole console answers 404 until an
administrator exists.

Each page speaks the administrator's language (English or Polish, from the browser's
``Accept-Language``; see ``language.py``): the templates through Jinja2's i18n
extension with the request's own translations, the messages made here through the
request's :class:`Language`. The log and the CSV stay English.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from mailbeacon import __version__
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import Language, in_language, said
from mailbeacon.core.policy import MAX_TEXT, POLICY_KEYS, PolicyError
from mailbeacon.server.admin import accounts
from mailbeacon.server.admin.language import ConsoleLanguages, template_words
from mailbeacon.server.admin.limits import LoginLimiter
from mailbeacon.server.admin.web import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    FormRefused,
    check_token,
    clear_cookie,
    read_form,
    same_origin,
    secured,
    set_cookie,
)
from mailbeacon.server.store import Store
from mailbeacon.server.team import (
    clear_policy_item,
    list_reps,
    load_policy,
    set_policy_item,
    team_report,
)
from mailbeacon.server.team_commands import report_since
from mailbeacon.server.tracker import iso_utc
from mailbeacon.server.users import UserAdmin, create_user, signing_key

log = logging.getLogger(__name__)

T = TypeVar("T")
HERE = Path(__file__).parent
ENROLL_SCHEME = "mailbeacon://enroll?key="
REPORT_WEEKS = 8
_SORTS = ("week", "rep", "tracked", "opens", "clicks", "replies", "filtered")
_MODES = ("enforced", "default", "rep")


def enrollment_link(key: str) -> str:
    """The link a rep clicks to enroll (the desktop entry handles ``mailbeacon://``)."""
    return ENROLL_SCHEME + quote(key, safe="")


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    """What the console needs of the running server."""

    open_store: Callable[[], Store]
    secret: bytes
    public_url: str
    connected: Callable[[int | None], int]  # agents streaming now (one user's, or all)
    instances: Callable[[Store], int]
    # The client's address: X-Forwarded-For from the operator's trusted proxies only,
    # so the login limit counts each browser, not the TLS proxy in front.
    client_ip: Callable[[str, list[tuple[bytes, bytes]]], str] = lambda peer, _h: peer
    # The console's language: "auto" (each browser's Accept-Language) or "en" / "pl".
    language: str = "auto"


class AdminConsole:
    """The routes under ``/admin``."""

    def __init__(
        self,
        context: ConsoleContext,
        clock: Callable[[], float] = time.time,
        limiter: LoginLimiter | None = None,
    ) -> None:
        self._ctx = context
        self._clock = clock
        self._limiter = limiter or LoginLimiter()
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            extensions=["jinja2.ext.i18n"],
        )
        # Compiles {% trans %} new-style (values escaped, %(name)s filled); the English
        # callables it installs are only a fallback: each page is rendered with its
        # request's own gettext/ngettext in its context (template_words), so nothing
        # per request is set on this environment the requests share.
        env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        self._templates = Jinja2Templates(env=env)
        self._languages = ConsoleLanguages(context.language)
        self._started = clock()

    def routes(self) -> list[BaseRoute]:
        """Every page and action."""
        return [
            Route("/admin", self._home, methods=["GET"]),
            Route("/admin/", self._home, methods=["GET"]),
            Route("/admin/console.css", self._css, methods=["GET"]),
            Route("/admin/login", self._login_page, methods=["GET"]),
            Route("/admin/login", self._login, methods=["POST"]),
            Route("/admin/logout", self._logout, methods=["POST"]),
            Route("/admin/setup/{token}", self._setup_page, methods=["GET"]),
            Route("/admin/setup/{token}", self._setup, methods=["POST"]),
            Route("/admin/reps", self._reps, methods=["GET"]),
            Route("/admin/reps/add", self._add_rep, methods=["POST"]),
            Route("/admin/reps/{rep:int}/remove", self._remove_rep, methods=["POST"]),
            Route("/admin/reps/{rep:int}/rotate", self._rotate_rep, methods=["POST"]),
            Route("/admin/policy", self._policy, methods=["GET"]),
            Route("/admin/policy", self._set_policy, methods=["POST"]),
            Route("/admin/report", self._report, methods=["GET"]),
            Route("/admin/report.csv", self._report_csv, methods=["GET"]),
            Route("/admin/health", self._health, methods=["GET"]),
        ]

    # -- plumbing ---------------------------------------------------------------------

    async def _db(self, call: Callable[[Store], T]) -> T:
        def run() -> T:
            store = self._ctx.open_store()
            try:
                return call(store)
            finally:
                store.close()

        return await asyncio.to_thread(run)

    def _tr(self, request: Request) -> Language:
        """The language of the administrator who sent ``request`` (negotiated once per
        request: a handler and the page it renders ask for it separately)."""
        language = getattr(request.state, "language", None)
        if not isinstance(language, Language):
            language = self._languages.for_header(request.headers.get("accept-language", ""))
            request.state.language = language
        return language

    def _page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("session", None)
        context.setdefault("error", "")
        context.setdefault("notice", "")
        tr = self._tr(request)
        context.update(template_words(tr))
        response = self._templates.TemplateResponse(request, template, context, status)
        response.headers["content-language"] = tr.code
        response.headers["vary"] = "Accept-Language"
        return secured(response)

    def _refused(self, request: Request, why: str) -> Response:
        log.warning("admin console: refused a form post (%s)", why)
        tr = self._tr(request)
        return self._page(
            request, "message.html", 403, title=tr.t("Refused"),
            text=tr.t("This form was refused: it did not come from this console's own page. "
                      "Open the page again and repeat what you did."),
        )  # fmt: skip

    async def _enabled(self) -> bool:
        return await self._db(accounts.has_admin)

    async def _session(self, request: Request) -> accounts.Session | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 200:
            return None
        now = self._clock()
        return await self._db(lambda s: accounts.find_session(s, token, now))

    async def _guard(self, request: Request) -> accounts.Session | Response:
        """The session of a logged-in administrator, or the response to give instead."""
        if not await self._enabled():
            return secured(PlainTextResponse("Not found\n", 404))
        session = await self._session(request)
        if session is None:
            return secured(RedirectResponse("/admin/login", 303))
        return session

    async def _posted(self, request: Request) -> tuple[accounts.Session, dict[str, str]] | Response:
        """A logged-in administrator's form from this console, or the refusal."""
        guarded = await self._guard(request)
        if not isinstance(guarded, accounts.Session):
            if isinstance(guarded, RedirectResponse):
                return self._refused(request, "no session")
            return guarded
        if not same_origin(request):
            return self._refused(request, "another site's form")
        try:
            form = await read_form(request)
        except FormRefused as exc:
            return self._refused(request, str(exc))
        if not check_token(guarded.csrf, form.get("csrf")):
            return self._refused(request, "wrong CSRF token")
        return guarded, form

    # -- pages ------------------------------------------------------------------------

    async def _css(self, _request: Request) -> Response:
        return secured(FileResponse(HERE / "static" / "console.css", media_type="text/css"))

    async def _home(self, request: Request) -> Response:
        guarded = await self._guard(request)
        if not isinstance(guarded, accounts.Session):
            return guarded
        return secured(RedirectResponse("/admin/reps", 303))

    async def _login_page(self, request: Request, error: str = "", status: int = 200) -> Response:
        if not await self._enabled():
            return secured(PlainTextResponse("Not found\n", 404))
        token = secrets.token_urlsafe(24)
        response = self._page(request, "login.html", status, csrf=token, error=error)
        set_cookie(response, LOGIN_COOKIE, token, max_age=3600)
        return response

    async def _unsigned_form(self, request: Request, what: str) -> dict[str, str] | Response:
        """A form posted before there is a session (log in, set up): same origin, and
        the token its page set in a cookie."""
        if not same_origin(request):
            return self._refused(request, f"another site's {what} form")
        try:
            form = await read_form(request)
        except FormRefused as exc:
            return self._refused(request, str(exc))
        if not check_token(request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf")):
            return self._refused(request, f"wrong {what} CSRF token")
        return form

    async def _login(self, request: Request) -> Response:
        if not await self._enabled():
            return secured(PlainTextResponse("Not found\n", 404))
        form = await self._unsigned_form(request, "login")
        if isinstance(form, Response):
            return form
        name, password = form.get("name", "").strip()[:64], form.get("password", "")
        ip = self._ctx.client_ip(request.client.host if request.client else "",
                                 request.scope["headers"])  # fmt: skip
        keys = (f"ip:{ip}", f"name:{name.lower()}")
        wait = self._limiter.wait_seconds(*keys)
        tr = self._tr(request)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            log.warning("admin console: login for %r from %s held back (too many failures)",
                        name, ip)  # fmt: skip
            return await self._login_page(request, tr.n(
                "Too many failed logins. Try again in {count} minute.",
                "Too many failed logins. Try again in {count} minutes.", minutes,
            ), 429)  # fmt: skip
        admin_id = await self._db(lambda s: accounts.verify_login(s, name, password))
        if admin_id is None:
            self._limiter.failed(*keys)
            log.warning("admin console: failed login for %r from %s", name, ip)
            return await self._login_page(request, tr.t("Wrong name or password."), 401)
        self._limiter.succeeded(*keys)
        now = self._clock()
        token, _session = await self._db(lambda s: accounts.open_session(s, admin_id, now))
        log.info("admin console: %s logged in from %s", name, ip)
        response = secured(RedirectResponse("/admin/reps", 303))
        set_cookie(response, SESSION_COOKIE, token, max_age=accounts.SESSION_SECONDS)
        clear_cookie(response, LOGIN_COOKIE)
        return response

    async def _logout(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        token = request.cookies.get(SESSION_COOKIE, "")
        await self._db(lambda s: accounts.close_session(s, token))
        response = secured(RedirectResponse("/admin/login", 303))
        clear_cookie(response, SESSION_COOKIE)
        return response

    async def _setup_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        now = self._clock()
        name = await self._db(lambda s: accounts.setup_name(s, token, now))
        tr = self._tr(request)
        if name is None:
            return self._page(
                request, "message.html", 404, title=tr.t("Link not valid"),
                text=tr.t("This set-up link was used already or has expired. Ask for a new "
                          "one (mailbeacon server add-admin NAME)."),
            )  # fmt: skip
        csrf = secrets.token_urlsafe(24)
        response = self._page(
            request, "setup.html", name=name, csrf=csrf, min_password=accounts.MIN_PASSWORD
        )
        set_cookie(response, LOGIN_COOKIE, csrf, max_age=3600)
        return response

    async def _setup(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await self._unsigned_form(request, "set-up")
        if isinstance(form, Response):
            return form
        password = form.get("password", "")
        again: dict[str, Any] = dict(name=form.get("name", ""), csrf=form.get("csrf", ""),
                                     min_password=accounts.MIN_PASSWORD)  # fmt: skip
        tr = self._tr(request)
        if password != form.get("again", ""):
            return self._page(
                request, "setup.html", 400, error=tr.t("The two passwords differ."), **again
            )
        now = self._clock()
        try:
            name = await self._db(lambda s: accounts.complete_setup(s, token, password, now))
        except accounts.AdminError as exc:
            error = in_language(said(exc), tr)
            return self._page(request, "setup.html", 400, error=error, **again)
        log.info("admin console: %s chose a password", name)
        return self._page(
            request, "message.html", title=tr.t("Password set"),
            text=tr.t("{name}, your password is set. Log in with it.", name=name),
            link="/admin/login",
        )  # fmt: skip

    # -- reps -------------------------------------------------------------------------

    async def _reps(self, request: Request) -> Response:
        guarded = await self._guard(request)
        if not isinstance(guarded, accounts.Session):
            return guarded
        reps = await self._db(list_reps)
        tr = self._tr(request)
        rows = [
            {
                "id": rep.id,
                "name": rep.name,
                "enrolled": _day(tr, rep.created_at),
                "last_seen": _when(tr, rep.last_seen),
                "version": rep.agent_version or "—",
                "connected": self._ctx.connected(rep.id),
            }
            for rep in reps
        ]
        online = sum(1 for row in rows if row["connected"])
        return self._page(
            request, "reps.html", session=guarded, reps=rows, online=online, page="reps"
        )

    def _key_page(self, request: Request, session: accounts.Session, enrollment: Enrollment,
                  name: str, title: str) -> Response:  # fmt: skip
        key = enrollment.encode()
        return self._page(
            request, "rep_key.html", session=session, page="reps", title=title, name=name,
            key=key, link=enrollment_link(key),
        )  # fmt: skip

    async def _add_rep(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        name = " ".join(form.get("name", "").split())[:64]
        if not name:
            return secured(RedirectResponse("/admin/reps", 303))
        created = iso_utc(self._clock())

        def add(store: Store) -> tuple[int, str]:
            with store.transaction():
                new = create_user(store, name, created)
            return new.id, new.api_token

        user_id, api_token = await self._db(add)
        log.info("admin console: %s added rep %d (%s)", session.name, user_id, name)
        enrollment = Enrollment(
            self._ctx.public_url, user_id, api_token, signing_key(self._ctx.secret, user_id)
        )
        title = self._tr(request).t("{name} added", name=name)
        return self._key_page(request, session, enrollment, name, title)

    async def _remove_rep(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, _form = posted
        rep = int(request.path_params["rep"])
        removed = await self._db(lambda s: UserAdmin(s).remove_user(rep))
        log.info("admin console: %s removed rep %d (%s)", session.name, rep, removed)
        return secured(RedirectResponse("/admin/reps", 303))

    async def _rotate_rep(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, _form = posted
        rep = int(request.path_params["rep"])

        def rotate(store: Store) -> tuple[str, str, int] | None:
            user = store.get_user(rep)
            rotated = UserAdmin(store).rotate(rep) if user is not None else None
            return None if user is None or rotated is None else (user.name, *rotated)

        done = await self._db(rotate)
        if done is None:
            return secured(RedirectResponse("/admin/reps", 303))
        name, api_token, generation = done
        log.info("admin console: %s rotated the key of rep %d", session.name, rep)
        enrollment = Enrollment(
            self._ctx.public_url, rep, api_token,
            signing_key(self._ctx.secret, rep, generation),
        )  # fmt: skip
        title = self._tr(request).t("New key for {name}", name=name)
        return self._key_page(request, session, enrollment, name, title)

    # -- policy -----------------------------------------------------------------------

    async def _policy(self, request: Request, error: str = "", notice: str = "") -> Response:
        guarded = await self._guard(request)
        if not isinstance(guarded, accounts.Session):
            return guarded
        policy = await self._db(load_policy)
        tr = self._tr(request)
        rows = []
        for key, spec in POLICY_KEYS.items():
            item = policy.item(key)
            mode = "rep" if item is None else ("enforced" if item.enforced else "default")
            rows.append({
                "key": key, "doc": tr.t(spec.doc), "kind": spec.kind, "mode": mode,
                "value": spec.default if item is None else item.value,
                "account": key == "tracking.enabled",
            })  # fmt: skip
        return self._page(
            request, "policy.html", 400 if error else 200, session=guarded, rows=rows,
            version=policy.version, page="policy", error=error, notice=notice,
            max_text=MAX_TEXT,
        )  # fmt: skip

    async def _set_policy(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        key, value, mode = form.get("key", ""), form.get("value", ""), form.get("mode", "")
        now = iso_utc(self._clock())
        if mode not in _MODES:
            mode = "enforced"
        try:
            if mode == "rep" and key != "tracking.enabled":
                policy = await self._db(lambda s: clear_policy_item(s, key, now))
            else:
                enforce = mode == "enforced"
                policy = await self._db(lambda s: set_policy_item(s, key, value, enforce, now))
        except PolicyError as exc:
            log.info("admin console: %s's value for %s refused (%s)", session.name, key, exc)
            return await self._policy(request, error=_policy_problem(self._tr(request), key, value))
        log.info("admin console: %s set %s (policy version %d)", session.name, key,
                 policy.version)  # fmt: skip
        tr = self._tr(request)
        return await self._policy(
            request, notice=tr.t("Saved: policy version {version}. Connected agents follow it "
                                 "within seconds; the others when they next connect.",
                                 version=tr.number(policy.version)),
        )  # fmt: skip

    # -- report -----------------------------------------------------------------------

    async def _rows(self, request: Request) -> list[dict[str, Any]]:
        weeks = _int(request.query_params.get("weeks"), REPORT_WEEKS, 1, 104)
        since = report_since(weeks, datetime.fromtimestamp(self._clock(), UTC))
        figures = await self._db(lambda s: team_report(s, since))
        return [row.to_json() for row in figures]

    async def _report(self, request: Request) -> Response:
        guarded = await self._guard(request)
        if not isinstance(guarded, accounts.Session):
            return guarded
        rows = await self._rows(request)
        sort = request.query_params.get("sort", "week")
        sort = sort if sort in _SORTS else "week"
        column = {
            "tracked": "emails_tracked", "opens": "human_opens", "filtered": "filtered_share",
        }.get(sort, sort)  # fmt: skip
        rows.sort(key=lambda r: (r[column], r["week"], r["rep"]), reverse=sort != "rep")
        tr = self._tr(request)
        for row in rows:
            row["week"] = _day(tr, str(row["week"]))
        return self._page(
            request, "report.html", session=guarded, rows=rows, sort=sort, page="report"
        )

    async def _report_csv(self, request: Request) -> Response:
        guarded = await self._guard(request)
        if not isinstance(guarded, accounts.Session):
            return guarded
        rows = await self._rows(request)
        out = io.StringIO()
        columns = [
            "week", "rep", "emails_tracked", "human_opens", "clicks", "replies",
            "filtered_scanners", "filtered_proxies", "filtered_self", "filtered_share",
        ]  # fmt: skip
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            # A spreadsheet runs a cell that starts with = + - @ as a formula: not a name.
            row["rep"] = "'" + row["rep"] if str(row["rep"])[:1] in "=+-@" else row["rep"]
            writer.writerow({key: row[key] for key in columns})
        response = Response(out.getvalue(), media_type="text/csv; charset=utf-8")
        response.headers["content-disposition"] = 'attachment; filename="team-report.csv"'
        return secured(response)

    # -- health -----------------------------------------------------------------------

    async def _health(self, request: Request) -> Response:
        guarded = await self._guard(request)
        if not isinstance(guarded, accounts.Session):
            return guarded

        def figures(store: Store) -> dict[str, Any]:
            oldest = store.rows("SELECT min(at), count(*) FROM events")
            return {
                "database": f"{store.dialect}: {store.where}",
                "schema": store.get_meta("schema") or "?",
                "instances": self._ctx.instances(store),
                "events": int(str(oldest[0][1] or 0)),
                "oldest": str(oldest[0][0] or ""),
                "policy": load_policy(store).version,
            }

        try:
            info = await self._db(figures)
            database_ok = True
        except Exception:
            log.warning("admin console: the database did not answer", exc_info=True)
            info, database_ok = {}, False
        uptime = int(self._clock() - self._started)
        tr = self._tr(request)
        if info.get("oldest"):
            info["oldest"] = _day(tr, info["oldest"])
        return self._page(
            request, "health.html", session=guarded, page="health", info=info,
            database_ok=database_ok, version=__version__, agents=self._ctx.connected(None),
            uptime=tr.t("{hours} h {minutes} min", hours=tr.number(uptime // 3600),
                        minutes=uptime % 3600 // 60),
        )  # fmt: skip


def _when(tr: Language, seen: float | None) -> str:
    """A time as the console shows it: in UTC, in the locale's words and order."""
    if seen is None:
        return tr.t("never")
    return tr.t("{when} UTC", when=tr.when(datetime.fromtimestamp(seen, UTC)))


def _day(tr: Language, iso: str) -> str:
    """The date of an ISO 8601 time (or date) in the locale's words: 30 Nov 2026."""
    try:
        return tr.day(date.fromisoformat(iso[:10]))
    except ValueError:
        return iso[:10]


def _policy_problem(tr: Language, key: str, value: str) -> str:
    """Why ``value`` will not do for ``key``, in the administrator's language (the
    rules of mailbeacon.core.policy.parse_value, said for this page)."""
    spec = POLICY_KEYS.get(key)
    if spec is None:
        return tr.t("{key} is not a policy item.", key=key)
    if spec.kind == "bool":
        return tr.t("{key} is either on or off.", key=key)
    text = value.strip()
    if len(text) > MAX_TEXT or any(ord(c) < 32 for c in text):
        return tr.n("{key}: at most {count} printable character.",
                    "{key}: at most {count} printable characters.", MAX_TEXT, key=key)  # fmt: skip
    return tr.t("{key} takes an http:// or https:// address, not “{value}”.", key=key, value=text)


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(text or default), low), high)
    except ValueError:
        return default
