// Balancer: the lvs plugin's virtual services with their real servers, weights, health and
// live counters; forms to add, edit and delete virtual services and real servers.
//
// Calls (see docs/api.md, "Plugin endpoints: the balancer"):
//   GET    /v1/plugins/lvs/services                       (every 5 s)
//   POST   /v1/plugins/lvs/services                       add a virtual service
//   PUT    /v1/plugins/lvs/services/{key}                 edit it (not its identity)
//   DELETE /v1/plugins/lvs/services/{key}
//   POST   /v1/plugins/lvs/services/{key}/members         add a real server
//   PUT    /v1/plugins/lvs/services/{key}/members/{ADDRESS:PORT}   its weight
//   DELETE /v1/plugins/lvs/services/{key}/members/{ADDRESS:PORT}
//   POST   /v1/plugins/lvs/sync, POST /v1/plugins/lvs/zero
//   GET    /v1/stats/series, and <img src="/v1/stats/graph?..."> per policy with "stats_series"

import {h, replace, apiPath, text, badge, count, bytes, hashPath} from '../dom.js';
import {alertBox, busy, clearInvalid, emptyRow, field, keepFocus, messageOf, missingNotice, say, section, select, setOptions, showError, statusBox, tableBox} from '../ui.js';
import {ApiError, isAbort} from '../api.js';
import {graphImage, loadSeries} from './graphs.js';

const REFRESH_MS = 5000;
const SCHEDULERS = [
  ['rr', 'rr — round robin'], ['wrr', 'wrr — weighted round robin'], ['lc', 'lc — least connections'],
  ['wlc', 'wlc — weighted least connections'], ['lblc', 'lblc — locality-based least connections'],
  ['lblcr', 'lblcr — locality-based with replication'], ['dh', 'dh — destination hashing'],
  ['sh', 'sh — source hashing'], ['sed', 'sed — shortest expected delay'], ['nq', 'nq — never queue'],
  ['mh', 'mh — Maglev hashing'],
];
const FORWARDING = [['dr', 'dr — direct routing'], ['nat', 'nat — masquerading'], ['tun', 'tun — IP-in-IP tunnel']];
const COLUMNS = ['Real server', 'Weight', 'Health', 'Connections', 'Bytes in / out', ''];

const lvs = (...rest) => apiPath(['v1', 'plugins', 'lvs', ...rest]);

// "10.0.0.11:80" or "[2001:db8::11]:80", as the plugin names a real server.
export function hostPort(address, port) {
  const a = String(address);
  return `${a.includes(':') ? `[${a}]` : a}:${port}`;
}

function applyText(answer) {
  const apply = answer && answer.apply;
  if (!apply) return '';
  if (apply.pending) return ` Not yet on the balancer: ${text(apply.pending)}`;
  if (apply.command !== undefined) return ` Sent to the director as command ${text(apply.command)}.`;
  if (apply.unchanged) return ' The balancer table did not change.';
  return '';
}

function num(input) {
  const v = input.value.trim();
  if (v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : v; // a non-number goes to the server, whose message names the field
}

export default {
  id: 'balancer',
  title: 'Balancer',
  mount(page, ctx) {
    const pageError = alertBox({id: 'balancer-error'});
    const pageStatus = statusBox({id: 'balancer-status'});
    const dataplane = h('p', {class: 'muted', id: 'balancer-dataplane'});
    const policiesTable = h('table', {id: 'policies', class: 'policies'});
    const graphCache = new Map();
    let policies = [];
    let series = null; // Set of series ids, or null when the statistics routes are missing
    let editing = null; // key of the policy in the form

    // ---- the policy form ----
    const kind = select({id: 'policy-kind', name: 'protocol', 'data-field': 'protocol'},
      [['tcp', 'TCP'], ['udp', 'UDP'], ['fwm', 'Firewall-mark group (several ports)']], 'tcp');
    const address = h('input', {id: 'policy-address', name: 'address', type: 'text', 'data-field': 'address', autocomplete: 'off',
      placeholder: '192.0.2.10', spellcheck: 'false'});
    const port = h('input', {id: 'policy-port', name: 'port', type: 'number', min: '1', max: '65535', 'data-field': 'port', value: '80'});
    const fwmark = h('input', {id: 'policy-fwmark', name: 'fwmark', type: 'number', min: '1', max: '4294967295', 'data-field': 'fwmark'});
    const listeners = h('textarea', {id: 'policy-listeners', name: 'listeners', rows: '2', 'data-field': 'listeners',
      placeholder: '192.0.2.10:80 192.0.2.10:443', spellcheck: 'false'});
    const service = h('input', {id: 'policy-service', name: 'service', type: 'text', 'data-field': 'service', value: 'http',
      list: 'policy-service-list', autocomplete: 'off', spellcheck: 'false'});
    const serviceList = h('datalist', {id: 'policy-service-list'}, ['http', 'https', 'smtp', 'imap', 'pop3', 'ftp'].map((s) => h('option', {value: s})));
    const scheduler = select({id: 'policy-scheduler', name: 'scheduler', 'data-field': 'scheduler'}, SCHEDULERS, 'wlc');
    const persistence = h('input', {id: 'policy-persistence', name: 'persistence', type: 'number', min: '0', max: '31536000',
      'data-field': 'persistence', value: '300'});
    const netmask = h('input', {id: 'policy-netmask', name: 'netmask', type: 'text', 'data-field': 'netmask', autocomplete: 'off',
      placeholder: '255.255.255.255', spellcheck: 'false'});
    const forwarding = select({id: 'policy-forwarding', name: 'forwarding', 'data-field': 'forwarding'}, FORWARDING, 'dr');
    const policySubmit = h('button', {type: 'submit', id: 'policy-submit', class: 'primary'}, 'Add virtual service');
    const policyCancel = h('button', {type: 'button', id: 'policy-cancel', class: 'secondary', hidden: true}, 'Cancel editing');
    const policyError = alertBox({id: 'policy-error'});
    const policyTitle = h('h2', {id: 'policy-form-title'}, 'Add a virtual service');
    const addressField = field('Virtual IP address', address);
    const portField = field('Port', port);
    const fwmarkField = field('Firewall mark', fwmark, 'A number 1-4294967295 naming the group.');
    const listenersField = field('Listeners', listeners, 'The ADDRESS:PORT pairs the mark covers, separated by spaces or commas.');
    const policyForm = h('form', {id: 'policy-form', class: 'card form-grid', novalidate: true},
      policyTitle, policyError,
      h('div', {class: 'grid'},
        field('Protocol', kind), addressField, portField, fwmarkField, listenersField,
        field('Balanced service', service, 'Its health probe decides which real servers get traffic.'), serviceList,
        field('Scheduler', scheduler),
        field('Persistence (seconds)', persistence, '0 turns persistence off; a client then may reach any real server.'),
        field('Persistence netmask', netmask, 'Empty: one client address. 255.255.255.0 keeps a /24 on one server.'),
        field('Forwarding', forwarding, 'Direct routing and tunnelling keep the port; NAT may change it.')),
      h('div', {class: 'actions'}, policySubmit, policyCancel));

    function showKindFields() {
      const fw = kind.value === 'fwm';
      addressField.hidden = fw;
      portField.hidden = fw;
      fwmarkField.hidden = !fw;
      listenersField.hidden = !fw;
    }
    kind.addEventListener('change', showKindFields);
    showKindFields();

    function resetPolicyForm() {
      editing = null;
      policyForm.reset();
      kind.value = 'tcp';
      scheduler.value = 'wlc';
      forwarding.value = 'dr';
      for (const c of [kind, address, port, fwmark]) c.disabled = false;
      policyTitle.textContent = 'Add a virtual service';
      policySubmit.textContent = 'Add virtual service';
      policyCancel.hidden = true;
      delete policyForm.dataset.editing;
      say(policyError, '');
      clearInvalid(policyForm);
      showKindFields();
    }
    policyCancel.addEventListener('click', () => resetPolicyForm());

    function editPolicy(p) {
      resetPolicyForm();
      editing = p.key;
      policyForm.dataset.editing = p.key;
      const fw = p.fwmark !== undefined && p.fwmark !== null && Number(p.fwmark) !== 0;
      kind.value = fw ? 'fwm' : text(p.protocol || 'tcp');
      address.value = text(p.address);
      port.value = text(p.port);
      fwmark.value = fw ? text(p.fwmark) : '';
      listeners.value = Array.isArray(p.listeners) ? p.listeners.join(' ') : '';
      service.value = text(p.service);
      scheduler.value = text(p.scheduler);
      persistence.value = text(p.persistence);
      netmask.value = text(p.netmask);
      forwarding.value = text(p.forwarding || 'dr');
      for (const c of [kind, address, port, fwmark]) c.disabled = true;
      policyTitle.textContent = `Edit ${text(p.key)}`;
      policySubmit.textContent = 'Save changes';
      policyCancel.hidden = false;
      showKindFields();
      policyForm.scrollIntoView({block: 'start'});
      service.focus();
    }

    policyForm.addEventListener('submit', (event) => {
      event.preventDefault();
      say(policyError, '');
      clearInvalid(policyForm);
      const body = {
        service: service.value.trim(),
        scheduler: scheduler.value,
        persistence: num(persistence),
        netmask: netmask.value.trim(),
        forwarding: forwarding.value,
      };
      const fw = kind.value === 'fwm';
      if (fw) body.listeners = listeners.value.split(/[\s,]+/).map((l) => l.trim()).filter(Boolean);
      if (!editing) {
        if (fw) {
          body.fwmark = num(fwmark);
        } else {
          body.protocol = kind.value;
          body.address = address.value.trim();
          body.port = num(port);
        }
        if (!body.netmask) delete body.netmask;
      }
      for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
      const key = editing;
      busy(policySubmit, async () => {
        try {
          const answer = key ? await ctx.api.put(lvs('services', key), body) : await ctx.api.post(lvs('services'), body);
          const saved = answer && answer.service && answer.service.key ? answer.service.key : key;
          resetPolicyForm();
          say(pageStatus, `${key ? 'Saved' : 'Added'} ${text(saved)}.${applyText(answer)}`);
          if (saved) memberPolicy.dataset.want = saved;
          await load();
        } catch (e) {
          showError(policyError, e, policyForm);
        }
      });
    });

    // ---- the member form ----
    const memberPolicy = select({id: 'member-policy', name: 'policy'}, []);
    const memberAddress = h('input', {id: 'member-address', name: 'address', type: 'text', 'data-field': 'address',
      autocomplete: 'off', placeholder: '10.0.0.11', spellcheck: 'false'});
    const memberPort = h('input', {id: 'member-port', name: 'port', type: 'number', min: '0', max: '65535', 'data-field': 'port'});
    const memberWeight = h('input', {id: 'member-weight', name: 'weight', type: 'number', min: '0', max: '65535', value: '1', 'data-field': 'weight'});
    const memberForwarding = select({id: 'member-forwarding', name: 'forwarding', 'data-field': 'forwarding'},
      [['', 'as the virtual service'], ...FORWARDING], '');
    const memberSubmit = h('button', {type: 'submit', id: 'member-submit', class: 'primary'}, 'Add real server');
    const memberError = alertBox({id: 'member-error'});
    const memberForm = h('form', {id: 'member-form', class: 'card form-grid', novalidate: true},
      h('h2', null, 'Add a real server'), memberError,
      h('div', {class: 'grid'},
        field('Virtual service', memberPolicy),
        field('Address', memberAddress, 'The node\'s IP address.'),
        field('Port', memberPort, 'Empty: the virtual service\'s port. In a firewall-mark group 0 keeps the client\'s port.'),
        field('Weight', memberWeight, '0-65535; 0 sends it no new connections.'),
        field('Forwarding', memberForwarding)),
      h('div', {class: 'actions'}, memberSubmit));

    memberForm.addEventListener('submit', (event) => {
      event.preventDefault();
      say(memberError, '');
      clearInvalid(memberForm);
      const key = memberPolicy.value;
      const policy = policies.find((p) => p.key === key);
      if (!policy) {
        say(memberError, 'Add a virtual service first, then choose it here.');
        return;
      }
      const body = {address: memberAddress.value.trim(), weight: num(memberWeight)};
      let p = num(memberPort);
      if (p === undefined && !policy.fwmark) p = policy.port;
      if (p !== undefined) body.port = p;
      if (memberForwarding.value) body.forwarding = memberForwarding.value;
      if (body.weight === undefined) delete body.weight;
      busy(memberSubmit, async () => {
        try {
          const answer = await ctx.api.post(lvs('services', key, 'members'), body);
          memberAddress.value = '';
          memberPort.value = '';
          say(pageStatus, `Added ${hostPort(body.address, body.port ?? 0)} to ${text(key)}.${applyText(answer)}`);
          await load();
        } catch (e) {
          showError(memberError, e, memberForm);
        }
      });
    });

    // ---- sync and zero ----
    const syncButton = h('button', {type: 'button', id: 'lvs-sync', class: 'secondary'}, 'Send the table to the director again');
    const zeroButton = h('button', {type: 'button', id: 'lvs-zero', class: 'secondary'}, 'Zero the counters');
    syncButton.addEventListener('click', () => busy(syncButton, async () => {
      try {
        const answer = await ctx.api.post(lvs('sync'), {});
        say(pageStatus, `Table sent.${applyText(answer)}`);
      } catch (e) {
        showError(pageError, e);
      }
    }));
    zeroButton.addEventListener('click', () => {
      if (!window.confirm('Zero the balancer\'s counters on the director?')) return;
      busy(zeroButton, async () => {
        try {
          const answer = await ctx.api.post(lvs('zero'), {});
          say(pageStatus, `Counters are being zeroed (command ${text(answer && answer.command)}).`);
        } catch (e) {
          showError(pageError, e);
        }
      });
    });

    // ---- the table ----
    function graphFor(p) {
      if (!p.stats_series || series === null) return null;
      if (!series.has(String(p.stats_series))) return h('p', {class: 'muted small', 'data-graph-none': text(p.key)}, 'no statistics recorded yet');
      const id = String(p.stats_series);
      if (!graphCache.has(id)) {
        graphCache.set(id, graphImage({series: id, range: 'day', metric: 'conns', title: `${text(p.key)}: connections, last day`, small: true}));
      }
      return h('a', {href: hashPath(['graphs']), class: 'graph-link', title: 'More graphs'}, graphCache.get(id));
    }

    function policyHead(p) {
      const edit = h('button', {type: 'button', class: 'small secondary', 'data-action': 'edit-policy'}, 'Edit');
      edit.addEventListener('click', () => editPolicy(p));
      const del = h('button', {type: 'button', class: 'small danger', 'data-action': 'delete-policy'}, 'Delete');
      del.addEventListener('click', () => deletePolicy(p, del));
      const addMember = h('button', {type: 'button', class: 'small secondary', 'data-action': 'add-member'}, 'Add real server');
      addMember.addEventListener('click', () => {
        memberPolicy.value = p.key;
        memberForm.scrollIntoView({block: 'start'});
        memberAddress.focus();
      });
      const c = p.counters || null;
      const facts = [
        ['service', p.service],
        ['scheduler', p.scheduler],
        ['persistence', Number(p.persistence) ? `${p.persistence} s` : 'off'],
        p.netmask ? ['netmask', p.netmask] : null,
        ['forwarding', p.forwarding],
        Array.isArray(p.listeners) && p.listeners.length ? ['listeners', p.listeners.join(', ')] : null,
        c ? ['connections', count(c.connections)] : null,
        c ? ['conn/s', count(c.cps)] : null,
        c ? ['in', bytes(c.bytes_in)] : null,
        c ? ['out', bytes(c.bytes_out)] : null,
      ].filter(Boolean);
      return h('tr', {class: 'policy-head'},
        h('th', {scope: 'rowgroup', colspan: String(COLUMNS.length)},
          h('div', {class: 'policy-title'},
            h('div', {class: 'policy-text'},
              h('span', {class: 'policy-key mono'}, text(p.key)),
              h('span', {class: 'policy-facts'}, facts.map(([k, v]) => h('span', {class: 'fact-inline'}, h('span', {class: 'muted'}, `${k} `), text(v))))),
            graphFor(p),
            h('div', {class: 'buttons'}, addMember, edit, del))));
    }

    function memberRow(p, m) {
      const key = hostPort(m.address, m.port);
      const weight = h('input', {type: 'number', min: '0', max: '65535', value: text(m.weight), class: 'weight',
        'data-member-weight': key, 'aria-label': `Weight of ${key} in ${text(p.key)}`});
      const setWeight = h('button', {type: 'submit', class: 'small secondary', 'data-action': 'set-weight'}, 'Set');
      const weightForm = h('form', {class: 'weight-form', novalidate: true}, weight, setWeight);
      weightForm.addEventListener('submit', (event) => {
        event.preventDefault();
        busy(setWeight, async () => {
          try {
            const answer = await ctx.api.put(lvs('services', p.key, 'members', key), {weight: num(weight)});
            say(pageError, '');
            say(pageStatus, `${key} in ${text(p.key)} now has weight ${text(num(weight))}.${applyText(answer)}`);
            weight.defaultValue = weight.value;
            await load();
          } catch (e) {
            showError(pageError, e);
          }
        }, '…');
      });
      const remove = h('button', {type: 'button', class: 'small danger', 'data-action': 'remove-member'}, 'Remove');
      remove.addEventListener('click', () => {
        if (!window.confirm(`Remove real server ${key} from ${p.key}? Its open connections end as the dataplane drops it.`)) return;
        busy(remove, async () => {
          try {
            const answer = await ctx.api.del(lvs('services', p.key, 'members', key));
            say(pageStatus, `Removed ${key} from ${text(p.key)}.${applyText(answer)}`);
            await load();
          } catch (e) {
            showError(pageError, e);
          }
        });
      });
      const c = m.counters || {};
      const drained = m.effective_weight !== undefined && Number(m.effective_weight) !== Number(m.weight);
      const hasConns = m.active_connections !== undefined || c.connections !== undefined;
      return h('tr', {'data-member': key},
        h('td', null, h('span', {class: 'mono'}, key),
          h('span', {class: 'sub', 'data-col': 'forwarding'}, m.forwarding ? `forwarding ${text(m.forwarding)}` : `forwarding ${text(p.forwarding)} (the service's)`)),
        h('td', null, weightForm,
          m.effective_weight !== undefined
            ? h('span', {class: drained ? 'sub warn-text' : 'sub', 'data-effective-weight': text(m.effective_weight)},
              drained ? `effective ${text(m.effective_weight)}: drained` : `effective ${text(m.effective_weight)}`)
            : null),
        h('td', {title: text(m.reason)}, badge(m.health), m.serving === false ? h('span', {class: 'not-serving'}, 'not serving') : null,
          m.reason && m.health !== 'healthy' ? h('span', {class: 'reason'}, text(m.reason)) : null),
        h('td', {class: 'num', 'data-col': 'connections'}, hasConns
          ? [h('span', {title: 'active / inactive connections now'}, `${count(m.active_connections ?? 0)} / ${count(m.inactive_connections ?? 0)}`),
            h('span', {class: 'sub', title: 'connections since the counters were zeroed'}, `${count(c.connections ?? 0)} total`)]
          : h('span', {class: 'muted'}, '—')),
        h('td', {class: 'num', 'data-col': 'bytes', title: c.bytes_in !== undefined ? `${count(c.bytes_in)} bytes in, ${count(c.bytes_out)} bytes out` : null},
          c.bytes_in !== undefined ? [h('span', null, bytes(c.bytes_in)), h('span', {class: 'sub'}, bytes(c.bytes_out))] : h('span', {class: 'muted'}, '—')),
        h('td', null, remove));
    }

    async function deletePolicy(p, button) {
      if (!window.confirm(`Delete the virtual service ${p.key} and its ${(p.members || []).length} real server(s)?`)) return;
      await busy(button, async () => {
        try {
          const answer = await ctx.api.del(lvs('services', p.key));
          if (editing === p.key) resetPolicyForm();
          say(pageStatus, `Deleted ${text(p.key)}.${applyText(answer)}`);
          await load();
        } catch (e) {
          showError(pageError, e);
        }
      });
    }

    function renderTable() {
      const head = h('thead', null, h('tr', null, COLUMNS.map((c) => h('th', {scope: 'col'}, c))));
      if (policies.length === 0) {
        replace(policiesTable, head, h('tbody', null, emptyRow(COLUMNS.length, 'No virtual service yet: add one with the form below.')));
        return;
      }
      replace(policiesTable,
        h('caption', {class: 'visually-hidden'}, 'Virtual services and their real servers'),
        head,
        policies.map((p) => h('tbody', {'data-policy-key': text(p.key)},
          policyHead(p),
          Array.isArray(p.members) && p.members.length
            ? p.members.map((m) => memberRow(p, m))
            : emptyRow(COLUMNS.length, 'No real server yet.'))));
    }

    function userIsEditingTable() {
      const active = document.activeElement;
      if (active && policiesTable.contains(active) && active.tagName === 'INPUT') return true;
      for (const input of policiesTable.querySelectorAll('input[data-member-weight]')) {
        if (input.value !== input.defaultValue) return true;
      }
      return false;
    }

    const content = h('div', null);
    replace(page,
      h('h1', null, 'Balancer'),
      pageError, pageStatus, content);

    function renderAll(answer) {
      policies = Array.isArray(answer && answer.services) ? answer.services.filter((p) => p && p.key) : [];
      dataplane.textContent = answer && answer.dataplane
        ? `Dataplane in the manager: ${text(answer.dataplane)}. Counters are live.`
        : 'No dataplane runs in the manager, so no live counters are shown here.';
      const keys = policies.map((p) => [p.key, p.key]);
      const want = memberPolicy.dataset.want || memberPolicy.value;
      setOptions(memberPolicy, keys.length ? keys : [['', 'no virtual service yet']], want);
      delete memberPolicy.dataset.want;
      if (!content.firstChild) {
        replace(content,
          section('Virtual services', dataplane, tableBox(policiesTable), h('div', {class: 'actions'}, syncButton, zeroButton)),
          h('div', {class: 'two-forms'}, policyForm, memberForm));
      }
      keepFocus(policiesTable, renderTable);
    }

    async function load(background = false) {
      let answer;
      try {
        [answer, series] = await Promise.all([ctx.api.get(lvs('services')), loadSeries(ctx.api)]);
      } catch (e) {
        if (!ctx.alive() || isAbort(e) || (e instanceof ApiError && e.status === 401)) return;
        if (e instanceof ApiError && e.missing && !content.firstChild) {
          replace(content, missingNotice('The balancer plugin is not loaded.',
            'Install the lvs plugin in the manager\'s plugin_dir and restart shoald; `shoald plugins --plugin-dir DIR` tells why a plugin was refused.'));
          content.firstChild.setAttribute('data-test', 'balancer-missing');
          ctx.ready();
          return;
        }
        say(pageError, `Could not load the balancer: ${messageOf(e)}`);
        ctx.ready();
        return;
      }
      if (!ctx.alive()) return;
      if (background && userIsEditingTable()) return;
      if (!background) say(pageError, '');
      renderAll(answer);
      ctx.ready();
    }

    load().catch(() => {});
    ctx.every(REFRESH_MS, () => load(true).catch(() => {}));
  },
};
