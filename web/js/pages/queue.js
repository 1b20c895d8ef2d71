// Command queue: the newest commands with each node's delivery; retry or skip failed ones.
//
// Calls: GET /v1/commands?limit=50[&state=] (every 5 s), GET /v1/nodes?all=1 (host names),
// POST /v1/deliveries/{id}/retry, POST /v1/deliveries/{id}/skip.

import {h, replace, apiPath, text, dateTime, relative, badge} from '../dom.js';
import {alertBox, busy, emptyRow, headRow, keepFocus, messageOf, say, select, showError, statusBox, tableBox} from '../ui.js';
import {ApiError, isAbort} from '../api.js';

const REFRESH_MS = 5000;
const LIMIT = 50;
const STATES = [['', 'any state'], ['pending', 'pending'], ['running', 'running'], ['done', 'done'], ['failed', 'failed'], ['skipped', 'skipped']];

let chosenState = '';

export default {
  id: 'queue',
  title: 'Command queue',
  mount(page, ctx) {
    const error = alertBox({id: 'queue-error'});
    const status = statusBox({id: 'queue-status'});
    const filter = select({id: 'queue-state', name: 'state'}, STATES, chosenState);
    const refresh = h('button', {type: 'button', id: 'queue-refresh', class: 'secondary'}, 'Refresh');
    const body = h('tbody');
    const table = h('table', {id: 'commands'},
      h('caption', {class: 'visually-hidden'}, 'Commands, newest first'),
      headRow(['ID', 'Kind', 'Target', 'Ordering key', 'Created', 'Deliveries']), body);
    const note = h('p', {class: 'muted', id: 'queue-note'});
    const open = new Set(); // keys of the <details> the user unfolded
    let names = new Map();

    const controls = h('form', {class: 'inline-form row', id: 'queue-filter'},
      h('div', {class: 'field'}, h('label', {for: 'queue-state'}, 'Show commands with a delivery that is'), filter),
      h('div', {class: 'actions'}, refresh));
    controls.addEventListener('submit', (event) => event.preventDefault());
    filter.addEventListener('change', () => {
      chosenState = filter.value;
      load().catch(() => {});
    });
    refresh.addEventListener('click', () => busy(refresh, () => load().catch(() => {}), 'Refreshing…'));

    replace(page, h('h1', null, 'Command queue'), error, status, controls, tableBox(table), note);

    // <details> that stays unfolded across refreshes.
    function folded(key, props, summary, content) {
      const node = h('details', {...props, open: open.has(key)}, h('summary', null, summary), h('pre', null, content));
      node.addEventListener('toggle', () => {
        if (node.open) open.add(key);
        else open.delete(key);
      });
      return node;
    }

    function delivery(d) {
      const id = String(d.id);
      const output = folded(`d${id}`, {class: 'output', 'data-delivery-id': id}, d.output ? 'Output' : 'Output (none)', text(d.output));
      let buttons = null;
      if (d.state === 'failed') {
        const retry = h('button', {type: 'button', class: 'small primary', 'data-action': 'retry', 'data-delivery-id': id}, 'Retry');
        const skip = h('button', {type: 'button', class: 'small secondary', 'data-action': 'skip', 'data-delivery-id': id}, 'Skip');
        retry.addEventListener('click', () => act(retry, 'retry', d));
        skip.addEventListener('click', () => {
          if (window.confirm(`Skip delivery ${id} on node ${d.node_id}? The node never applies this command, and the next command with key "${text(d.ordering_key)}" goes ahead.`)) act(skip, 'skip', d);
        });
        buttons = h('span', {class: 'buttons'}, retry, skip);
      }
      const node = names.get(String(d.node_id));
      const when = d.state === 'pending' && d.next_attempt_at_ms ? `next try ${relative(d.next_attempt_at_ms)}`
        : d.finished_at_ms ? `finished ${relative(d.finished_at_ms)}` : d.started_at_ms ? `started ${relative(d.started_at_ms)}` : '';
      return h('li', {class: 'delivery', 'data-delivery-id': id, 'data-state': text(d.state)},
        h('span', {class: 'delivery-node'}, `node ${text(d.node_id)}${node ? ` (${node})` : ''}`),
        badge(d.state),
        h('span', {class: 'muted small'}, `${text(d.attempts)} attempt${Number(d.attempts) === 1 ? '' : 's'}${when ? ', ' + when : ''}`),
        buttons, output);
    }

    async function act(button, verb, d) {
      await busy(button, async () => {
        try {
          await ctx.api.post(apiPath(['v1', 'deliveries', d.id, verb]), {});
          say(error, '');
          say(status, verb === 'retry' ? `Delivery ${d.id} runs again on node ${d.node_id}.` : `Delivery ${d.id} was skipped.`);
          await load();
        } catch (e) {
          showError(error, e);
        }
      });
    }

    function render(commands) {
      if (commands.length === 0) {
        replace(body, emptyRow(6, chosenState ? `No command has a ${chosenState} delivery.` : 'The queue is empty.'));
        return;
      }
      replace(body, commands.map((c) => h('tr', {'data-command-id': String(c.id)},
        h('td', {class: 'num'}, text(c.id)),
        h('td', null, h('span', {class: 'mono'}, text(c.kind)),
          folded(`c${c.id}`, {class: 'payload'}, 'Payload', text(c.payload))),
        h('td', {class: 'mono'}, text(c.target)),
        h('td', {class: 'mono'}, text(c.ordering_key)),
        h('td', {title: dateTime(c.created_at_ms)}, relative(c.created_at_ms)),
        h('td', null, Array.isArray(c.deliveries) && c.deliveries.length
          ? h('ul', {class: 'deliveries'}, c.deliveries.map(delivery))
          : h('span', {class: 'muted'}, 'no node was targeted')))));
    }

    async function load() {
      const query = {limit: LIMIT, state: chosenState || undefined};
      let answer;
      try {
        const [commands, nodes] = await Promise.all([
          ctx.api.get(apiPath(['v1', 'commands'], query)),
          ctx.api.get(apiPath(['v1', 'nodes'], {all: 1})).catch((e) => {
            if (isAbort(e) || (e instanceof ApiError && e.status === 401)) throw e;
            return null;
          }),
        ]);
        answer = commands;
        if (nodes && Array.isArray(nodes.nodes)) names = new Map(nodes.nodes.map((n) => [String(n.id), text(n.hostname)]));
      } catch (e) {
        if (!ctx.alive() || isAbort(e) || (e instanceof ApiError && e.status === 401)) return;
        say(error, `Could not load the queue: ${messageOf(e)}`);
        ctx.ready();
        return;
      }
      if (!ctx.alive()) return;
      const commands = Array.isArray(answer && answer.commands) ? answer.commands : [];
      keepFocus(table, () => render(commands));
      note.textContent = `The newest ${LIMIT} commands; refreshed every ${REFRESH_MS / 1000} s.`;
      ctx.ready();
    }

    load().catch(() => {});
    ctx.every(REFRESH_MS, () => load().catch(() => {}));
  },
};
