// Rolling restart: restart a service node by node (drained from the balancer first when it
// is probed), watch each node's phase, and list the newest rollouts.
//
// Calls: GET /v1/health/services (the services to offer), GET /v1/rollouts?limit=10,
// POST /v1/rollouts {"service", "max_unavailable", "drain"}, GET /v1/rollouts/{id} every
// second while it runs.

import {h, replace, apiPath, text, dateTime, relative, badge} from '../dom.js';
import {alertBox, busy, emptyRow, field, headRow, keepFocus, messageOf, say, section, select, setOptions, showError, tableBox} from '../ui.js';
import {ApiError, isAbort} from '../api.js';

const POLL_MS = 1000;
const PHASES = {
  pending: 'waiting for its turn',
  draining: 'being taken out of the balancer',
  running: 'restarting',
  recovering: 'restarted; waiting for its probe to be healthy',
  restoring: 'being put back into the balancer',
  done: 'done',
  failed: 'failed',
};

export default {
  id: 'restart',
  title: 'Rolling restart',
  mount(page, ctx) {
    const service = select({id: 'restart-service', name: 'service', 'data-field': 'service'}, [['http', 'http']], 'http');
    const maxUnavailable = h('input', {id: 'restart-max-unavailable', name: 'max_unavailable', type: 'number', min: '1', max: '100',
      value: '1', 'data-field': 'max_unavailable'});
    const drain = h('input', {id: 'restart-drain', name: 'drain', type: 'checkbox', checked: true, 'data-field': 'drain'});
    const submit = h('button', {type: 'submit', id: 'restart-submit', class: 'primary'}, 'Restart');
    const error = alertBox({id: 'restart-error'});
    const form = h('form', {id: 'restart-form', class: 'inline-form', novalidate: true},
      error,
      h('div', {class: 'row'},
        field('Service', service),
        field('At most this many nodes out at once', maxUnavailable),
        field('Drain each node from the balancer first', drain),
        h('div', {class: 'actions'}, submit)),
      h('p', {class: 'muted'}, 'Restarts the service on every node with a role of its name, a few at a time; each node waits until its probe is healthy before the next goes. The first failure stops the rollout and leaves the remaining nodes as they are.'));

    const watchTitle = h('h2', {id: 'restart-title'}, 'Rollout');
    const progress = h('progress', {id: 'restart-progress', max: '1', value: '0', 'aria-labelledby': 'restart-title'});
    const progressText = h('span', {id: 'restart-progress-text', class: 'muted'});
    const stateText = h('strong', {id: 'restart-state', 'aria-live': 'polite'});
    const stateLine = h('p', {class: 'rollout-state'}, 'State: ', stateText);
    const message = h('p', {id: 'restart-message', class: 'muted'});
    const nodesBody = h('tbody');
    const nodesTable = h('table', {id: 'restart-nodes'}, headRow(['Node', 'Host name', 'Phase', '']), nodesBody);
    const watch = h('section', {id: 'restart-watch', class: 'card', hidden: true},
      watchTitle, h('div', {class: 'progress-row'}, progress, progressText), stateLine, message, tableBox(nodesTable));

    const listBody = h('tbody');
    const listTable = h('table', {id: 'rollouts'}, headRow(['ID', 'Service', 'State', 'Nodes done', 'Started', 'Message', '']), listBody);
    const listError = alertBox({id: 'rollouts-error'});

    replace(page, h('h1', null, 'Rolling restart'),
      section('Restart a service', form),
      watch,
      section('Newest rollouts', listError, tableBox(listTable)));

    let watching = null; // rollout id
    let timer = null;
    ctx.onLeave(() => clearTimeout(timer));

    function renderRollout(r) {
      const nodes = Array.isArray(r.nodes) ? r.nodes : [];
      const done = nodes.filter((n) => n.state === 'done').length;
      watch.hidden = false;
      watch.dataset.rolloutId = String(r.id);
      watchTitle.textContent = `Rollout ${text(r.id)}: restart ${text(r.service)}, ${text(r.batch)} at a time${r.drain ? ', draining first' : ''}`;
      progress.max = Math.max(nodes.length, 1);
      progress.value = done;
      progressText.textContent = `${done} of ${nodes.length} node${nodes.length === 1 ? '' : 's'} done`;
      const state = text(r.state);
      stateLine.className = `rollout-state ${state === 'failed' ? 'is-failed' : state === 'done' ? 'is-done' : ''}`;
      stateText.textContent = state === 'failed' ? `failed: ${text(r.message) || 'no reason given'}` : state;
      message.textContent = state === 'done' ? text(r.message) : '';
      watch.dataset.state = state;
      replace(nodesBody, nodes.length ? nodes.map((n) => h('tr', {'data-node-id': text(n.id), 'data-phase': text(n.state)},
        h('td', {class: 'num'}, text(n.id)),
        h('td', null, text(n.hostname)),
        h('td', null, badge(n.state)),
        h('td', {class: 'muted'}, PHASES[n.state] || ''))) : emptyRow(4, 'No node.'));
    }

    async function poll(id) {
      clearTimeout(timer);
      if (!ctx.alive() || watching !== id) return;
      let r;
      try {
        r = await ctx.api.get(apiPath(['v1', 'rollouts', id]));
      } catch (e) {
        if (!ctx.alive() || isAbort(e) || (e instanceof ApiError && e.status === 401)) return;
        say(error, `Could not follow rollout ${id}: ${messageOf(e)} Trying again…`);
        timer = setTimeout(() => poll(id), POLL_MS * 3);
        return;
      }
      if (!ctx.alive() || watching !== id) return;
      renderRollout(r);
      if (r.state === 'running') {
        timer = setTimeout(() => poll(id), POLL_MS);
      } else {
        loadList().catch(() => {});
      }
    }

    function follow(r) {
      watching = String(r.id);
      renderRollout(r);
      if (r.state === 'running') timer = setTimeout(() => poll(watching), POLL_MS);
    }

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      say(error, '');
      const body = {service: service.value, max_unavailable: Number(maxUnavailable.value)};
      if (!maxUnavailable.value.trim() || !Number.isInteger(body.max_unavailable) || body.max_unavailable < 1) {
        say(error, 'At most how many nodes may be out at once? Enter a whole number from 1.');
        maxUnavailable.setAttribute('aria-invalid', 'true');
        maxUnavailable.focus();
        return;
      }
      maxUnavailable.removeAttribute('aria-invalid');
      if (!drain.checked) body.drain = false;
      busy(submit, async () => {
        try {
          const r = await ctx.api.post('/v1/rollouts', body);
          follow(r);
          loadList().catch(() => {});
        } catch (e) {
          showError(error, e, form);
        }
      }, 'Starting…');
    });

    function renderList(rollouts) {
      if (rollouts.length === 0) {
        replace(listBody, emptyRow(7, 'No rollout yet.'));
        return;
      }
      replace(listBody, rollouts.map((r) => {
        const nodes = Array.isArray(r.nodes) ? r.nodes : [];
        const show = h('button', {type: 'button', class: 'small secondary', 'data-action': 'watch', 'data-rollout-id': text(r.id)}, 'Show');
        show.addEventListener('click', () => {
          follow(r);
          poll(String(r.id));
          watch.scrollIntoView({block: 'start'});
        });
        return h('tr', {'data-rollout-id': text(r.id)},
          h('td', {class: 'num'}, text(r.id)),
          h('td', null, text(r.service)),
          h('td', null, badge(r.state)),
          h('td', null, `${nodes.filter((n) => n.state === 'done').length} / ${nodes.length}`),
          h('td', {title: dateTime(r.created_at_ms)}, relative(r.created_at_ms)),
          h('td', null, text(r.message)),
          h('td', null, show));
      }));
    }

    async function loadList() {
      try {
        const answer = await ctx.api.get(apiPath(['v1', 'rollouts'], {limit: 10}));
        if (!ctx.alive()) return [];
        const rollouts = Array.isArray(answer && answer.rollouts) ? answer.rollouts : [];
        say(listError, '');
        keepFocus(listTable, () => renderList(rollouts));
        return rollouts;
      } catch (e) {
        if (!ctx.alive() || isAbort(e) || (e instanceof ApiError && e.status === 401)) return [];
        say(listError, `Could not list the rollouts: ${messageOf(e)}`);
        return [];
      }
    }

    async function loadServices() {
      try {
        const answer = await ctx.api.get('/v1/health/services');
        const names = new Set(['http']);
        for (const s of Array.isArray(answer && answer.services) ? answer.services : []) if (s && s.service) names.add(String(s.service));
        if (ctx.alive()) setOptions(service, [...names].sort().map((n) => [n, n]), service.value || 'http');
      } catch (e) {
        if (!ctx.alive() || isAbort(e) || (e instanceof ApiError && e.status === 401)) return;
        say(error, `Could not list the probed services (${messageOf(e)}); "http" is offered.`);
      }
    }

    Promise.all([loadServices(), loadList()]).then(([, rollouts]) => {
      if (!ctx.alive()) return;
      const running = rollouts.find((r) => r.state === 'running');
      if (running && watching === null) follow(running);
      ctx.ready();
    }).catch(() => {});
  },
};
