// Audit log: every change, who made it, from where and how it ended; newest first, with a
// pager to older entries. "Times" is how many refusals an entry counts (the manager folds a
// flood of them into one entry per address and minute).
//
// Calls: GET /v1/audit?limit=100[&before=ID].

import {h, replace, append, apiPath, text, dateTime, badge} from '../dom.js';
import {alertBox, busy, emptyRow, headRow, messageOf, missingNotice, say, tableBox} from '../ui.js';
import {ApiError, isAbort} from '../api.js';

const LIMIT = 100;

export default {
  id: 'audit',
  title: 'Audit log',
  mount(page, ctx) {
    const error = alertBox({id: 'audit-error'});
    const body = h('tbody');
    const table = h('table', {id: 'audit'},
      h('caption', {class: 'visually-hidden'}, 'Audit log, newest first'),
      headRow(['ID', 'When', 'Who', 'Action', 'Target', 'Outcome', 'Status', 'Detail', 'From', 'Times']), body);
    const older = h('button', {type: 'button', id: 'audit-older', class: 'secondary', hidden: true}, 'Older entries');
    const newest = h('button', {type: 'button', id: 'audit-newest', class: 'secondary'}, 'Back to the newest');
    const end = h('p', {id: 'audit-end', class: 'muted', hidden: true}, 'That is the oldest entry.');
    const content = h('div', null, tableBox(table), h('div', {class: 'actions'}, older, newest), end);
    replace(page, h('h1', null, 'Audit log'), error, content);

    let oldest = null;

    function row(e) {
      return h('tr', {'data-audit-id': text(e.id)},
        h('td', {class: 'num'}, text(e.id)),
        h('td', {class: 'nowrap'}, dateTime(e.at_ms)),
        h('td', null, text(e.actor)),
        h('td', {class: 'mono'}, text(e.action)),
        h('td', {class: 'mono wrap'}, text(e.target)),
        h('td', null, badge(e.outcome)),
        h('td', {class: 'num'}, text(e.status)),
        h('td', {class: 'detail'}, text(e.detail)),
        h('td', {class: 'mono'}, text(e.peer_address)),
        // Repeated refusals of one address are one entry per minute with their count.
        h('td', {class: 'num'}, text(e.count ?? 1)));
    }

    async function load(before) {
      let answer;
      try {
        answer = await ctx.api.get(apiPath(['v1', 'audit'], {limit: LIMIT, before}));
      } catch (e) {
        if (!ctx.alive() || isAbort(e) || (e instanceof ApiError && e.status === 401)) return;
        if (e instanceof ApiError && e.missing && before === undefined) {
          replace(content, missingNotice('This manager keeps no audit log yet.', 'Its /v1/audit route answered 404; upgrade shoald.'));
        } else {
          say(error, `Could not load the audit log: ${messageOf(e)}`);
        }
        ctx.ready();
        return;
      }
      if (!ctx.alive()) return;
      say(error, '');
      const entries = Array.isArray(answer && answer.entries) ? answer.entries : [];
      if (before === undefined) {
        replace(body, entries.length ? entries.map(row) : emptyRow(9, 'Nothing has been recorded yet.'));
      } else {
        append(body, entries.map(row));
      }
      if (entries.length) oldest = entries[entries.length - 1].id;
      const more = entries.length >= LIMIT;
      older.hidden = !more;
      end.hidden = more || (before === undefined && entries.length === 0);
      ctx.ready();
    }

    older.addEventListener('click', () => busy(older, () => load(oldest), 'Loading…'));
    newest.addEventListener('click', () => busy(newest, () => load(undefined), 'Loading…'));
    load(undefined).catch(() => {});
  },
};
