// The real pusher-js client (Node build, pinned in package.json) against vmsd's push socket
// (SPEC §9), for the integration tests: it connects the way an AIPIX web client does,
// authorizes private channels through POST /api/v1/broadcasting/auth, and reports every
// observable thing as one JSON line on stdout.
//
// usage: node pusher_js_client.mjs <host> <port> <app_key> <bearer_token> <channel>...
//
// Environment:
//   VMSD_CA             PEM file to trust (the test's self-signed certificate). pusher-js
//                       passes no TLS options to its WebSocket or XHR, so the only way to
//                       trust a certificate is Node's NODE_EXTRA_CA_CERTS, read at start-up:
//                       the script re-runs itself with it set. Setting NODE_EXTRA_CA_CERTS
//                       directly works too.
//   CLIENT_TIMEOUT_SECS exit after this long (default 30).
//
// stdin: the script runs until stdin closes (or the timeout). Lines on stdin are commands:
// `subscribe <channel>`, `unsubscribe <channel>`, `disconnect`, `connect`.
//
// Exit status: 0 if the client was connected at some point, 1 if it never was, 2 on bad usage.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

const args = process.argv.slice(2);
if (args.length < 4) {
  process.stderr.write(
    'usage: node pusher_js_client.mjs <host> <port> <app_key> <bearer_token> <channel>...\n',
  );
  process.exit(2);
}

const ca = process.env.VMSD_CA;
if (ca && process.env.NODE_EXTRA_CA_CERTS !== ca) {
  // NODE_EXTRA_CA_CERTS only counts when set before Node starts.
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], {
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: ca },
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  // The parent only waits: ending it must end the child too.
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => child.kill(sig));
  }
} else {
  await run(args);
}

async function run([host, portText, appKey, bearerToken, ...channels]) {
  const port = Number(portText);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    process.stderr.write(`bad port: ${portText}\n`);
    process.exit(2);
  }
  const { default: Pusher } = await import('pusher-js');

  const timeoutSecs = Number(process.env.CLIENT_TIMEOUT_SECS || 30);
  let everConnected = false;

  const pusher = new Pusher(appKey, {
    // Required since pusher-js 8.0 although wsHost overrides where it points.
    cluster: 'vmsd',
    wsHost: host,
    wsPort: port,
    wssPort: port,
    wsPath: '/pusher',
    forceTLS: true,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      endpoint: `https://${host}:${port}/api/v1/broadcasting/auth`,
      transport: 'ajax',
      headers: { Authorization: `Bearer ${bearerToken}` },
    },
  });

  // The constructor has already started connecting: report where it stands.
  emit({ kind: 'state', state: pusher.connection.state, previous: null });
  pusher.connection.bind('state_change', ({ previous, current }) => {
    const line = { kind: 'state', state: current, previous };
    if (current === 'connected') {
      everConnected = true;
      line.socket_id = pusher.connection.socket_id;
      watchClose();
    }
    emit(line);
  });

  // The close code reaches pusher-js's manager only as an error; the transport's own
  // `closed` event has code and reason, so the tests can tell a close from an error frame.
  function watchClose() {
    const transport = pusher.connection.connection && pusher.connection.connection.transport;
    if (!transport) return;
    transport.bind('closed', (close) => {
      emit({
        kind: 'closed',
        code: close ? close.code : null,
        reason: close ? close.reason : null,
      });
    });
  }

  pusher.connection.bind('error', (error) => {
    const code =
      (error && error.data && error.data.code) ??
      (error && error.error && error.error.data && error.error.data.code) ??
      null;
    emit({ kind: 'error', type: error && error.type, code, error: describe(error) });
  });

  pusher.connection.bind('message', (message) => {
    if (message.event === 'pusher:error' && !message.channel) {
      const data = message.data || {};
      emit({ kind: 'pusher_error', code: data.code ?? null, message: data.message ?? null });
    }
  });

  function subscribe(name) {
    const channel = pusher.subscribe(name);
    channel.bind('pusher:subscription_succeeded', () => {
      emit({ kind: 'subscribed', channel: name });
    });
    channel.bind('pusher:subscription_error', (error) => {
      emit({
        kind: 'subscription_error',
        channel: name,
        status: (error && error.status) ?? null,
        error: describe(error),
      });
    });
    channel.bind_global((event, data) => {
      if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return;
      emit({ kind: 'event', channel: name, event, data });
    });
  }

  for (const name of channels) subscribe(name);

  function finish(reason) {
    emit({ kind: 'exit', reason });
    pusher.disconnect();
    process.exit(everConnected ? 0 : 1);
  }

  const commands = createInterface({ input: process.stdin });
  commands.on('line', (line) => {
    const [command, argument] = line.trim().split(/\s+/, 2);
    if (command === 'subscribe' && argument) subscribe(argument);
    else if (command === 'unsubscribe' && argument) pusher.unsubscribe(argument);
    else if (command === 'disconnect') pusher.disconnect();
    else if (command === 'connect') pusher.connect();
    else if (command) emit({ kind: 'error', type: 'BadCommand', code: null, error: line });
  });
  commands.on('close', () => finish('stdin closed'));
  setTimeout(() => finish('timeout'), timeoutSecs * 1000);
}

function describe(value) {
  if (value === undefined || value === null) return null;
  if (value instanceof Error) return value.message;
  try {
    return JSON.parse(
      JSON.stringify(value, (_, v) => (v instanceof Error ? v.message : v)),
    );
  } catch {
    return String(value);
  }
}
