"""Notifications through the freedesktop service (``org.freedesktop.Notifications``).

Talks D-Bus with jeepney (a keyring dependency on Linux; absent elsewhere, then this
backend simply is not offered). Every call to the service runs on one worker thread,
so a slow or bus-activated daemon never holds up the UI; clicks ("default" action)
and the buttons of a notification that has some (``show_with_actions``: a reminder's
Open record, Write follow-up, Snooze) come back on the UI thread.
"""

from __future__ import annotations

import html
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal

try:
    from jeepney import (  # type: ignore[import-untyped]
        DBusAddress,
        MatchRule,
        new_method_call,
    )
    from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
    from jeepney.io.threading import (  # type: ignore[import-untyped]
        DBusRouter,
        Proxy,
        open_dbus_connection,
    )
    from jeepney.wrappers import unwrap_msg  # type: ignore[import-untyped]

    HAVE_JEEPNEY = True
except ImportError:  # keyring brings jeepney on Linux only
    HAVE_JEEPNEY = False

if TYPE_CHECKING:
    from mailbeacon.tray.desktop.notifiers import DesktopNotifier

log = logging.getLogger(__name__)

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
NOTIFY_SIGNATURE = "susssasa{sv}i"
APP_NAME = "MailBeacon"
DESKTOP_ENTRY = "mailbeacon"
_KEPT_CALLBACKS = 64  # clicks on older notifications than this are ignored

Action = tuple[str, Callable[[], None]]  # a button's label and what it does


class FreedesktopNotifier(QObject):
    """DesktopNotifier over the session bus; ``fallback`` (owned) shows what the service drops."""

    kind = "freedesktop"

    _clicked = Signal(object)
    _failed = Signal(str, str, object)

    def __init__(
        self,
        router: Any,
        app_icon: str = "",
        fallback: DesktopNotifier | None = None,
        reply_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self._router = router
        self.app_icon = app_icon
        self._fallback = fallback
        self._reply_timeout = reply_timeout
        self._callbacks: OrderedDict[int, dict[str, Callable[[], None]]] = OrderedDict()
        self._lock = threading.Lock()
        self._capabilities: frozenset[str] | None = None
        self._closed = False
        self._rule = MatchRule(
            type="signal", interface=BUS_NAME, member="ActionInvoked", path=OBJECT_PATH
        )
        self._signals: queue.Queue[Any] = queue.Queue()
        self._filter = router.filter(self._rule, queue=self._signals)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="mailbeacon-notify")
        self._listener = threading.Thread(
            target=self._listen, name="mailbeacon-notify-actions", daemon=True
        )
        self._clicked.connect(self._run_callback, Qt.ConnectionType.QueuedConnection)
        self._failed.connect(self._show_fallback, Qt.ConnectionType.QueuedConnection)
        self._listener.start()

    @classmethod
    def open(
        cls,
        app_icon_path: Path | None,
        fallback: DesktopNotifier | None = None,
        timeout: float = 1.0,
    ) -> FreedesktopNotifier | None:
        """Connect if the session bus has (or can start) the service, else None."""
        if not HAVE_JEEPNEY:
            log.info("jeepney is not installed: no freedesktop notifications")
            return None
        try:
            connection = open_dbus_connection("SESSION", auth_timeout=timeout)
        except Exception as exc:  # no bus, refused, auth failed: all mean "not here"
            log.info("no session D-Bus for notifications: %s", exc)
            return None
        router = DBusRouter(connection)
        try:
            bus = Proxy(message_bus, router, timeout=timeout)
            running = bool(bus.NameHasOwner(BUS_NAME)[0])
            available = running or BUS_NAME in bus.ListActivatableNames()[0]
        except Exception as exc:
            log.info("could not ask the session bus about %s: %s", BUS_NAME, exc)
            available = False
        if not available:
            router.close()
            connection.close()
            return None
        icon = app_icon_path.resolve().as_uri() if app_icon_path is not None else ""
        return cls(router, icon, fallback)

    def show(self, title: str, body: str, on_click: Callable[[], None] | None) -> None:
        """Send the notification from the worker thread; returns at once."""
        if self._closed:
            return
        self._worker.submit(self._send, title, body, on_click)

    def show_with_actions(
        self,
        title: str,
        body: str,
        on_click: Callable[[], None] | None,
        actions: Sequence[Action],
    ) -> None:
        """As ``show``, with buttons (where the server draws actions); a click on the
        notification itself still runs ``on_click``."""
        if self._closed:
            return
        self._worker.submit(self._send, title, body, on_click, tuple(actions))

    def close(self) -> None:
        """Stop the worker and listener threads, close the bus connection and the fallback."""
        self._closed = True
        if self._fallback is not None:
            self._fallback.close()
        self._signals.put(None)
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._filter.close()
        self._router.close()
        self._router.conn.close()

    # Worker thread -----------------------------------------------------------------

    def _send(
        self,
        title: str,
        body: str,
        on_click: Callable[[], None] | None,
        buttons: tuple[Action, ...] = (),
    ) -> None:
        address = DBusAddress(OBJECT_PATH, bus_name=BUS_NAME, interface=BUS_NAME)
        try:
            capabilities = self._prepare(address)
            # The summary is plain text by the spec; the body may be read as markup.
            text = html.escape(body, quote=False) if "body-markup" in capabilities else body
            actions = ["default", "Open"] if on_click is not None else []
            handlers = {"default": on_click} if on_click is not None else {}
            for number, (label, run) in enumerate(buttons):
                actions += [f"mailbeacon-{number}", label]
                handlers[f"mailbeacon-{number}"] = run
            hints = {"desktop-entry": ("s", DESKTOP_ENTRY)}
            message = new_method_call(
                address,
                "Notify",
                NOTIFY_SIGNATURE,
                (APP_NAME, 0, self.app_icon, title, text, actions, hints, -1),
            )
            reply = self._router.send_and_get_reply(message, timeout=self._reply_timeout)
            notification_id = int(unwrap_msg(reply)[0])
        except Exception as exc:  # a broken daemon must not lose the notification
            if not self._closed:
                log.warning("notification service failed (%s); showing it in the app", exc)
                self._failed.emit(title, body, on_click)
            return
        if handlers:
            with self._lock:
                self._callbacks[notification_id] = handlers
                while len(self._callbacks) > _KEPT_CALLBACKS:
                    self._callbacks.popitem(last=False)

    def _prepare(self, address: Any) -> frozenset[str]:
        """Once: subscribe to clicks and learn what the server can do."""
        if self._capabilities is None:
            Proxy(message_bus, self._router, timeout=self._reply_timeout).AddMatch(self._rule)
            reply = self._router.send_and_get_reply(
                new_method_call(address, "GetCapabilities"), timeout=self._reply_timeout
            )
            self._capabilities = frozenset(unwrap_msg(reply)[0])
            log.info("notification server capabilities: %s", sorted(self._capabilities))
        return self._capabilities

    # Listener thread ---------------------------------------------------------------

    def _listen(self) -> None:
        while True:
            message = self._signals.get()
            if message is None:
                return
            try:
                notification_id, action = message.body
            except (TypeError, ValueError):
                continue
            with self._lock:
                handlers = self._callbacks.get(int(notification_id), {})
                callback = handlers.get(str(action))
                if callback is not None:  # one action per notification
                    self._callbacks.pop(int(notification_id), None)
            if callback is not None:
                self._clicked.emit(callback)

    # UI thread -----------------------------------------------------------------------

    def _run_callback(self, callback: Callable[[], None]) -> None:
        callback()

    def _show_fallback(self, title: str, body: str, on_click: Callable[[], None] | None) -> None:
        if self._fallback is not None and not self._closed:
            self._fallback.show(title, body, on_click)
