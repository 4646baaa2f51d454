/**
 * The page's calls to the control service, on the page's own origin (so over the same
 * mutual TLS as every API client): JSON reads, the operations' writes, and the event
 * stream (`GET /v1/drover/events`, read as it is, never changed).
 */

/** Tries of a read whose request failed without an answer (fetch's TypeError). */
const READ_ATTEMPTS = 4;

/**
 * GET `path` → its JSON; throws an Error with the service's description. A read that got no
 * answer is tried again a few times, soon: browsers abort requests in flight when the host's
 * addresses change (Chromium's ERR_NETWORK_CHANGED), which a host running containers does
 * often. Reads only — a write is never repeated.
 */
export async function read(path) {
  for (let attempt = 1; ; attempt++) {
    let answer;
    try {
      answer = await fetch(path, { headers: { accept: 'application/json' } });
    } catch (err) {
      if (attempt >= READ_ATTEMPTS) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      continue;
    }
    if (!answer.ok) throw new Error(await describe(answer));
    return answer.json();
  }
}

/** Sends an operation (method, path, JSON body or null); answers its JSON. */
export async function send(method, path, body) {
  const answer = await fetch(path, {
    method,
    headers: body === null ? {} : { 'content-type': 'application/json' },
    body: body === null ? undefined : JSON.stringify(body),
  });
  if (!answer.ok) throw new Error(await describe(answer));
  return answer.json();
}

async function describe(answer) {
  try {
    const body = await answer.json();
    return [body.description, ...(body.errors ?? [])].filter(Boolean).join(' ');
  } catch {
    return `${answer.status} ${answer.statusText}`;
  }
}

/** Everything the page shows, read at once. */
export async function readCluster() {
  const [nodes, applications, configs, datasets, migrations] = await Promise.all([
    read('/v1/state/nodes'),
    read('/v1/drover/applications'),
    read('/v1/configuration/containers'),
    read('/v1/drover/datasets'),
    read('/v1/drover/migrations'),
  ]);
  return { nodes, applications, configs, datasets, migrations };
}

/** Follows the event stream; `onEvent(type, data)` per event; the browser reconnects by itself (Last-Event-ID). */
export function followEvents(onEvent, onState) {
  const source = new EventSource('/v1/drover/events');
  for (const type of ['configuration', 'node', 'migration', 'replication', 'security']) {
    source.addEventListener(type, (e) => onEvent(type, JSON.parse(e.data)));
  }
  source.onopen = () => onState('live');
  source.onerror = () => onState(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
  return () => source.close();
}
