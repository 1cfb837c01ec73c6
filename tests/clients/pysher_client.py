"""The real Pysher client (pinned in requirements.txt) against vmsd's push socket (SPEC §9),
for the integration tests: same arguments, stdin commands and JSON lines as
pusher_js_client.mjs.

usage: python3 pysher_client.py <host> <port> <app_key> <bearer_token> <channel>...

Pysher signs private channels itself only when given the app secret, which a client never
has; its own auth_endpoint support asserts on any status but 200 (killing the socket's
thread) and cannot be given a CA. So this script does what an application using Pysher
does: on every pusher:connection_established it POSTs socket_id + channel_name to
/api/v1/broadcasting/auth with `requests` and subscribes with the returned `auth`.
Pysher's own auto_sub is off: after a reconnect it would resubscribe private channels with
no auth at all (its Channel objects never keep one).

Pysher builds `wss://host:port/app/<key>?…&protocol=6` and has no path option; the URL is
set to vmsd's /pusher/app/<key> by overriding Pusher._build_url.

Environment:
  VMSD_CA                 PEM file to trust (the test's self-signed certificate), for both
                          the WebSocket (websocket-client sslopt ca_certs) and the auth POST
                          (requests verify=). Without it the system's CAs are used.
  CLIENT_TIMEOUT_SECS     exit after this long (default 30).
  CLIENT_RECONNECT_SECS   Pysher's reconnect_interval (default 10, Pysher's own).

Exit status: 0 if the client was connected at some point, 1 if it never was, 2 on bad usage.
"""

import json
import os
import queue
import ssl
import sys
import threading
import time

import pysher
import requests


def emit(line):
    # One write per line, so lines from Pysher's threads never interleave.
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def decoded(data):
    """Event data as pusher-js hands it over: parsed when it is a JSON string."""
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data


class VmsdPusher(pysher.Pusher):
    def _build_url(self, secure=True, port=None, custom_host=None):
        path = "/pusher/app/{}?client={}&version={}&protocol={}".format(
            self.key, self.client_id, pysher.pusher.VERSION, self.protocol
        )
        return "{}://{}:{}{}".format("wss" if secure else "ws", custom_host, port, path)


def main(argv):
    if len(argv) < 5:
        sys.stderr.write(
            "usage: python3 pysher_client.py <host> <port> <app_key> <bearer_token> <channel>...\n"
        )
        return 2
    host, port_text, app_key, bearer_token, *channels = argv[1:]
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError(port_text)
    except ValueError:
        sys.stderr.write("bad port: {}\n".format(port_text))
        return 2
    timeout_secs = float(os.environ.get("CLIENT_TIMEOUT_SECS", "30"))
    reconnect_secs = float(os.environ.get("CLIENT_RECONNECT_SECS", "10"))
    ca_file = os.environ.get("VMSD_CA")
    auth_url = "https://{}:{}/api/v1/broadcasting/auth".format(host, port)

    pusher = VmsdPusher(
        app_key,
        custom_host=host,
        port=port,
        secure=True,
        reconnect_interval=reconnect_secs,
        log_level=None,
    )
    connection = pusher.connection
    if ca_file:
        connection.socket_kwargs["sslopt"] = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": ca_file}

    # Work for the main thread: subscribing POSTs to the auth route, which must not block
    # the socket's reader thread.
    work = queue.Queue()
    wanted = list(dict.fromkeys(channels))
    state = {"ever_connected": False, "last": None}
    state_lock = threading.Lock()

    def report_state(new_state, **extra):
        with state_lock:
            if new_state != state["last"] or extra:
                emit(dict({"kind": "state", "state": new_state, "previous": state["last"]}, **extra))
                state["last"] = new_state

    # Pysher has no state events; its handlers are wrapped to report the changes it makes.
    # They are instance attributes set before connect(), which is when Pysher hands them to
    # websocket-client.
    original_on_error = connection._on_error
    original_on_close = connection._on_close

    def on_error(*args):
        original_on_error(*args)
        emit({"kind": "error", "type": "WebSocketError", "code": getattr(args[-1], "status_code", None),
              "error": str(args[-1])})
        report_state(connection.state)

    def on_close(*args):
        original_on_close(*args)
        code, reason = (args[1], args[2]) if len(args) >= 3 else (None, None)
        emit({"kind": "closed", "code": code, "reason": reason})
        report_state(connection.state)

    connection._on_error = on_error
    connection._on_close = on_close

    def on_connection_established(_data):
        state["ever_connected"] = True
        report_state("connected", socket_id=connection.socket_id)
        work.put(("subscribe_all", None))

    def on_pusher_error(data):
        data = decoded(data)
        code = data.get("code") if isinstance(data, dict) else None
        message = data.get("message") if isinstance(data, dict) else data
        emit({"kind": "pusher_error", "code": code, "message": message})

    connection.bind("pusher:connection_established", on_connection_established)
    connection.bind("pusher:error", on_pusher_error)

    original_event_handler = connection.event_handler

    def on_channel_frame(event_name, data, channel_name):
        if event_name == "pusher_internal:subscription_succeeded":
            emit({"kind": "subscribed", "channel": channel_name})
        elif event_name == "pusher:error":
            payload = decoded(data)
            emit({"kind": "pusher_error", "channel": channel_name,
                  "code": payload.get("code") if isinstance(payload, dict) else None,
                  "message": payload.get("message") if isinstance(payload, dict) else payload})
        elif not event_name.startswith(("pusher:", "pusher_internal:")):
            emit({"kind": "event", "channel": channel_name, "event": event_name, "data": decoded(data)})
        original_event_handler(event_name, data, channel_name)

    connection.event_handler = on_channel_frame

    def subscribe(channel_name):
        socket_id = connection.socket_id
        auth = None
        if channel_name.startswith(("private-", "presence-")):
            try:
                response = requests.post(
                    auth_url,
                    data={"socket_id": socket_id, "channel_name": channel_name},
                    headers={"Authorization": "Bearer " + bearer_token},
                    verify=ca_file if ca_file else True,
                    timeout=10,
                )
            except requests.RequestException as e:
                emit({"kind": "subscription_error", "channel": channel_name, "status": None, "error": str(e)})
                return
            if response.status_code != 200:
                emit({"kind": "subscription_error", "channel": channel_name,
                      "status": response.status_code, "error": response.text[:500]})
                return
            try:
                auth = response.json()["auth"]
            except (ValueError, KeyError, TypeError):
                emit({"kind": "subscription_error", "channel": channel_name, "status": 200,
                      "error": "no auth in: " + response.text[:500]})
                return
        # Pysher signs locally (and needs the secret) when auth is None; "" sends an empty one,
        # as pusher-js does for public channels.
        pusher.subscribe(channel_name, auth=auth if auth is not None else "")

    def read_commands():
        for line in sys.stdin:
            parts = line.split()
            if parts:
                work.put(("command", parts))
        work.put(("exit", "stdin closed"))

    threading.Thread(target=read_commands, daemon=True, name="stdin").start()

    report_state("initialized")
    report_state("connecting")
    pusher.connect()

    deadline = time.monotonic() + timeout_secs
    reason = "timeout"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            kind, item = work.get(timeout=min(remaining, 0.2))
        except queue.Empty:
            # Pysher's reconnect loop changes state without a callback; "connected" is
            # reported by the handshake handler, with the socket id.
            if connection.state not in ("initialized", "connected"):
                report_state(connection.state)
            continue
        if kind == "exit":
            reason = item
            break
        if kind == "subscribe_all":
            for channel_name in wanted:
                subscribe(channel_name)
        elif kind == "command":
            command, argument = item[0], item[1] if len(item) > 1 else None
            if command == "subscribe" and argument:
                if argument not in wanted:
                    wanted.append(argument)
                if connection.state == "connected":
                    subscribe(argument)
            elif command == "unsubscribe" and argument:
                if argument in wanted:
                    wanted.remove(argument)
                pusher.unsubscribe(argument)
            elif command == "disconnect":
                connection.disconnect(timeout=5)
            elif command == "connect":
                emit({"kind": "error", "type": "BadCommand", "code": None,
                      "error": "Pysher cannot reconnect a disconnected client"})
            else:
                emit({"kind": "error", "type": "BadCommand", "code": None, "error": " ".join(item)})

    emit({"kind": "exit", "reason": reason})
    connection.needs_reconnect = False
    connection.disconnect_called = True
    if connection.socket:
        connection.socket.close()
    return 0 if state["ever_connected"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
