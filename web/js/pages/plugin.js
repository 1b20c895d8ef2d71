// A plugin's panel, rendered from its declarative definition. The vocabulary (section types
// table, form, action, graph, text and progress; nested tables, live columns, row actions,
// dependent fields) is specified in sdk/include/shoal/panel.h and enforced by the manager
// (kernel/host/PanelDefinition.cpp). The definition and the data are the plugin's;
// everything from them is shown as text (see dom.js), so a plugin never puts markup or
// script into the page.
//
// Calls: GET /v1/panels (when the panel is not known yet),
//   GET  /v1/panels/{plugin}/{panel}/sections/{section}   table rows, progress, graphs
//                                                         (again every refresh_seconds)
//   POST /v1/panels/{plugin}/{panel}/actions/{action}     forms, actions, row actions
//   <img src="/v1/stats/graph?series=...">                graph sections

import {h, replace, apiPath, text, badge} from '../dom.js';
import {alertBox, busy, clearInvalid, emptyRow, field, keepFocus, messageOf, missingNotice, say, select, showError, statusBox, tableBox} from '../ui.js';
import {ApiError, isAbort} from '../api.js';
import {graphImage, loadSeries} from './graphs.js';

const ignorable = (e) => isAbort(e) || (e instanceof ApiError && e.status === 401);

function list(value) {
  return Array.isArray(value) ? value : [];
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// A cell's text: a list of values joined by ", ", anything else as dom.js's text() shows it.
function cellText(value) {
  return Array.isArray(value) ? value.map(text).join(', ') : text(value);
}

// A select's options as [value, label]: given as "value" or {"value", "label"}.
function optionPairs(options) {
  return list(options).map((o) => (isObject(o) ? [text(o.value), text(o.label ?? o.value)] : [text(o), text(o)]));
}

// "true"/"false" for a checkbox, else the control's value: what show_when compares.
function controlValue(f, control) {
  return f.type === 'checkbox' ? String(control.checked) : control.value;
}

function setControl(f, control, value) {
  if (f.type === 'checkbox') {
    control.checked = value === true || value === 'true';
  } else if (f.type === 'list') {
    control.value = Array.isArray(value) ? value.map(text).join(' ') : text(value);
  } else if (f.type === 'select') {
    const wanted = text(value);
    if ([...control.options].some((o) => o.value === wanted)) control.value = wanted;
  } else {
    control.value = text(value);
  }
}

export default {
  id: 'plugin',
  title: 'Plugin',
  mount(page, ctx) {
    const {plugin, panel} = ctx.params;
    page.dataset.plugin = plugin;
    page.dataset.panel = panel;
    const heading = h('h1', null, `${plugin}: ${panel}`);
    const pageError = alertBox({id: 'panel-error'});
    const body = h('div', {class: 'panel-sections'});
    replace(page, heading, pageError, body);

    const base = ['v1', 'panels', plugin, panel];
    const reloaders = []; // tables and progress lists reload after an action
    const forms = new Map(); // form section id → {openFor(row, rowKey, parentKey)}
    let hasData = true; // false when the panel says it has no data callback

    async function findPanel() {
      const known = () => ctx.panels().find((p) => p.plugin === plugin && p.id === panel);
      if (known()) return known();
      await ctx.reloadPanels();
      return known();
    }

    const sectionData = (s) => ctx.api.get(apiPath([...base, 'sections', s.id]));

    // Runs an action; on success says its message and reloads the tables. Returns whether it worked.
    async function run(action, input, button, status, error, form) {
      say(error, '');
      say(status, '');
      if (form) clearInvalid(form);
      return busy(button, async () => {
        try {
          const answer = await ctx.api.post(apiPath([...base, 'actions', action]), input);
          say(status, answer && answer.message !== undefined ? text(answer.message) : 'Done.');
          await Promise.all(reloaders.map((r) => r()));
          return true;
        } catch (e) {
          showError(error, e, form);
          return false;
        }
      });
    }

    // Calls `refresh` every `seconds` while the page is shown, never twice at once.
    function every(seconds, refresh) {
      const n = Number(seconds);
      if (!Number.isFinite(n) || n < 1) return;
      let running = false;
      ctx.every(n * 1000, async () => {
        if (running) return;
        running = true;
        try {
          await refresh();
        } finally {
          running = false;
        }
      });
    }

    // ---- tables: nested rows, live columns, row actions ----

    function tableSection(s, node) {
      const columns = list(s.columns).filter((c) => isObject(c) && c.key !== undefined);
      const nested = isObject(s.nested) ? s.nested : null;
      const nestedColumns = nested ? list(nested.columns).filter((c) => isObject(c) && c.key !== undefined) : [];
      const rowActions = list(s.row_actions).filter(isObject);
      const nestedActions = nested ? list(nested.row_actions).filter(isObject) : [];
      const rowKey = (r) => text(r[s.row_key]);
      const childKey = (c) => text(c[nested.row_key]);
      const children = (r) => (nested ? list(r[nested.key]).filter(isObject) : []);
      const width = columns.length + (nested ? 1 : 0) + (rowActions.length ? 1 : 0);
      const expanded = new Set(); // row keys the user opened
      const collapsed = new Set(); // row keys the user closed (nested.open)
      const error = alertBox();
      const status = statusBox();
      const note = h('p', {class: 'muted small', hidden: true});
      const table = h('table', {'data-table': text(s.id)});
      node.append(error, status, tableBox(table), note);
      let shape = null; // the row and child keys last drawn: a change redraws, else cells update

      const isOpen = (key) => (nested && nested.open === true ? !collapsed.has(key) : expanded.has(key));

      function actionButtons(actions, rowData, key, parentKey) {
        return h('td', {class: 'row-actions'}, actions.map((a) => {
          const name = text(a.action ?? a.form);
          const button = h('button', {type: 'button', class: a.confirm ? 'small danger' : 'small secondary', 'data-row-action': name},
            text(a.label));
          button.addEventListener('click', () => {
            if (a.form !== undefined) {
              const form = forms.get(text(a.form));
              if (form) form.openFor(rowData, key, parentKey);
              return;
            }
            if (a.confirm && !window.confirm(`${text(a.confirm)}\n\n${parentKey ? `${key} in ${parentKey}` : key}`)) return;
            const input = {row: key};
            if (parentKey !== undefined) input.parent = parentKey;
            run(name, input, button, status, error, null);
          });
          return button;
        }));
      }

      function cells(cols, rowData) {
        return cols.map((c) => h('td', {'data-key': text(c.key), 'data-live': c.live === true ? '1' : null}, cellText(rowData[c.key])));
      }

      function nestedTable(r, key) {
        const rows = children(r);
        return h('table', {class: 'nested', 'data-nested-for': key},
          h('thead', null, h('tr', null,
            nestedColumns.map((c) => h('th', {scope: 'col', 'data-key': text(c.key)}, text(c.label ?? c.key))),
            nestedActions.length ? h('th', {scope: 'col'}, 'Actions') : null)),
          h('tbody', null, rows.length
            ? rows.map((c) => h('tr', {'data-nested-key': childKey(c)}, cells(nestedColumns, c),
              nestedActions.length ? actionButtons(nestedActions, c, childKey(c), key) : null))
            : emptyRow(nestedColumns.length + (nestedActions.length ? 1 : 0), text(nested.empty || 'Nothing to show.'))));
      }

      function rowGroup(r) {
        const key = rowKey(r);
        const group = h('tbody', {'data-row-key': key});
        let toggleCell = null;
        let inner = null;
        if (nested) {
          const open = isOpen(key);
          const toggle = h('button', {type: 'button', class: 'small secondary toggle', 'data-toggle': key,
            'aria-expanded': String(open), title: 'Show or hide its rows'}, `${open ? '▾' : '▸'} ${children(r).length}`);
          inner = h('tr', {class: 'nested-row', hidden: !open}, h('td', {colspan: String(width)}, nestedTable(r, key)));
          toggle.addEventListener('click', () => {
            const now = inner.hidden;
            inner.hidden = !now;
            toggle.setAttribute('aria-expanded', String(now));
            toggle.textContent = `${now ? '▾' : '▸'} ${children(r).length}`;
            if (nested.open === true) (now ? collapsed.delete(key) : collapsed.add(key));
            else (now ? expanded.add(key) : expanded.delete(key));
          });
          toggleCell = h('td', {class: 'toggle-cell'}, toggle);
        }
        group.append(h('tr', {class: 'parent-row'}, toggleCell, cells(columns, r),
          rowActions.length ? actionButtons(rowActions, r, key) : null));
        if (inner) group.append(inner);
        return group;
      }

      function shapeOf(rows) {
        return JSON.stringify(rows.map((r) => [rowKey(r), children(r).map(childKey)]));
      }

      function draw(rows) {
        const head = h('thead', null, h('tr', null,
          nested ? h('th', {scope: 'col', class: 'toggle-cell'}, h('span', {class: 'visually-hidden'}, 'Rows')) : null,
          columns.map((c) => h('th', {scope: 'col', 'data-key': text(c.key)}, text(c.label ?? c.key))),
          rowActions.length ? h('th', {scope: 'col'}, 'Actions') : null));
        let groups;
        if (!rows.length) groups = h('tbody', null, emptyRow(Math.max(width, 1), text(s.empty || 'Nothing to show.')));
        else if (s.row_key !== undefined) groups = rows.map(rowGroup); // a tbody per row, its nested rows inside
        else groups = h('tbody', null, rows.map((r) => h('tr', null, cells(columns, r))));
        keepFocus(table, () => replace(table, head, groups));
        shape = shapeOf(rows);
      }

      // Only the text of live cells changes; every row, button and open form stays.
      function updateLive(rows) {
        const byKey = new Map(rows.map((r) => [rowKey(r), r]));
        for (const group of table.querySelectorAll(':scope > tbody[data-row-key]')) {
          const r = byKey.get(group.dataset.rowKey);
          if (!r) continue;
          for (const td of group.querySelectorAll(':scope > tr.parent-row > td[data-live]')) {
            const value = cellText(r[td.dataset.key]);
            if (td.textContent !== value) td.textContent = value;
          }
          if (!nested) continue;
          const byChild = new Map(children(r).map((c) => [childKey(c), c]));
          for (const tr of group.querySelectorAll('tr[data-nested-key]')) {
            const c = byChild.get(tr.dataset.nestedKey);
            if (!c) continue;
            for (const td of tr.querySelectorAll(':scope > td[data-live]')) {
              const value = cellText(c[td.dataset.key]);
              if (td.textContent !== value) td.textContent = value;
            }
          }
        }
      }

      async function load(live = false) {
        if (!hasData) {
          replace(table, h('tbody', null, emptyRow(Math.max(width, 1), 'This plugin gives no data for its tables.')));
          return;
        }
        try {
          const answer = await sectionData(s);
          if (!ctx.alive()) return;
          if (!live) say(error, '');
          const rows = list(answer && answer.rows).filter(isObject);
          if (live && shape === shapeOf(rows)) updateLive(rows);
          else draw(rows);
          note.textContent = answer && answer.note !== undefined ? text(answer.note) : '';
          note.hidden = note.textContent === '';
        } catch (e) {
          if (!ctx.alive() || ignorable(e)) return;
          say(error, `Could not load "${text(s.title)}": ${messageOf(e)}`);
        }
      }
      reloaders.push(() => load(false));
      if (s.refresh_seconds !== undefined) every(s.refresh_seconds, () => load(true));
      return load(false);
    }

    // ---- forms: dependent fields, forms opened from a row ----

    function formSection(s, node, index) {
      const fields = list(s.fields).filter((f) => isObject(f) && f.name !== undefined);
      const status = statusBox();
      const error = alertBox({id: `panel-form-${index}-error`});
      const controls = []; // [field, control, wrapper]
      const byName = new Map();
      const rendered = fields.map((f, i) => {
        const id = `panel-field-${index}-${i}`;
        const props = {id, name: text(f.name), 'data-field': text(f.name), required: f.required === true,
          disabled: f.readonly === true};
        let control;
        if (f.type === 'select') {
          control = select(props, optionPairs(f.options));
        } else if (f.type === 'checkbox') {
          control = h('input', {...props, type: 'checkbox', required: false});
        } else if (f.type === 'number') {
          control = h('input', {...props, type: 'number', step: 'any', min: f.min !== undefined ? text(f.min) : null,
            max: f.max !== undefined ? text(f.max) : null});
        } else if (f.type === 'password') {
          control = h('input', {...props, type: 'password', autocomplete: 'new-password'});
        } else if (f.type === 'list') {
          control = h('textarea', {...props, rows: '2', spellcheck: 'false'});
        } else {
          control = h('input', {...props, type: 'text', autocomplete: 'off', spellcheck: 'false'});
        }
        const wrapper = field(`${text(f.label ?? f.name)}${f.required === true ? ' (required)' : ''}`, control,
          f.help !== undefined ? text(f.help) : undefined);
        wrapper.dataset.fieldFor = text(f.name);
        controls.push([f, control, wrapper]);
        byName.set(String(f.name), [f, control, wrapper]);
        return wrapper;
      });
      const submit = h('button', {type: 'submit', class: 'primary', 'data-action': text(s.action)}, text(s.submit ?? s.title));
      const cancel = h('button', {type: 'button', class: 'secondary', 'data-cancel': '1', hidden: true}, 'Cancel');
      const target = h('p', {class: 'form-target muted', hidden: true});
      const form = h('form', {class: 'form-grid', novalidate: true, 'data-form': text(s.id)},
        target, error, status, h('div', {class: 'grid'}, rendered), h('div', {class: 'actions'}, submit, cancel));
      node.append(form);
      let opened = null; // {key, parent} while opened from a row

      // A field with show_when is shown only while the field it names (shown itself) has one
      // of the listed values; a hidden field is neither required nor sent.
      function shown() {
        const visible = new Map();
        for (const [f, , wrapper] of controls) {
          let show = true;
          if (isObject(f.show_when)) {
            const other = byName.get(String(f.show_when.field));
            const equals = Array.isArray(f.show_when.equals) ? f.show_when.equals.map(String) : [String(f.show_when.equals)];
            show = Boolean(other) && visible.get(String(f.show_when.field)) === true && equals.includes(controlValue(other[0], other[1]));
          }
          visible.set(String(f.name), show);
          wrapper.hidden = !show;
        }
        return visible;
      }
      form.addEventListener('input', shown);
      form.addEventListener('change', shown);

      function fill(rowData) {
        for (const [f, control] of controls) {
          if (rowData && Object.prototype.hasOwnProperty.call(rowData, f.name)) setControl(f, control, rowData[f.name]);
          else if (f.default !== undefined) setControl(f, control, f.default);
          else if (f.type === 'select') control.selectedIndex = 0;
          else if (f.type === 'checkbox') control.checked = false;
          else control.value = '';
        }
        shown();
      }

      function close() {
        opened = null;
        delete node.dataset.row;
        target.hidden = true;
        cancel.hidden = true;
        node.hidden = s.hidden === true;
        clearInvalid(form);
        fill(null);
      }
      cancel.addEventListener('click', () => {
        say(error, '');
        say(status, '');
        close();
      });

      forms.set(String(s.id), {
        openFor(rowData, key, parentKey) {
          say(error, '');
          say(status, '');
          clearInvalid(form);
          opened = {key, parent: parentKey};
          node.dataset.row = key;
          target.textContent = parentKey !== undefined ? `For ${key} in ${parentKey}` : `For ${key}`;
          target.hidden = false;
          cancel.hidden = false;
          node.hidden = false;
          fill(rowData);
          node.scrollIntoView({block: 'start'});
          const first = controls.find(([, control, wrapper]) => !wrapper.hidden && !control.disabled);
          if (first) first[1].focus();
        },
      });

      form.addEventListener('submit', (event) => {
        event.preventDefault();
        say(error, '');
        clearInvalid(form);
        const visible = shown();
        const input = {};
        for (const [f, control] of controls) {
          const name = String(f.name);
          if (!visible.get(name) || f.readonly === true) continue;
          if (f.type === 'checkbox') {
            input[name] = control.checked;
            continue;
          }
          const value = control.value;
          if (f.required === true && value.trim() === '') {
            say(error, `${text(f.label ?? f.name)} is required.`);
            control.setAttribute('aria-invalid', 'true');
            control.focus();
            return;
          }
          if (f.type === 'number') {
            if (value.trim() === '') continue;
            const n = Number(value);
            input[name] = Number.isFinite(n) ? n : value; // the plugin's message names what is wrong
          } else if (f.type === 'list') {
            input[name] = value.split(/[\s,]+/).map((v) => v.trim()).filter(Boolean);
          } else {
            input[name] = f.type === 'password' ? value : value.trim();
          }
        }
        if (opened) {
          input.row = opened.key;
          if (opened.parent !== undefined) input.parent = opened.parent;
        }
        run(text(s.action), input, submit, status, error, form).then((done) => {
          if (!done) return;
          const message = status.textContent;
          close();
          say(status, message);
          if (node.hidden) say(pageStatus, message);
        });
      });
      close();
    }

    // A message of a form that closed itself (a hidden one) shows at the top of the page.
    const pageStatus = statusBox({id: 'panel-status'});
    page.insertBefore(pageStatus, body);

    function actionSection(s, node) {
      const status = statusBox();
      const error = alertBox();
      const button = h('button', {type: 'button', class: 'primary', 'data-action': text(s.action)}, text(s.label ?? s.title));
      button.addEventListener('click', () => {
        if (s.confirm && !window.confirm(text(s.confirm))) return;
        run(text(s.action), {}, button, status, error, null);
      });
      node.append(error, status, h('div', {class: 'actions'}, button));
    }

    // ---- per-node progress ----

    function progressSection(s, node) {
      const error = alertBox();
      const summary = h('p', {class: 'muted', hidden: true});
      const tbody = h('tbody');
      node.append(error, summary, tableBox(h('table', {class: 'progress-list', 'data-progress': text(s.id)},
        h('thead', null, h('tr', null, ['Node', 'State', 'Progress', 'Detail'].map((l) => h('th', {scope: 'col'}, l)))),
        tbody)));
      async function load() {
        if (!hasData) return;
        try {
          const answer = await sectionData(s);
          if (!ctx.alive()) return;
          say(error, '');
          summary.textContent = answer && answer.summary !== undefined ? text(answer.summary) : '';
          summary.hidden = summary.textContent === '';
          const nodes = list(answer && answer.nodes).filter(isObject);
          replace(tbody, nodes.length
            ? nodes.map((n) => {
              const p = Number(n.progress);
              const known = n.progress !== undefined && n.progress !== null && Number.isFinite(p);
              const percent = known ? Math.max(0, Math.min(100, p)) : null;
              return h('tr', {'data-node': text(n.node), 'data-state': text(n.state)},
                h('td', {class: 'mono'}, text(n.node)),
                h('td', null, badge(text(n.state))),
                h('td', null,
                  h('progress', {max: '100', value: known ? String(percent) : null, 'aria-label': `${text(n.node)}: progress`}),
                  known ? ` ${Math.round(percent)} %` : ''),
                h('td', null, text(n.detail)));
            })
            : emptyRow(4, 'Nothing in progress.'));
        } catch (e) {
          if (!ctx.alive() || ignorable(e)) return;
          say(error, `Could not load "${text(s.title)}": ${messageOf(e)}`);
        }
      }
      reloaders.push(load);
      if (s.refresh_seconds !== undefined) every(s.refresh_seconds, load);
      return load();
    }

    // ---- graphs ----

    // The graphs a graph section shows: its data's {"graphs": [{series, title}]}, or, when the
    // panel has no data for it (404/501), the series its "metric" names.
    async function graphsOf(s) {
      const fallback = [{series: s.metric, title: s.title}];
      if (!hasData) return fallback;
      try {
        const answer = await sectionData(s);
        return list(answer && answer.graphs).filter((g) => g && g.series !== undefined && g.series !== null && g.series !== '');
      } catch (e) {
        if (e instanceof ApiError && e.missing) return fallback;
        throw e;
      }
    }

    async function graphSection(s, node) {
      const box = h('div', {class: 'graph-list'});
      node.append(box);
      async function load() {
        let graphs;
        let recorded;
        try {
          [graphs, recorded] = await Promise.all([graphsOf(s), loadSeries(ctx.api)]);
        } catch (e) {
          if (!ctx.alive() || ignorable(e)) return;
          replace(box, h('div', {class: 'alert', role: 'alert'}, `Could not load "${text(s.title)}": ${messageOf(e)}`));
          return;
        }
        if (!ctx.alive()) return;
        replace(box, graphs.length
          ? graphs.map((g) => {
            const title = text(g.title ?? g.series);
            const series = text(g.series);
            return h('figure', {class: 'graph-card', 'data-series': series},
              title !== text(s.title) ? h('figcaption', null, title) : null,
              recorded && !recorded.has(series)
                ? h('p', {class: 'empty-note'}, 'no statistics recorded yet')
                : graphImage({series, range: text(g.range || 'day'), metric: text(g.metric || 'conns'), title}));
          })
          : h('p', {class: 'empty-note'}, 'no statistics recorded yet'));
      }
      reloaders.push(load);
      return load();
    }

    async function render() {
      let found;
      try {
        found = await findPanel();
      } catch (e) {
        if (!ctx.alive() || ignorable(e)) return;
        say(pageError, `Could not list the plugins' panels: ${messageOf(e)}`);
        ctx.ready();
        return;
      }
      if (!ctx.alive()) return;
      if (!found) {
        replace(body, missingNotice(`No panel "${panel}" of the plugin "${plugin}" is loaded.`,
          'The plugin may have been removed or refused at start; `shoald plugins --plugin-dir DIR` tells why.'));
        ctx.ready();
        return;
      }
      hasData = found.has_data !== false;
      const definition = isObject(found.definition) ? found.definition : {};
      const title = text(definition.title || `${plugin}: ${panel}`);
      heading.textContent = title;
      ctx.setTitle(title);
      const loads = [];
      list(definition.sections).forEach((s, index) => {
        if (!isObject(s)) return;
        const node = h('section', {class: 'card', 'data-section-id': text(s.id), 'data-section-type': text(s.type)},
          h('h2', null, text(s.title)));
        body.append(node);
        switch (s.type) {
          case 'table': loads.push(tableSection(s, node)); break;
          case 'form': formSection(s, node, index); break;
          case 'action': actionSection(s, node); break;
          case 'graph': loads.push(graphSection(s, node)); break;
          case 'progress': loads.push(progressSection(s, node)); break;
          case 'text': node.append(h('p', {class: 'text-body'}, text(s.body))); break;
          default: node.append(h('p', {class: 'muted'}, `This panel cannot show sections of type "${text(s.type)}".`));
        }
      });
      await Promise.allSettled(loads);
      if (ctx.alive()) ctx.ready();
    }

    render().catch(() => {});
  },
};
