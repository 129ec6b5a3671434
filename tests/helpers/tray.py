"""Fakes and real helpers for the tray tests: a recording notifier, sample records,
a private D-Bus session bus and a notification server living on it."""

from __future__ import annotations

import itertools
import queue
import selectors
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jeepney import (  # type: ignore[import-untyped]
    DBusAddress,
    MatchRule,
    new_error,
    new_method_return,
    new_signal,
)
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.threading import (  # type: ignore[import-untyped]
    DBusRouter,
    Proxy,
    open_dbus_connection,
)
from jeepney.low_level import HeaderFields  # type: ignore[import-untyped]

from mailbeacon.agent.notifications.model import AgentStatus, ConnectionState, Notification
from tests.helpers import programs

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"


def sample_notification(**changes: Any) -> Notification:
    """A human open of one email, as the agent would hand it over."""
    base = Notification(
        event=41,
        type="open",
        message_id="<q4-offer@example.com>",
        subject="Oferta Q4",
        recipient="alicja@example.pl",
        anonymous=False,
        title="Alicja opened “Oferta Q4”",
        body="alicja@example.pl · first open",
        at="2026-03-02T13:05:00+00:00",
    )
    return replace(base, **changes)


def relay_status(connection: ConnectionState = ConnectionState.CONNECTED) -> AgentStatus:
    """An agent status with the relay's address known."""
    return AgentStatus(
        connection,
        server_url="http://127.0.0.1:8025",
        relay_host="127.0.0.1",
        relay_port=2525,
        relay_user="mailbeacon",
    )


@dataclass
class Shown:
    title: str
    body: str
    on_click: Callable[[], None] | None


@dataclass
class RecordingNotifier:
    """A DesktopNotifier that keeps what it was asked to show."""

    kind: str = "recording"
    shown: list[Shown] = field(default_factory=list)
    closed: bool = False
    on_show: Callable[[Shown], None] | None = None

    def show(self, title: str, body: str, on_click: Callable[[], None] | None) -> None:
        item = Shown(title, body, on_click)
        self.shown.append(item)
        if self.on_show is not None:
            self.on_show(item)

    def close(self) -> None:
        self.closed = True


_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@contextmanager
def private_session_bus(folder: Path, timeout: float = 10.0) -> Iterator[str]:
    """A throwaway dbus-daemon with no activatable services; yields its address."""
    daemon = programs.path_of("dbus-daemon")
    config = folder / "bus.conf"
    config.write_text(_BUS_CONFIG, encoding="utf-8")
    process = subprocess.Popen(
        [daemon, f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError("dbus-daemon printed no address")
        address = process.stdout.readline().strip()
        assert address.startswith("unix:"), address
        yield address
    finally:
        process.terminate()
        process.wait(timeout)
        if process.stdout is not None:
            process.stdout.close()


class FakeNotificationServer:
    """Owns org.freedesktop.Notifications on the session bus; records every Notify."""

    def __init__(
        self,
        capabilities: tuple[str, ...] = ("actions", "body", "body-markup"),
        fail_notify: bool = False,
    ) -> None:
        self.capabilities = list(capabilities)
        self.fail_notify = fail_notify
        self.calls: list[tuple[Any, ...]] = []
        self.signatures: list[str] = []
        self._ids = itertools.count(1)
        self._requests: queue.Queue[Any] = queue.Queue()
        self._connection = open_dbus_connection("SESSION")
        self._router = DBusRouter(self._connection)
        # Catch calls before owning the name, so none can slip past.
        self._filter = self._router.filter(
            MatchRule(type="method_call", interface=BUS_NAME), queue=self._requests
        )
        owned = Proxy(message_bus, self._router, timeout=5).RequestName(BUS_NAME, 4)
        assert owned == (1,), owned  # 1: primary owner
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def invoke_action(self, notification_id: int, action: str = "default") -> None:
        """Do what a daemon does when the rep clicks the notification."""
        emitter = DBusAddress(OBJECT_PATH, interface=BUS_NAME)
        self._router.send(new_signal(emitter, "ActionInvoked", "us", (notification_id, action)))

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(5)
        self._filter.close()
        self._router.close()
        self._connection.close()

    def _serve(self) -> None:
        while (request := self._requests.get()) is not None:
            member = request.header.fields.get(HeaderFields.member)
            if member == "Notify" and not self.fail_notify:
                self.calls.append(tuple(request.body))
                self.signatures.append(request.header.fields.get(HeaderFields.signature, ""))
                reply = new_method_return(request, "u", (next(self._ids),))
            elif member == "GetCapabilities":
                reply = new_method_return(request, "as", (self.capabilities,))
            else:
                reply = new_error(request, "org.freedesktop.DBus.Error.Failed", "s", ("no",))
            self._router.send(reply)
