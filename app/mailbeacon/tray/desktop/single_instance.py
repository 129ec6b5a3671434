"""One running tray per profile: a second launch asks the first to show itself."""

from __future__ import annotations

import getpass
import hashlib
import logging
import os

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from mailbeacon.core.profile import Profile

log = logging.getLogger(__name__)

SHOW = b"show\n"


def instance_name(profile: Profile) -> str:
    """The local socket name of a profile's tray: one per user and profile folder."""
    user = str(os.getuid()) if hasattr(os, "getuid") else getpass.getuser()
    key = f"{user}\0{profile.config_dir.resolve()}".encode()
    return "mailbeacon-" + hashlib.sha256(key).hexdigest()[:20]


class SingleInstance(QObject):
    """Owns the profile's local socket; ``showRequested`` fires when another launch knocks."""

    showRequested = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server: QLocalServer | None = None
        self._clients: list[QLocalSocket] = []

    def acquire(self, timeout_ms: int = 500) -> bool:
        """True if this process is now the profile's tray; False if one already runs
        (it was asked to show itself)."""
        if self._knock(timeout_ms):
            return False
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # Either another launch won the race, or a crashed run left its socket file.
            if self._knock(timeout_ms):
                return False
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                log.warning("single-instance guard failed: %s", server.errorString())
                return True
        server.newConnection.connect(self._accept)
        self._server = server
        return True

    def close(self) -> None:
        """Give the name up."""
        for socket in list(self._clients):
            self._drop(socket)
        if self._server is not None:
            self._server.close()
            self._server = None

    def _knock(self, timeout_ms: int) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(SHOW)
        socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        if socket.state() != QLocalSocket.LocalSocketState.UnconnectedState:
            socket.waitForDisconnected(timeout_ms)
        return True

    def _accept(self) -> None:
        server = self._server
        while server is not None and (socket := server.nextPendingConnection()) is not None:
            self._clients.append(socket)
            socket.readyRead.connect(self._read)
            socket.disconnected.connect(self._read)
        self._read()

    def _read(self) -> None:
        for socket in list(self._clients):
            while socket.canReadLine():
                if bytes(socket.readLine().data()) == SHOW:
                    self.showRequested.emit()
            if socket.state() == QLocalSocket.LocalSocketState.UnconnectedState:
                self._drop(socket)

    def _drop(self, socket: QLocalSocket) -> None:
        self._clients.remove(socket)
        socket.readyRead.disconnect(self._read)
        socket.disconnected.disconnect(self._read)
        socket.abort()
        socket.deleteLater()
