/**
 * The dashboard's page (docs/DESIGN.md §26): reads the cluster once, then follows the event
 * stream — a migration event updates that migration (its progress and phase timeline) at
 * once; other events, and a slow timer for ages and sizes, read the cluster again.
 * Operations ask for confirmation (confirm dialog), then call the API.
 */
import { h, render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { MIGRATION_PHASES } from './protocol.js';
import { confirmation, recordSteps } from './view-model.js';
import { followEvents, readCluster, send } from './api.js';
import { Applications, ConfirmDialog, Datasets, EventFeed, Migrations, Nodes } from './views.js';

const html = htm.bind(h);
/** Ages, lags and sizes are read again this often even when no event comes. */
const REFRESH_MS = 5000;
/** After a failed read, the next one comes this much sooner than the timer's. */
const RETRY_MS = 1000;
/** An event starts a read of the cluster this much later (events coming meanwhile join it). */
const SETTLE_MS = 250;
const FEED_LENGTH = 200;

function App() {
  const [cluster, setCluster] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [steps, setSteps] = useState(() => new Map());
  const [feed, setFeed] = useState([]);
  const [stream, setStream] = useState('connecting');
  const [pending, setPending] = useState(null);
  const [notice, setNotice] = useState(null);
  const [now, setNow] = useState(Date.now());
  const timer = useRef(null);
  const retry = useRef(null);
  /** The last phase the feed showed of each migration. */
  const phases = useRef(new Map());

  const reload = useCallback(async () => {
    try {
      const next = await readCluster();
      setCluster(next);
      setSteps((old) => {
        const out = new Map(old);
        for (const m of next.migrations) out.set(m.id, recordSteps(out.get(m.id) ?? [], m));
        return out;
      });
      setLoadError(null);
    } catch (err) {
      setLoadError(err.message);
      retry.current ??= setTimeout(() => {
        retry.current = null;
        void reload();
      }, RETRY_MS);
    }
    setNow(Date.now());
  }, []);

  // At most one read per SETTLE_MS however many events come (a move posts many steps).
  const soon = useCallback(() => {
    if (timer.current !== null) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      void reload();
    }, SETTLE_MS);
  }, [reload]);

  useEffect(() => {
    void reload();
    const every = setInterval(reload, REFRESH_MS);
    const stop = followEvents((type, data) => {
      // The feed keeps what happened to things: a migration's steps (not each round of a
      // phase), nodes, replicas; a new configuration version shows in the tables.
      const repeated = type === 'migration' && phases.current.get(data.id) === data.phase;
      if (type === 'migration') phases.current.set(data.id, data.phase);
      if (type !== 'configuration' && !repeated) setFeed((old) => [{ at: data.at ?? Date.now(), type, data }, ...old].slice(0, FEED_LENGTH));
      if (type === 'migration') {
        // The record as it is now: shown at once, without waiting for the next read.
        setSteps((old) => new Map(old).set(data.id, recordSteps(old.get(data.id) ?? [], data)));
        setCluster((old) => (old === null ? old : { ...old, migrations: [data, ...old.migrations.filter((m) => m.id !== data.id)] }));
      }
      soon();
    }, setStream);
    return () => {
      clearInterval(every);
      clearTimeout(timer.current);
      clearTimeout(retry.current);
      stop();
    };
  }, [reload, soon]);

  const ask = (op) => setPending({ op, ...confirmation(op) });
  const dismiss = useCallback(() => setPending(null), []);
  const confirm = async () => {
    const { method, path, body, op } = pending;
    setPending(null);
    try {
      await send(method, path, body);
      setNotice({ kind: 'ok', text: `${op.kind} requested` });
    } catch (err) {
      setNotice({ kind: 'error', text: `${op.kind} refused: ${err.message}` });
    }
    soon();
  };

  if (cluster === null) return html`<p class="loading">${loadError ? `Cannot read the cluster: ${loadError}` : 'Loading the cluster…'}</p>`;
  return html`
    <header>
      <h1>drover</h1>
      <span class=${`stream ${stream}`} data-testid="stream">events: ${stream}</span>
      ${loadError && html`<span class="error">last read failed: ${loadError}</span>`}
    </header>
    ${notice && html`<p class=${`notice ${notice.kind}`} role="status" onClick=${() => setNotice(null)}>${notice.text}</p>`}
    <main>
      <${Nodes} nodes=${cluster.nodes} apps=${cluster.applications} now=${now} ask=${ask} />
      <${Applications} apps=${cluster.applications} configs=${cluster.configs} nodes=${cluster.nodes} ask=${ask} />
      <${Migrations} migrations=${cluster.migrations} steps=${steps} nodes=${cluster.nodes} phases=${MIGRATION_PHASES} ask=${ask} />
      <${Datasets} datasets=${cluster.datasets} nodes=${cluster.nodes} />
      <${EventFeed} feed=${feed} nodes=${cluster.nodes} />
    </main>
    ${pending && html`<${ConfirmDialog} question=${pending.question} onConfirm=${confirm} onCancel=${dismiss} />`}
  `;
}

render(html`<${App} />`, document.getElementById('app'));
