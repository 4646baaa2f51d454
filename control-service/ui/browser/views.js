/**
 * The dashboard's sections, as preact components written with htm (no build step). They
 * show what view-model.js computes; an operation button calls `ask(op)`, and the page asks
 * for confirmation before anything is sent.
 */
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { applicationRows, cancellable, datasetRows, eventLine, isTerminal, nodeName, nodeRows, progressOf, timeline } from './view-model.js';

const html = htm.bind(h);

function Section({ title, id, children }) {
  return html`<section id=${id}><h2>${title}</h2>${children}</section>`;
}

export function Nodes({ nodes, apps, now, ask }) {
  const rows = nodeRows(nodes, apps, now);
  return html`<${Section} title="Nodes" id="nodes">
    <table>
      <thead><tr><th>node</th><th>address</th><th>state</th><th>last seen</th><th>labels</th><th>applications</th><th>scheduling</th><th></th></tr></thead>
      <tbody>
        ${rows.map(
          (n) => html`<tr data-node=${n.name} key=${n.uuid}>
            <td>${n.name}</td><td>${n.host}</td><td class=${`state ${n.state}`}>${n.state}</td><td>${n.lastSeen}</td>
            <td class="labels">${n.labels}</td><td>${n.applications.join(', ') || '—'}</td><td>${n.scheduling}</td>
            <td class="ops">
              ${n.scheduling === 'schedulable'
                ? html`<button onClick=${() => ask({ kind: 'cordon', node: n.name, uuid: n.uuid })}>Cordon</button>`
                : html`<button onClick=${() => ask({ kind: 'uncordon', node: n.name, uuid: n.uuid })}>Uncordon</button>`}
              ${n.scheduling !== 'draining' && html`<button onClick=${() => ask({ kind: 'drain', node: n.name, uuid: n.uuid })}>Drain</button>`}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
  <//>`;
}

function MoveControl({ app, ask }) {
  const [to, setTo] = useState('');
  const target = app.targets.find((t) => t.uuid === to) ?? app.targets[0];
  if (app.moving) return html`<span class="muted">moving…</span>`;
  if (!target) return html`<span class="muted">no other node</span>`;
  return html`<select aria-label=${`move ${app.name} to`} value=${target.uuid} onChange=${(e) => setTo(e.currentTarget.value)}>
      ${app.targets.map((t) => html`<option value=${t.uuid}>${t.name}</option>`)}
    </select>
    <button onClick=${() => ask({ kind: 'move', app: app.name, from: app.node, to: target.name, toUuid: target.uuid })}>Move</button>`;
}

export function Applications({ apps, configs, nodes, ask }) {
  const rows = applicationRows(apps, configs, nodes);
  return html`<${Section} title="Applications" id="applications">
    <table>
      <thead><tr><th>application</th><th>project</th><th>node</th><th>state</th><th>health</th><th>ports</th><th>replicas (lag)</th><th>move to</th></tr></thead>
      <tbody>
        ${rows.map(
          (a) => html`<tr data-app=${a.name} key=${a.name}>
            <td>${a.name}${a.problem && html`<div class="problem">${a.problem}</div>`}</td><td>${a.project}</td><td class="node">${a.node}</td>
            <td>${a.state}</td><td class=${`health ${a.health}`}>${a.health}</td><td>${a.ports}</td>
            <td>${a.replicas.length ? a.replicas.map((r) => html`<div>${r}</div>`) : '—'}</td>
            <td class="ops"><${MoveControl} app=${a} ask=${ask} /></td>
          </tr>`,
        )}
      </tbody>
    </table>
  <//>`;
}

function Migration({ m, steps, nodes, phases, ask }) {
  const progress = progressOf(m);
  const line = timeline(phases, steps, m);
  return html`<li class=${`migration ${m.phase}`} data-migration=${m.id} data-phase=${m.phase}>
    <div class="title">
      <strong>${m.failover ? 'failover' : 'move'} ${m.application ?? 'dataset'}</strong>
      ${' '}${nodeName(nodes, m.from)} → ${nodeName(nodes, m.to)}
      <span class="phase">${m.phase}</span>
      ${cancellable(m) && html`<button onClick=${() => ask({ kind: 'cancel', id: m.id, app: m.application })}>Cancel</button>`}
    </div>
    <div class="bar" role="progressbar" aria-valuenow=${progress.percent} aria-valuemin="0" aria-valuemax="100"><div style=${{ width: `${progress.percent}%` }}></div></div>
    <div class="progress">${progress.label}</div>
    <ol class="timeline">
      ${line.map((s) => html`<li class=${s.status}>${s.phase}${s.took && html`<small> ${s.took}</small>`}</li>`)}
    </ol>
    ${m.error && html`<div class="problem">${m.error}</div>`}
  </li>`;
}

export function Migrations({ migrations, steps, nodes, phases, ask }) {
  // Running first, then the most recent ended ones.
  const sorted = [...migrations].sort((a, b) => Number(isTerminal(a.phase)) - Number(isTerminal(b.phase)) || b.updated_at - a.updated_at).slice(0, 20);
  return html`<${Section} title="Migrations and failovers" id="migrations">
    ${sorted.length === 0
      ? html`<p class="muted">none yet</p>`
      : html`<ul class="migrations">${sorted.map((m) => html`<${Migration} key=${m.id} m=${m} steps=${steps.get(m.id) ?? []} nodes=${nodes} phases=${phases} ask=${ask} />`)}</ul>`}
  <//>`;
}

export function Datasets({ datasets, nodes }) {
  const rows = datasetRows(datasets, nodes);
  return html`<${Section} title="Datasets" id="datasets">
    <table>
      <thead><tr><th>dataset</th><th>mounted by</th><th>primary</th><th>replicas</th><th>size</th><th>snapshots</th></tr></thead>
      <tbody>
        ${rows.map((d) => html`<tr key=${d.id} title=${d.id}><td>${d.name}</td><td>${d.applications}</td><td>${d.primary}</td><td>${d.replicas}</td><td>${d.size}</td><td>${d.snapshots}</td></tr>`)}
      </tbody>
    </table>
  <//>`;
}

export function EventFeed({ feed, nodes }) {
  // Lines are written when shown, with the nodes known now (a node may report after its first event).
  return html`<${Section} title="Events" id="events">
    <ol class="feed">
      ${feed.map((e) => html`<li class=${`event-${e.type}`}><time>${new Date(e.at).toLocaleTimeString()}</time> ${eventLine(e.type, e.data, nodes)}</li>`)}
    </ol>
  <//>`;
}

export function ConfirmDialog({ question, onConfirm, onCancel }) {
  // Focus on Confirm (Enter confirms), Escape goes back.
  const confirm = useRef(null);
  useEffect(() => {
    confirm.current?.focus();
    const onKey = (e) => e.key === 'Escape' && onCancel();
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [onCancel]);
  return html`<div class="overlay">
    <div role="dialog" aria-modal="true" aria-labelledby="confirm-question">
      <p id="confirm-question">${question}</p>
      <button class="primary" ref=${confirm} onClick=${onConfirm}>Confirm</button>
      <button onClick=${onCancel}>Back</button>
    </div>
  </div>`;
}
