"""The console's administrators and sessions on both back ends (the ``database``
fixture), and its login limit with an injected clock."""

from __future__ import annotations

import pytest

from mailbeacon.server.admin import accounts
from mailbeacon.server.admin.limits import LoginLimiter
from mailbeacon.server.config import Database
from mailbeacon.server.stores import open_store

PASSWORD = "a long enough password"


def test_set_up_once_log_in_and_sessions_expire(database: Database) -> None:
    store = open_store(database)
    try:
        assert not accounts.has_admin(store)
        token = accounts.add_admin(store, "olga", 1000.0, "2026-01-01T00:00:00Z")
        assert accounts.has_admin(store)
        assert accounts.setup_name(store, token, 1000.0) == "olga"
        assert accounts.setup_name(store, token, 1000.0 + accounts.SETUP_SECONDS) is None
        with pytest.raises(accounts.AdminError, match="at least 12"):
            accounts.complete_setup(store, token, "short", 1001.0)
        assert accounts.complete_setup(store, token, PASSWORD, 1001.0) == "olga"
        with pytest.raises(accounts.AdminError, match="used already"):
            accounts.complete_setup(store, token, PASSWORD, 1002.0)
        stored = store.rows("SELECT password_hash FROM admins")[0][0]
        assert str(stored).startswith("$argon2id$")  # never the password itself
        admin_id = accounts.verify_login(store, "olga", PASSWORD)
        assert admin_id is not None
        assert accounts.verify_login(store, "olga", "wrong password!") is None
        assert accounts.verify_login(store, "nobody", PASSWORD) is None
        cookie, session = accounts.open_session(store, admin_id, 2000.0)
        assert accounts.find_session(store, cookie, 2001.0) == session
        assert accounts.find_session(store, cookie, 2000.0 + accounts.SESSION_SECONDS) is None
        assert accounts.find_session(store, "forged", 2001.0) is None
        accounts.close_session(store, cookie)
        assert accounts.find_session(store, cookie, 2001.0) is None
    finally:
        store.close()


def test_the_login_limit_holds_an_address_or_a_name_for_the_window() -> None:
    now = [0.0]
    limiter = LoginLimiter(clock=lambda: now[0], max_failures=3, window=60.0)
    for _ in range(3):
        assert limiter.wait_seconds("ip:a", "name:olga") == 0
        limiter.failed("ip:a", "name:olga")
    assert limiter.wait_seconds("ip:b", "name:olga") == 60.0  # the name, from anywhere
    assert limiter.wait_seconds("ip:a", "name:other") == 60.0  # the address, any name
    assert limiter.wait_seconds("ip:b", "name:other") == 0
    now[0] = 61.0
    assert limiter.wait_seconds("ip:a", "name:olga") == 0
