// A plugin's panel, rendered from its declarative definition (sdk/include/shoal/panel.h):
// sections of type table, form, action, graph and text. The definition and the data are the
// plugin's; everything from them is shown as text (see dom.js), so a plugin never puts
// markup or script into the page.
//
// Calls: GET /v1/panels (when the panel is not known yet),
//   GET  /v1/panels/{plugin}/{panel}/sections/{section}   table rows / graphs
//   POST /v1/panels/{plugin}/{panel}/actions/{action}     forms and actions
//   <img src="/v1/stats/graph?series=...">                graph sections

import {h, replace, apiPath, text} from '../dom.js';
import {alertBox, busy, clearInvalid, emptyRow, field, messageOf, missingNotice, say, select, showError, statusBox, tableBox} from '../ui.js';
import {ApiError, isAbort} from '../api.js';
import {graphImage, loadSeries} from './graphs.js';

const ignorable = (e) => isAbort(e) || (e instanceof ApiError && e.status === 401);

function list(value) {
  return Array.isArray(value) ? value : [];
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
    const reloaders = []; // table sections reload after an action
    let hasData = true; // false when the panel says it has no data callback

    async function findPanel() {
      const known = () => ctx.panels().find((p) => p.plugin === plugin && p.id === panel);
      if (known()) return known();
      await ctx.reloadPanels();
      return known();
    }

    function tableSection(s, node) {
      const columns = list(s.columns).filter((c) => c && c.key !== undefined);
      const tbody = h('tbody');
      const error = alertBox();
      const table = h('table', {'data-table': text(s.id)},
        h('thead', null, h('tr', null, columns.map((c) => h('th', {scope: 'col', 'data-key': text(c.key)}, text(c.label ?? c.key))))),
        tbody);
      node.append(error, tableBox(table));
      async function load() {
        if (!hasData) {
          replace(tbody, emptyRow(Math.max(columns.length, 1), 'This plugin gives no data for its tables.'));
          return;
        }
        try {
          const answer = await ctx.api.get(apiPath([...base, 'sections', s.id]));
          if (!ctx.alive()) return;
          say(error, '');
          const rows = list(answer && answer.rows).filter((r) => r && typeof r === 'object');
          replace(tbody, rows.length
            ? rows.map((r) => h('tr', null, columns.map((c) => h('td', null, text(r[c.key])))))
            : emptyRow(Math.max(columns.length, 1), 'Nothing to show.'));
        } catch (e) {
          if (!ctx.alive() || ignorable(e)) return;
          say(error, `Could not load "${text(s.title)}": ${messageOf(e)}`);
        }
      }
      reloaders.push(load);
      return load();
    }

    async function run(action, input, button, status, error, form) {
      say(error, '');
      say(status, '');
      if (form) clearInvalid(form);
      return busy(button, async () => {
        try {
          const answer = await ctx.api.post(apiPath([...base, 'actions', action]), input);
          const message = answer && answer.message !== undefined ? text(answer.message) : 'Done.';
          say(status, message);
          if (form) form.reset();
          await Promise.all(reloaders.map((r) => r()));
          return true;
        } catch (e) {
          showError(error, e, form);
          return false;
        }
      });
    }

    function formSection(s, node, index) {
      const fields = list(s.fields).filter((f) => f && f.name !== undefined);
      const status = statusBox();
      const error = alertBox({id: `panel-form-${index}-error`});
      const controls = [];
      const rendered = fields.map((f, i) => {
        const id = `panel-field-${index}-${i}`;
        const props = {id, name: text(f.name), 'data-field': text(f.name), required: f.required === true};
        let control;
        if (f.type === 'select') {
          control = select(props, list(f.options).map((o) => [text(o), text(o)]));
        } else if (f.type === 'checkbox') {
          control = h('input', {...props, type: 'checkbox', required: false});
        } else if (f.type === 'number') {
          control = h('input', {...props, type: 'number', step: 'any'});
        } else if (f.type === 'password') {
          control = h('input', {...props, type: 'password', autocomplete: 'new-password'});
        } else {
          control = h('input', {...props, type: 'text', autocomplete: 'off'});
        }
        controls.push([f, control]);
        return field(`${text(f.label ?? f.name)}${f.required === true ? ' (required)' : ''}`, control);
      });
      const submit = h('button', {type: 'submit', class: 'primary', 'data-action': text(s.action)}, text(s.title));
      const form = h('form', {class: 'form-grid', novalidate: true, 'data-form': text(s.id)},
        error, status, h('div', {class: 'grid'}, rendered), h('div', {class: 'actions'}, submit));
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        const input = {};
        for (const [f, control] of controls) {
          const name = String(f.name);
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
            input[name] = Number.isFinite(n) ? n : value;
          } else {
            input[name] = value;
          }
        }
        run(text(s.action), input, submit, status, error, form);
      });
      node.append(form);
    }

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

    // The graphs a graph section shows: its data's {"graphs": [{series, title}]}, or, when the
    // panel has no data for it (404/501), the series its "metric" names.
    async function graphsOf(s) {
      const fallback = [{series: s.metric, title: s.title}];
      if (!hasData) return fallback;
      try {
        const answer = await ctx.api.get(apiPath([...base, 'sections', s.id]));
        return list(answer && answer.graphs).filter((g) => g && g.series !== undefined && g.series !== null && g.series !== '');
      } catch (e) {
        if (e instanceof ApiError && e.missing) return fallback;
        throw e;
      }
    }

    async function graphSection(s, node) {
      const box = h('div', {class: 'graph-list'});
      node.append(box);
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
      const definition = found.definition && typeof found.definition === 'object' ? found.definition : {};
      const title = text(definition.title || `${plugin}: ${panel}`);
      heading.textContent = title;
      ctx.setTitle(title);
      const loads = [];
      list(definition.sections).forEach((s, index) => {
        if (!s || typeof s !== 'object') return;
        const node = h('section', {class: 'card', 'data-section-id': text(s.id), 'data-section-type': text(s.type)},
          h('h2', null, text(s.title)));
        body.append(node);
        switch (s.type) {
          case 'table': loads.push(tableSection(s, node)); break;
          case 'form': formSection(s, node, index); break;
          case 'action': actionSection(s, node); break;
          case 'graph': loads.push(graphSection(s, node)); break;
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
