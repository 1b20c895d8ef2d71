// Graphs: one graph per recorded statistics series, titled as its plugin titled its samples,
// with a range and a metric picker. A series labelled with a real_server goes in a folded group.
//
// Calls: GET /v1/stats/series; <img src="/v1/stats/graph?series=ID&range=R&metric=M&format=png">.

import {h, replace, apiPath, text, relative, dateTime, count, bytes} from '../dom.js';
import {alertBox, messageOf, missingNotice, say, section, select} from '../ui.js';
import {ApiError, isAbort} from '../api.js';

export const RANGES = ['hour', 'day', 'week', 'month', 'year'];
export const METRICS = [['conns', 'Connections'], ['packets', 'Packets'], ['bytes', 'Bytes']];

const SMALL = [320, 100]; // pixels of the balancer's small graphs

// Kept while the page is open, so coming back shows the same choice.
const chosen = {range: 'day', metric: 'conns'};

// last_update is in seconds (RRD's clock); milliseconds are taken as they are.
function seconds(t) {
  const n = Number(t);
  return Number.isFinite(n) && n > 0 ? (n < 1e11 ? n * 1000 : n) : null;
}

export function graphUrl(series, range, metric, size) {
  return apiPath(['v1', 'stats', 'graph'], {series, range, metric, format: 'png', width: size && size[0], height: size && size[1]});
}

// <img> of one series' graph; the request carries the session cookie (same origin).
export function graphImage({series, range, metric, title, small = false}) {
  const img = h('img', {
    class: small ? 'graph graph-small' : 'graph',
    src: graphUrl(series, range, metric, small ? SMALL : null),
    alt: title,
    'data-graph-series': String(series),
    'data-range': range,
    'data-metric': metric,
  });
  img.addEventListener('error', () => {
    img.classList.add('broken');
    img.alt = `${title}: the graph could not be drawn`;
  });
  return img;
}

// The ids of the recorded series as a Set, or null when this manager has no statistics
// routes (404/501) or they fail: graphs are then left out. A 401 or an abort is rethrown.
export async function loadSeries(api, withRows = false) {
  try {
    const body = await api.get('/v1/stats/series');
    const rows = Array.isArray(body && body.series) ? body.series.filter((s) => s && s.series !== undefined) : [];
    return withRows ? rows : new Set(rows.map((s) => String(s.series)));
  } catch (e) {
    if (isAbort(e) || (e instanceof ApiError && e.status === 401)) throw e;
    if (withRows) throw e;
    return null;
  }
}

export default {
  id: 'graphs',
  title: 'Graphs',
  mount(page, ctx) {
    const error = alertBox({id: 'graphs-error'});
    const range = select({id: 'graph-range', name: 'range'}, RANGES.map((r) => [r, `Last ${r}`]), chosen.range);
    const metric = select({id: 'graph-metric', name: 'metric'}, METRICS, chosen.metric);
    const list = h('div', {id: 'graphs'});
    const pickers = h('form', {id: 'graph-picker', class: 'inline-form row'},
      h('div', {class: 'field'}, h('label', {for: 'graph-range'}, 'Range'), range),
      h('div', {class: 'field'}, h('label', {for: 'graph-metric'}, 'Metric'), metric));
    pickers.addEventListener('submit', (event) => event.preventDefault());
    replace(page, h('h1', null, 'Graphs'), error, pickers, list);

    function update() {
      chosen.range = range.value;
      chosen.metric = metric.value;
      for (const img of list.querySelectorAll('img.graph')) {
        const title = img.dataset.title || img.alt;
        img.classList.remove('broken');
        img.alt = title;
        img.dataset.range = range.value;
        img.dataset.metric = metric.value;
        img.setAttribute('src', graphUrl(img.dataset.graphSeries, range.value, metric.value));
      }
    }
    range.addEventListener('change', update);
    metric.addEventListener('change', update);

    async function load() {
      let rows;
      try {
        rows = await loadSeries(ctx.api, true);
      } catch (e) {
        if (!ctx.alive() || isAbort(e) || (e instanceof ApiError && e.status === 401)) return;
        if (e instanceof ApiError && e.missing) {
          replace(list, missingNotice('This manager records no statistics yet.', 'Its /v1/stats routes answered 404; upgrade shoald to draw graphs.'));
        } else {
          say(error, `Could not list the statistics: ${messageOf(e)}`);
        }
        ctx.ready();
        return;
      }
      if (!ctx.alive()) return;
      if (rows.length === 0) {
        replace(list, h('p', {id: 'graphs-empty', class: 'empty-note'}, 'no statistics recorded yet'));
        ctx.ready();
        return;
      }
      // A real server's series (labels.real_server) goes in a folded group drawn when opened:
      // a balancer with many real servers would otherwise ask for dozens of graphs at once.
      const isMember = (s) => s.labels && typeof s.labels === 'object' && s.labels.real_server !== undefined;
      const main = rows.filter((s) => !isMember(s));
      const members = rows.filter(isMember);
      const figure = (s) => {
        const id = String(s.series);
        const title = s.title ? String(s.title) : id;
        const img = graphImage({series: id, range: range.value, metric: metric.value, title});
        img.dataset.title = title;
        return h('figure', {class: 'card graph-card', 'data-series': id},
          h('figcaption', null,
            h('span', {class: 'graph-title mono'}, title),
            title !== id ? h('span', {class: 'muted small mono'}, id) : null,
            h('span', {class: 'muted', title: dateTime(seconds(s.last_update))}, `updated ${relative(seconds(s.last_update))}`)),
          img,
          s.conns !== undefined
            ? h('p', {class: 'muted small'},
              `Last sample: ${count(s.conns)} connections, ${count(s.packets_in)} / ${count(s.packets_out)} packets and ${bytes(s.bytes_in)} / ${bytes(s.bytes_out)} in / out.`)
            : null);
      };
      let folded = null;
      if (members.length) {
        const box = h('div', {class: 'graph-list'});
        folded = h('details', {id: 'graphs-members', class: 'graph-group'},
          h('summary', null, `Real servers (${members.length})`), box);
        folded.addEventListener('toggle', () => {
          if (folded.open && !box.firstChild) replace(box, members.map(figure));
        });
      }
      replace(list,
        main.length ? h('div', {class: 'graph-list'}, main.map(figure)) : h('p', {class: 'empty-note'}, 'no virtual service has statistics yet'),
        folded);
      ctx.ready();
    }

    load().catch(() => {});
  },
};
