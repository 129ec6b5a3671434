"""The tracking server as an object: start it in any asyncio program, stop it cleanly.

``mailbeacon server serve`` is a thin wrapper over this; the agent uses it for the
embedded default, and tests start it on a free loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType

import uvicorn

from mailbeacon.core.classify import classify, warm_up
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.tracking_domain import check_tracking_url
from mailbeacon.server.addresses import AgentAddresses
from mailbeacon.server.app import ASGIApp, RevocableStream, TrackingApp
from mailbeacon.server.config import PostgresUrl, ServerConfig, base_url
from mailbeacon.server.fanout import Fanout
from mailbeacon.server.fastpath import tracking_protocol
from mailbeacon.server.http_limits import bounded_protocol
from mailbeacon.server.meta import PUBLIC_URL_KEY, serving_secret
from mailbeacon.server.pg_feed import Feed, Listener
from mailbeacon.server.pg_store import PgStore
from mailbeacon.server.proxies import TrustedProxies
from mailbeacon.server.proxy_ranges import load_ranges
from mailbeacon.server.reader import Reader
from mailbeacon.server.recent import RecentHits
from mailbeacon.server.recorder import Classifier, FloodLimits, Recorder
from mailbeacon.server.spool import Spool
from mailbeacon.server.store import Store
from mailbeacon.server.stores import open_postgres, open_store, warn_retrying
from mailbeacon.server.stream import StreamEndpoint
from mailbeacon.server.team_service import TeamService
from mailbeacon.server.threads import in_thread
from mailbeacon.server.tracker import Tracker, iso_utc
from mailbeacon.server.users import UserAdmin, UserKeys, UsersWatch, create_user, hash_token

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 2.0  # seconds /healthz waits for the database before saying it does not answer


class ServerStartError(RuntimeError):
    """The server could not start; the message says why, for the operator."""


@dataclass(frozen=True, slots=True)
class StreamStats:
    """Event stream figures (for tests and the operator)."""

    subscribers: int
    dropped: int
    largest_queue: int


@dataclass(slots=True)
class _Running:
    uvicorn: uvicorn.Server
    main_loop: asyncio.Task[None]
    sockets: list[socket.socket]
    store: Store
    reader: Reader
    recorder: Recorder
    fanout: Fanout
    users: UserKeys
    addresses: AgentAddresses
    app: TrackingApp
    port: int
    public_url: str
    streams: RevocableStream
    watch: UsersWatch
    watching: asyncio.Task[None]
    # PostgreSQL: every instance's events, read by id (pg_feed.py); None on SQLite.
    feed: _SharedStream | None = None
    spool: Spool | None = None


@dataclass(slots=True)
class _SharedStream:
    feed: Feed
    listener: Listener
    store: PgStore

    async def stop(self) -> None:
        self.listener.stop()
        await self.feed.stop()
        self.store.close()


class TrackingServer:
    """Pixel, click redirect, browser claim and event stream, on one port.

    ``clock`` (wall time, seconds) and ``classifier`` are injectable for tests.
    """

    def __init__(
        self,
        config: ServerConfig,
        clock: Callable[[], float] = time.time,
        classifier: Classifier = classify,
    ) -> None:
        self.config = config
        self._clock = clock
        self._classifier = classifier
        self._running: _Running | None = None
        self._users = UserKeys(b"")
        self._team: TeamService

    async def __aenter__(self) -> TrackingServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def _state(self) -> _Running:
        if self._running is None:
            raise RuntimeError("the tracking server is not running")
        return self._running

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when the config said 0)."""
        return self._state.port

    @property
    def url(self) -> str:
        """Where it listens, e.g. ``http://127.0.0.1:8025``."""
        return base_url(self.config.host, self.port)

    @property
    def public_url(self) -> str:
        """The base URL put into enrollment keys and emails."""
        return self._state.public_url

    @property
    def app(self) -> ASGIApp:
        """The ASGI application (e.g. for httpx.ASGITransport in tests)."""
        return self._state.app

    def stream_stats(self) -> StreamStats:
        """Subscribers now, subscribers dropped for falling behind, deepest queue seen."""
        fanout = self._state.fanout
        return StreamStats(fanout.count(), fanout.dropped, fanout.largest_queue)

    def subscribers(self, user_id: int) -> int:
        """Open stream subscriptions of one user."""
        return self._state.fanout.count(user_id)

    async def start(self) -> None:
        """Open the store, bind the socket and start serving."""
        if self._running is not None:
            return
        config = self.config
        async with contextlib.AsyncExitStack() as cleanup:  # undone if any step fails
            # Load the verdict lists now, not on the first hit.
            await asyncio.to_thread(warm_up)
            store = await asyncio.to_thread(open_store, config.db_path)
            cleanup.callback(store.close)
            readers: list[Store] = []
            cleanup.callback(_close_all, readers)
            for _ in range(config.pool_size):
                readers.append(await asyncio.to_thread(open_store, config.db_path))
            reader = Reader(readers)
            # Its own connection: polled on a timer for removals and rotations (users.py).
            watch = UsersWatch(await asyncio.to_thread(open_store, config.db_path))
            cleanup.callback(watch.close)
            # The team's policy, polled on its own connection like the users (team.py).
            self._team = TeamService(
                await asyncio.to_thread(open_store, config.db_path), config.users_check_seconds
            )
            cleanup.push_async_callback(self._team.stop)
            secret = serving_secret(store, config.secret)
            addresses = AgentAddresses(
                config.agent_address_ttl,
                config.agent_addresses_per_user,
                window=config.self_address_minutes * 60,
            )
            addresses.load(store.agent_addresses(self._clock() - config.agent_address_ttl))
            fanout = Fanout()
            shared = await self._shared_stream(fanout, store)
            if shared is not None:
                cleanup.push_async_callback(shared.stop)
            recent = RecentHits(
                config.recent_per_message, config.recent_seconds, config.recent_total
            )
            ranges = await asyncio.to_thread(load_ranges, config.apple_ranges)
            # On SQLite this instance is the only writer: it publishes what it commits.
            # On PostgreSQL the feed reads every instance's events by id, this one's too.
            published = fanout.publish if shared is None else shared.feed.wake_after
            spool = self._spool()
            if spool is not None:
                cleanup.callback(spool.close)
            recorder = Recorder(
                store, addresses, recent, published, self._classifier,
                thresholds=config.thresholds,
                ranges=ranges,
                flood=FloodLimits(config.flood_window_seconds, config.max_events_per_token_hour),
                spool=spool,
            )
            recorder.start()
            cleanup.push_async_callback(recorder.stop)
            sock = _bind(config.host, config.port)
            cleanup.callback(sock.close)
            self._users = UserKeys(
                secret, generations=watch.generations, removed=watch.removed
            )
            app, streams, public = await self._prepare(
                sock, reader, recorder, fanout, addresses, secret
            )
            server = uvicorn.Server(self._uvicorn_config(app))
            server.lifespan = server.config.lifespan_class(server.config)
            await server.startup(sockets=[sock])
            cleanup.pop_all()
        self._team.start(fanout)
        main_loop = asyncio.create_task(server.main_loop(), name="mailbeacon-server")
        watching = asyncio.create_task(
            self._watch_users(watch, streams, app, secret, reader, recorder),
            name="mailbeacon-users-watch",
        )
        self._running = _Running(
            server, main_loop, [sock], store, reader, recorder, fanout, self._users, addresses,
            app, int(sock.getsockname()[1]), public, streams, watch, watching, shared, spool,
        )
        log.info("tracking server on %s (public URL %s)", self.url, public)
        if config_public := self.config.public_url:
            # The operator chose this URL for every rep's mail: say what it costs them.
            for sentence in check_tracking_url(config_public).sentences():
                log.warning("public URL: %s", sentence)

    def _spool(self) -> Spool | None:
        """On PostgreSQL with a spool folder: the outage spool (spool.py)."""
        config = self.config
        if not isinstance(config.db_path, PostgresUrl) or config.spool_dir is None:
            return None
        return Spool(config.spool_dir)

    async def _shared_stream(self, fanout: Fanout, writer: Store) -> _SharedStream | None:
        """On PostgreSQL: the feed of every instance's events and its NOTIFY listener."""
        db = self.config.db_path
        if not isinstance(db, PostgresUrl):
            return None
        store = await asyncio.to_thread(open_postgres, db, "mailbeacon-feed")
        feed = Feed(store, fanout, self.config.poll_seconds)
        try:
            await feed.start()
        except BaseException:
            store.close()
            raise
        loop = asyncio.get_running_loop()

        def wake() -> None:  # on the listener's thread
            loop.call_soon_threadsafe(feed.wake)

        # The writer's own NOTIFYs wake nothing: the recorder's hook saw those commits.
        own_pid = (lambda: writer.backend_pid) if isinstance(writer, PgStore) else (lambda: None)
        listener = Listener(db.url, wake, own_pid)
        listener.start()
        return _SharedStream(feed, listener, store)

    async def _prepare(
        self,
        sock: socket.socket,
        reader: Reader,
        recorder: Recorder,
        fanout: Fanout,
        addresses: AgentAddresses,
        secret: bytes,
    ) -> tuple[TrackingApp, RevocableStream, str]:
        config = self.config
        port = int(sock.getsockname()[1])
        public = (config.public_url or base_url(config.host, port)).rstrip("/")
        await recorder.run(lambda s: s.set_meta(PUBLIC_URL_KEY, public))
        tracker = self._tracker(secret, reader, recorder)
        stream = StreamEndpoint(
            reader,
            fanout,
            addresses,
            recorder,
            tracker,
            queue_limit=config.stream_queue_limit,
            page_size=config.stream_page_size,
            clock=self._clock,
        )
        streams = RevocableStream(stream, reader)
        health = None
        if isinstance(config.db_path, PostgresUrl):

            async def health() -> bool:
                """Whether the database answers (for /healthz)."""
                try:
                    async with asyncio.timeout(HEALTH_TIMEOUT):
                        await reader.run(lambda s: s.get_meta(PUBLIC_URL_KEY))
                except Exception:
                    return False
                return True

        app = TrackingApp(
            tracker, secret, streams, secure_cookies=public.startswith("https:"),
            clock=self._clock, database_health=health,
            routes=self._team.routes(
                reader, recorder,
                self._team.console(config.db_path, secret, public, fanout, tracker.client_ip,
                                   config.console_language),
            ),
        )
        return app, streams, public

    def _tracker(self, secret: bytes, reader: Reader, recorder: Recorder) -> Tracker:
        config = self.config
        return Tracker(
            secret,
            self._users,
            reader,
            recorder,
            TrustedProxies(config.trusted_proxies),
            clock=self._clock,
            user_agent_limit=config.user_agent_limit,
            truncate_ips=config.truncate_ips,
            click_token_max_age=config.click_token_max_age,
            policy=self._team.policy,
        )

    async def _watch_users(
        self,
        watch: UsersWatch,
        streams: RevocableStream,
        app: TrackingApp,
        secret: bytes,
        reader: Reader,
        recorder: Recorder,
    ) -> None:
        """Apply removals and rotations made by ``server remove-user`` / ``rotate-key``
        in another process, within ``users_check_seconds`` (users.py)."""
        failing = False
        while True:
            await asyncio.sleep(self.config.users_check_seconds)
            candidates = self._users.known_ids() | streams.users()
            try:
                change = await in_thread(watch.poll, candidates)
            except Exception as exc:
                if not failing:  # once per outage, not four times a second
                    warn_retrying(
                        log, "could not check the users table for removals and rotations", exc
                    )
                failing = True
                continue
            failing = False
            if change is None:
                continue
            self._users.revise(change)
            # A fresh tracker forgets every token it verified with an old key.
            app.use_tracker(self._tracker(secret, reader, recorder))
            for user_id in sorted(change.changed):
                closed = streams.close_user(user_id)
                log.info("user %d was removed or their key rotated: their tokens are refused "
                         "now; %d open stream(s) closed", user_id, closed)

    def _uvicorn_config(self, app: TrackingApp) -> uvicorn.Config:
        config = self.config
        uv = uvicorn.Config(
            app,
            # The hot path answers pixels, links and claims without ASGI (fastpath.py).
            http=tracking_protocol(
                bounded_protocol(config.max_url_bytes, config.max_header_bytes,
                                 config.max_headers, config.head_timeout),
                app,
            ),
            ws="websockets-sansio",
            lifespan="off",
            # Never trust X-Forwarded-For on uvicorn's say-so (by default it trusts
            # 127.0.0.1, so any local process could claim any address): the app
            # honours it only from the operator's --trusted-proxy networks.
            proxy_headers=False,
            forwarded_allow_ips="",
            server_header=False,
            access_log=False,
            log_config=None,
            ws_max_size=64 * 1024,
            ws_per_message_deflate=False,
            ws_ping_interval=config.ws_ping_interval,
            ws_ping_timeout=config.ws_ping_interval,
            timeout_graceful_shutdown=max(1, int(config.graceful_timeout)),
        )
        uv.load()
        return uv

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, commit every hit, close the store."""
        running = self._running
        if running is None:
            return
        self._running = None
        running.watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running.watching
        running.uvicorn.should_exit = True
        await running.main_loop
        await running.uvicorn.shutdown(sockets=running.sockets)
        await running.recorder.stop()
        if running.spool is not None:
            running.spool.close()
        if running.feed is not None:
            await running.feed.stop()
        running.watch.close()
        await self._team.stop()
        running.reader.close()
        running.store.close()

    async def add_user(self, name: str) -> Enrollment:
        """Create a user; returns the enrollment (its ``encode()`` is the key to hand out)."""
        state = self._state
        created = iso_utc(self._clock())
        new = await state.recorder.run(lambda s: create_user(s, name, created))
        key = state.users.add(new.id)
        return Enrollment(state.public_url, new.id, new.api_token, key)


    async def renew(self, name: str) -> Enrollment | None:
        """A new API token for the oldest user called ``name``, with its id and signing
        key kept (so the tokens in mail already sent still name it); None if none.

        For the embedded server when the keyring lost the enrollment: one user per
        profile, whatever the keyring does (docs/promises.md, "Isolation").
        """
        state = self._state

        def new_token() -> tuple[int, str] | None:
            admin = UserAdmin(open_store(self.config.db_path))
            try:
                users = admin.users_named(name)
                token = admin.new_api_token(users[0].id) if users else None
                return (users[0].id, token) if users and token else None
            finally:
                admin.close()

        found = await asyncio.to_thread(new_token)
        if found is None:
            return None
        user_id, token = found
        return Enrollment(state.public_url, user_id, token, state.users.add(user_id))

    async def reenroll(self, old: Enrollment) -> Enrollment | None:
        """``old`` with this server's public URL, if its user, API token and signing key
        are still valid here (the same user keeps the tokens of mail already sent);
        None if not."""
        state = self._state
        user = await state.reader.user_by_token_hash(hash_token(old.api_token))
        if user is None or user.id != old.user_id:
            return None
        if not hmac.compare_digest(state.users.add(user.id), old.signing_key):
            return None
        return replace(old, server_url=state.public_url)


def _close_all(stores: list[Store]) -> None:
    for store in stores:
        store.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say
    # they are TCP, and without it every keep-alive response stalls ~40 ms (Nagle
    # waiting for a delayed ACK between the header and body writes).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServerStartError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(is another server already using that port?)"
        ) from exc
    return sock
