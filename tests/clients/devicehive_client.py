"""The official DeviceHive Python client (devicehive 2.1.6 from PyPI, pinned with its
dependencies in devicehive-requirements.txt) against vmsd's DeviceHive socket (SPEC §6), used
as an application would use it: no monkeypatching, no private calls. The integration test
tests/api/devicehive_client.rs runs it and checks what it did over REST.

usage: python devicehive_client.py <wss_url> <phase> <arguments>...

Phases (the test runs them in this order, checking over REST between them):
  admin <login> <password>            an administrator: get_info, get_current_user,
                                      create_user, get_user, list_users (filters, sorting,
                                      paging), User.save (role, status, data), update_password
                                      of another account, remove; a second login from the
                                      same device (X-UUID); DeviceHiveApi one-shot calls
  user <login> <password> <new_password>
                                      a regular user: get_current_user, User.save of its own
                                      data, update_password, what it may not do; then, its
                                      access token expired, the library's 401 → refresh →
                                      authenticate → retry path
  access <access_token> <login>       DeviceHive.connect(access_token=...)
  expired <access_token>              the same with an expired token: the library raises 401
  refresh <refresh_token> <login>     DeviceHive.connect(refresh_token=...) and
                                      DeviceHiveApi(refresh_token=...)
  disabled <login> <password> <admin_access_token>
                                      a user connected with login + password is disabled by an
                                      admin (User.save, one-shot DeviceHiveApi); its next call
                                      gets 401, the library's refresh gets 401 and it raises

Environment:
  WEBSOCKET_CLIENT_CA_BUNDLE  PEM file websocket-client trusts (the test's self-signed
                              certificate); the library has no TLS option of its own.
  DH_ACCESS_TTL_SECS          the daemon's auth.client_token_ttl, in seconds: how long to wait
                              for a regular user's access token to expire.

Every library call's result is asserted here; a failed assertion or an unexpected error ends
the script with status 1 and a traceback on stderr. Each step prints one JSON line on stdout
({"step": ..., ...}) with what the test checks over REST; the last one is {"step": "done"}.
"""

import json
import os
import sys
import time

from devicehive import ApiResponseError, DeviceHive, DeviceHiveApi, Handler
from devicehive.user import User


def emit(step, **fields):
    fields["step"] = step
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def expect_error(code, call, *args, **kwargs):
    """Runs call, which must fail with a DeviceHive error `code`; returns its text."""
    try:
        call(*args, **kwargs)
    except ApiResponseError as e:
        assert e.code == code, "expected code {}, got {} ({})".format(code, e.code, e.error)
        return e.error
    raise AssertionError("expected error {} from {}".format(code, call))


class Session(Handler):
    """Runs one function with the connected Api, then disconnects."""

    def __init__(self, api, work):
        super(Session, self).__init__(api)
        self.work = work
        self.result = None

    def handle_connect(self):
        try:
            self.result = self.work(self.api)
        finally:
            self.api.disconnect()


def run(url, work, **auth):
    """DeviceHive.connect with `auth` (login+password, access_token or refresh_token and any
    websocket-client option such as header), work(api) once connected, the result back. An
    error in work (or in the library's own authentication) is raised here."""
    device_hive = DeviceHive(Session, work)
    device_hive.connect(url, **auth)
    return device_hive.handler.result


def user_fields(user):
    return {
        "id": user.id,
        "login": user.login,
        "role": user.role,
        "status": user.status,
        "data": user.data,
        "last_login": user.last_login,
        "intro_reviewed": user.intro_reviewed,
        "all_device_types_available": user.all_device_types_available,
    }


def logins(users):
    return [u.login for u in users]


ADMIN_DEVICE = {"header": {"X-UUID": "dh-admin-device"}}


def admin_phase(url, admin_login, admin_password):
    def work(api):
        info = api.get_info()
        assert info["api_version"] and info["server_timestamp"], info
        emit("info", info=info)

        me = api.get_current_user()
        assert me.login == admin_login and me.role == User.ADMINISTRATOR_ROLE, user_fields(me)
        assert me.status == User.ACTIVE_STATUS and me.all_device_types_available is True
        emit("admin_current", user=user_fields(me))

        alice = api.create_user("dh-alice", "alice-password-1", User.CLIENT_ROLE, {"team": "a"})
        assert alice.id and alice.login == "dh-alice", user_fields(alice)
        assert alice.role == User.CLIENT_ROLE and alice.status == User.ACTIVE_STATUS
        assert alice.data == {"team": "a"} and alice.last_login is None
        assert alice.intro_reviewed is False and alice.all_device_types_available is True
        bob = api.create_user("dh-bob", "bob-password-1", User.CLIENT_ROLE, None)
        assert bob.data is None and bob.role == User.CLIENT_ROLE, user_fields(bob)
        carol = api.create_user("dh-carol", "carol-password-1", User.ADMINISTRATOR_ROLE, {"x": 1})
        assert carol.role == User.ADMINISTRATOR_ROLE, user_fields(carol)
        error = expect_error(403, api.create_user, "DH-Alice", "another-password",
                             User.CLIENT_ROLE, None)
        assert error == "User with such login already exists. Please, select another one", error
        error = expect_error(400, api.create_user, "dh-short", "short", User.CLIENT_ROLE, None)
        assert error == "Password can contain only from 8 to 128 symbols!", error
        emit("created", alice=user_fields(alice), bob=user_fields(bob), carol=user_fields(carol))

        got = api.get_user(alice.id)
        assert user_fields(got) == user_fields(alice), (user_fields(got), user_fields(alice))

        everyone = api.list_users()
        assert {"dh-alice", "dh-bob", "dh-carol", admin_login} <= set(logins(everyone))
        ids = [u.id for u in everyone]
        assert ids == sorted(ids), ids
        assert all(u.all_device_types_available is True for u in everyone)
        found = logins(api.list_users(login_pattern="dh-%", sort_field="login", sort_order="DESC"))
        assert found == ["dh-carol", "dh-bob", "dh-alice"], found
        found = logins(api.list_users(login_pattern="dh-_o%"))
        assert found == ["dh-bob"], found
        found = logins(api.list_users(login="dh-bob"))
        assert found == ["dh-bob"], found
        # The library drops a filter of 0 (role 0, status 0) before sending: 1 and 2 only.
        found = logins(api.list_users(role=User.CLIENT_ROLE, sort_field="id"))
        assert found == ["dh-alice", "dh-bob"], found
        found = logins(api.list_users(login_pattern="dh-%", sort_field="id", take=1, skip=1))
        assert found == ["dh-bob"], found
        found = logins(api.list_users(login_pattern="dh-%", take=2))
        assert found == ["dh-alice", "dh-bob"], found
        error = expect_error(400, api.list_users, sort_field="name")
        assert error == "Illegal argument: name", error

        # User.save as an admin: role, status and data of other accounts.
        bob = api.get_user(bob.id)
        bob.role = User.ADMINISTRATOR_ROLE
        bob.data = {"promoted": True}
        bob.save()
        carol = api.get_user(carol.id)
        carol.status = User.DISABLED_STATUS
        carol.save()
        bob, carol = api.get_user(bob.id), api.get_user(carol.id)
        assert bob.role == User.ADMINISTRATOR_ROLE and bob.data == {"promoted": True}, user_fields(bob)
        assert carol.status == User.DISABLED_STATUS and carol.data == {"x": 1}, user_fields(carol)
        found = logins(api.list_users(login_pattern="dh-%", status=User.DISABLED_STATUS))
        assert found == ["dh-carol"], found
        emit("saved", bob=user_fields(bob), carol=user_fields(carol))

        # update_password of another account, then remove one.
        alice = api.get_user(alice.id)
        alice.update_password("alice-password-2")
        bob_id = bob.id
        bob.remove()
        assert bob.id is None and bob.login is None
        error = expect_error(404, api.get_user, bob_id)
        assert error == "User with id = {} not found".format(bob_id), error
        emit("removed", bob_id=bob_id)
        return api.token.access_token

    first_token = run(url, work, login=admin_login, password=admin_password, **ADMIN_DEVICE)

    # A second login from the same device (X-UUID on the upgrade request) replaces the
    # device's session: the first access token stops working.
    second_token = run(url, lambda api: api.token.access_token,
                       login=admin_login, password=admin_password, **ADMIN_DEVICE)
    assert second_token != first_token
    expect_error(401, run, url, lambda api: None, access_token=first_token)
    emit("admin_again", first_access_token=first_token, access_token=second_token)

    # One-shot calls (DeviceHiveApi: one socket each, left open by the library).
    one_shot = DeviceHiveApi(url, access_token=second_token)
    info = one_shot.get_info()
    assert info["rest_server_url"] and info["api_version"], info
    assert one_shot.get_current_user().login == admin_login
    found = logins(one_shot.list_users(login="dh-alice"))
    assert found == ["dh-alice"], found
    emit("one_shot", rest_server_url=info["rest_server_url"])


def user_phase(url, login, password, new_password, access_ttl):
    def work(api):
        me = api.get_current_user()
        assert me.login == login and me.role == User.CLIENT_ROLE, user_fields(me)
        assert me.data == {"team": "a"} and me.last_login is not None, user_fields(me)
        # save() sends role and status too: unchanged, they are ignored.
        me.data = {"team": "b"}
        me.save()
        assert api.get_current_user().data == {"team": "b"}
        me.update_password(new_password)
        error = expect_error(403, api.get_user, me.id)
        assert error == "Access is denied", error
        expect_error(403, api.list_users)
        expect_error(403, api.create_user, "dh-mallory", "mallory-password", User.ADMINISTRATOR_ROLE, None)
        me.role = User.ADMINISTRATOR_ROLE
        error = expect_error(403, me.save)
        assert error == "Admin permissions required for this action", error
        first_access = api.token.access_token

        # The access token runs out; the library's next call gets 401, refreshes with the
        # login's refresh token, authenticates again and repeats the call.
        time.sleep(access_ttl + 1.5)
        again = api.get_current_user()
        assert again.id == me.id and again.data == {"team": "b"}, user_fields(again)
        assert api.token.access_token != first_access
        emit("refreshed_on_401", user=user_fields(again), expired_access_token=first_access,
             access_token=api.token.access_token)

    run(url, work, login=login, password=password, header={"X-UUID": "dh-user-device"})


def access_phase(url, access_token, login):
    user = run(url, lambda api: api.get_current_user(), access_token=access_token)
    assert user.login == login, user_fields(user)
    emit("access", user=user_fields(user))


def expired_phase(url, access_token):
    error = expect_error(401, run, url, lambda api: None, access_token=access_token)
    emit("expired", error=error)


def refresh_phase(url, refresh_token, login):
    def work(api):
        return api.get_current_user(), api.token.access_token

    one_shot = DeviceHiveApi(url, refresh_token=refresh_token)
    assert one_shot.get_current_user().login == login
    # Each refresh ends the access token before it: the last one is reported.
    user, access_token = run(url, work, refresh_token=refresh_token)
    assert user.login == login, user_fields(user)
    emit("refresh", user=user_fields(user), access_token=access_token)


def disabled_phase(url, login, password, admin_token):
    def work(api):
        me = api.get_current_user()
        admin = DeviceHiveApi(url, access_token=admin_token)
        target = admin.get_user(me.id)
        target.status = User.DISABLED_STATUS
        target.save()
        assert admin.get_user(me.id).status == User.DISABLED_STATUS
        # 401 on the socket → the library refreshes → 401 again → it gives up.
        return expect_error(401, api.get_current_user)

    error = run(url, work, login=login, password=password)
    assert error == "Invalid credentials", error
    emit("disabled", error=error)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    url, phase, args = argv[1], argv[2], argv[3:]
    access_ttl = float(os.environ.get("DH_ACCESS_TTL_SECS", "3"))
    phases = {
        "admin": (2, lambda: admin_phase(url, *args)),
        "user": (3, lambda: user_phase(url, *args, access_ttl=access_ttl)),
        "access": (2, lambda: access_phase(url, *args)),
        "expired": (1, lambda: expired_phase(url, *args)),
        "refresh": (2, lambda: refresh_phase(url, *args)),
        "disabled": (3, lambda: disabled_phase(url, *args)),
    }
    if phase not in phases or len(args) != phases[phase][0]:
        sys.stderr.write(__doc__)
        return 2
    phases[phase][1]()
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
