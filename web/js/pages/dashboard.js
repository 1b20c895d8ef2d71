// Dashboard: cluster facts, the nodes and the health of every probed service on every node,
// refreshed every 5 s. Also: a node's roles, removing a node, maintenance on a service.
//
// Calls: GET /v1/cluster, GET /v1/nodes, GET /v1/health/services (every 5 s);
// PUT /v1/nodes/{id}/roles, DELETE /v1/nodes/{id}, PUT /v1/nodes/{id}/maintenance.

import {h, replace, apiPath, text, dateTime, relative, badge, count} from '../dom.js';
import {alertBox, busy, emptyRow, field, headRow, keepFocus, messageOf, say, section, select, setOptions, showError, statusBox, tableBox} from '../ui.js';
import {isAbort} from '../api.js';

const REFRESH_MS = 5000;

export default {
  id: 'dashboard',
  title: 'Dashboard',
  mount(page, ctx) {
    const pageError = alertBox({id: 'dashboard-error'});
    const updated = h('p', {class: 'muted', id: 'dashboard-updated', 'aria-live': 'off'});
    const facts = h('dl', {id: 'cluster', class: 'facts'});
    const nodesBody = h('tbody');
    const nodesTable = h('table', {id: 'nodes'},
      h('caption', {class: 'visually-hidden'}, 'Nodes of the cluster'),
      headRow(['ID', 'Host name', 'Address', 'Roles', 'State', 'OS', 'Last seen', '']),
      nodesBody);
    const healthTable = h('table', {id: 'health', class: 'matrix'});
    const actionStatus = statusBox({id: 'dashboard-status'});

    // Roles form: pick a node, edit its roles (comma-separated).
    const rolesNode = select({id: 'roles-node', name: 'node'}, []);
    const rolesValue = h('input', {id: 'roles-value', name: 'roles', type: 'text', 'data-field': 'roles', autocomplete: 'off',
      placeholder: 'http, mail, director'});
    const rolesSubmit = h('button', {type: 'submit', id: 'roles-submit', class: 'primary'}, 'Save roles');
    const rolesError = alertBox({id: 'roles-error'});
    const rolesStatus = statusBox({id: 'roles-status'});
    const rolesForm = h('form', {id: 'roles-form', class: 'inline-form'},
      rolesError, rolesStatus,
      h('div', {class: 'row'},
        field('Node', rolesNode),
        field('Roles', rolesValue, 'Comma-separated role names; a node with role "http" runs and is probed for http.'),
        h('div', {class: 'actions'}, rolesSubmit)));

    let nodes = [];
    let health = [];
    let first = true;

    replace(page,
      h('h1', null, 'Dashboard'),
      pageError,
      section('Cluster', facts, updated),
      section('Nodes', actionStatus, tableBox(nodesTable), h('h3', null, 'Roles of a node'), rolesForm),
      section('Service health', h('p', {class: 'muted'}, 'Each cell: the probe\'s state and whether the balancer sends traffic there. Hover or focus a cell for the reason.'),
        tableBox(healthTable)));

    rolesNode.addEventListener('change', () => fillRoles());
    function fillRoles() {
      const node = nodes.find((n) => String(n.id) === rolesNode.value);
      rolesValue.value = node && Array.isArray(node.roles) ? node.roles.join(', ') : '';
    }

    rolesForm.addEventListener('submit', (event) => {
      event.preventDefault();
      say(rolesError, '');
      say(rolesStatus, '');
      if (!rolesNode.value) {
        say(rolesError, 'Pick a node first.');
        return;
      }
      const roles = rolesValue.value.split(/[\s,]+/).map((r) => r.trim()).filter(Boolean);
      busy(rolesSubmit, async () => {
        try {
          const node = await ctx.api.put(apiPath(['v1', 'nodes', rolesNode.value, 'roles']), {roles});
          say(rolesStatus, `Node ${text(node && node.id)} now has ${roles.length ? 'roles ' + roles.join(', ') : 'no roles'}.`);
          await load();
        } catch (e) {
          showError(rolesError, e, rolesForm);
        }
      });
    });

    function renderFacts(cluster) {
      const q = cluster.queue || {};
      const rows = [
        ['Version', cluster.version],
        ['Cluster ID', cluster.cluster_id],
        ['Manager', cluster.manager],
        ['CA fingerprint', cluster.ca_fingerprint],
        ['Queue', `${count(q.pending || 0)} pending, ${count(q.running || 0)} running, ${count(q.failed || 0)} failed`],
      ];
      replace(facts, rows.map(([k, v]) => h('div', {class: 'fact'},
        h('dt', null, k),
        h('dd', {class: k === 'CA fingerprint' ? 'mono wrap' : null, 'data-fact': k.toLowerCase().replace(/ /g, '-')}, text(v)))));
    }

    function renderNodes() {
      const now = Date.now();
      if (nodes.length === 0) {
        replace(nodesBody, emptyRow(8, 'No node has joined yet. Make a join token on "Enrol a node".'));
      } else {
        replace(nodesBody, nodes.map((n) => {
          const remove = h('button', {type: 'button', class: 'danger small', 'data-action': 'remove-node', 'data-node-id': String(n.id)}, 'Remove');
          remove.addEventListener('click', () => removeNode(n, remove));
          const os = [n.os_id, n.os_version].filter(Boolean).join(' ') + (n.arch ? ` (${n.arch})` : '');
          return h('tr', {'data-node-id': String(n.id)},
            h('td', {class: 'num'}, text(n.id)),
            h('td', {'data-col': 'hostname'}, text(n.hostname)),
            h('td', {class: 'mono'}, text(n.address)),
            h('td', null, Array.isArray(n.roles) && n.roles.length ? n.roles.map((r) => h('span', {class: 'tag'}, text(r))) : h('span', {class: 'muted'}, 'none')),
            h('td', null, badge(n.state)),
            h('td', null, os, n.shoal_version ? h('span', {class: 'sub'}, `shoal ${text(n.shoal_version)}`) : null),
            h('td', {title: dateTime(n.last_seen_ms)}, relative(n.last_seen_ms, now)),
            h('td', null, n.state === 'removed' ? null : remove));
        }));
      }
      const choices = nodes.filter((n) => n.state !== 'removed').map((n) => [String(n.id), `${n.id} — ${text(n.hostname)}`]);
      const before = rolesNode.value;
      setOptions(rolesNode, [['', 'Choose a node…'], ...choices]);
      if (rolesNode.value !== before || (first && rolesNode.value)) fillRoles();
    }

    async function removeNode(n, button) {
      if (!window.confirm(`Remove node ${n.id} (${text(n.hostname)})? Its credential is revoked and its open deliveries fail. It must join again with a new token.`)) return;
      await busy(button, async () => {
        try {
          await ctx.api.del(apiPath(['v1', 'nodes', n.id]));
          say(actionStatus, `Node ${text(n.id)} was removed.`);
          await load();
        } catch (e) {
          showError(pageError, e);
        }
      });
    }

    function renderHealth() {
      const services = [...new Set(health.map((s) => text(s.service)))].sort();
      const rowIds = [];
      const names = new Map();
      for (const n of nodes) {
        if (n.state === 'removed') continue;
        rowIds.push(String(n.id));
        names.set(String(n.id), n.hostname);
      }
      for (const s of health) {
        const id = String(s.node_id);
        if (!rowIds.includes(id)) {
          rowIds.push(id);
          names.set(id, s.address);
        }
      }
      if (services.length === 0) {
        replace(healthTable, h('tbody', null, emptyRow(1, 'No service is probed yet: give a node a role such as "http" and its probe starts.')));
        return;
      }
      const cell = new Map(health.map((s) => [`${s.node_id}\u0000${s.service}`, s]));
      replace(healthTable,
        h('caption', {class: 'visually-hidden'}, 'Health of each service on each node'),
        h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'Node'), services.map((s) => h('th', {scope: 'col'}, s)))),
        h('tbody', null, rowIds.map((id) => h('tr', {'data-node-id': id},
          h('th', {scope: 'row'}, `${id} — ${text(names.get(id))}`),
          services.map((service) => healthCell(id, service, cell.get(`${id}\u0000${service}`)))))));
    }

    function healthCell(nodeId, service, s) {
      if (!s) return h('td', {class: 'na', 'data-node-id': nodeId, 'data-service': service}, h('span', {class: 'muted'}, '—'));
      const reason = text(s.reason);
      const toggle = h('button', {type: 'button', class: 'small secondary', 'data-action': 'maintenance',
        'data-on': s.maintenance ? '0' : '1'}, s.maintenance ? 'End maintenance' : 'Maintenance');
      toggle.addEventListener('click', () => setMaintenance(nodeId, service, !s.maintenance, toggle));
      const title = [`${service} on node ${nodeId}: ${text(s.state)}`, reason && `reason: ${reason}`,
        s.last_check_ms ? `last check ${dateTime(s.last_check_ms)}` : ''].filter(Boolean).join('\n');
      return h('td', {'data-node-id': nodeId, 'data-service': service, 'data-state': text(s.state), title, tabindex: '0'},
        badge(s.state),
        h('span', {class: s.serving ? 'serving' : 'not-serving'}, s.serving ? 'serving' : 'not serving'),
        s.maintenance ? h('span', {class: 'tag warn'}, 'maintenance') : null,
        s.node_draining ? h('span', {class: 'tag warn'}, 'node draining') : null,
        reason && s.state !== 'healthy' ? h('span', {class: 'reason'}, reason) : null,
        toggle);
    }

    async function setMaintenance(nodeId, service, on, button) {
      if (on && !window.confirm(`Take ${service} on node ${nodeId} out of the balancer? Open connections continue.`)) return;
      await busy(button, async () => {
        try {
          await ctx.api.put(apiPath(['v1', 'nodes', nodeId, 'maintenance']), {service, on});
          say(actionStatus, on ? `${service} on node ${nodeId} is in maintenance: the balancer sends it nothing new.`
            : `${service} on node ${nodeId} is back in the balancer once its probe is healthy.`);
          await load();
        } catch (e) {
          showError(pageError, e);
        }
      });
    }

    async function load() {
      const [cluster, nodeList, services] = await Promise.allSettled([
        ctx.api.get('/v1/cluster'), ctx.api.get('/v1/nodes'), ctx.api.get('/v1/health/services')]);
      if (!ctx.alive()) return;
      const problems = [];
      for (const r of [cluster, nodeList, services]) {
        if (r.status === 'rejected') {
          if (isAbort(r.reason) || (r.reason && r.reason.status === 401)) return;
          problems.push(messageOf(r.reason));
        }
      }
      if (cluster.status === 'fulfilled') renderFacts(cluster.value || {});
      if (nodeList.status === 'fulfilled') nodes = Array.isArray(nodeList.value && nodeList.value.nodes) ? nodeList.value.nodes : [];
      if (services.status === 'fulfilled') health = Array.isArray(services.value && services.value.services) ? services.value.services : [];
      keepFocus(page, () => {
        renderNodes();
        renderHealth();
      });
      say(pageError, problems.length ? `Could not refresh everything: ${[...new Set(problems)].join(' ')}` : '');
      updated.textContent = `Updated ${dateTime(Date.now())}; refreshed every ${REFRESH_MS / 1000} s.`;
      first = false;
      ctx.ready();
    }

    load().catch(() => {});
    ctx.every(REFRESH_MS, () => load().catch(() => {}));
  },
};
