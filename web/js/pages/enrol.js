// Enrol a node: make a one-time join token and show the command to run on the new node.
//
// Calls: POST /v1/join-tokens {"ttl_seconds"} → {"token", "expires_at_ms"}.

import {h, replace, dateTime, duration} from '../dom.js';
import {alertBox, busy, copyButton, field, say, section, select, showError} from '../ui.js';

const TTLS = [[900, '15 minutes'], [3600, '1 hour'], [14400, '4 hours'], [86400, '1 day'], [604800, '7 days']];

export function joinCommand(token) {
  return `shoald --config /etc/shoal/shoald.conf --join ${token}`;
}

export default {
  id: 'enrol',
  title: 'Enrol a node',
  mount(page, ctx) {
    const ttl = select({id: 'join-ttl', name: 'ttl_seconds', 'data-field': 'ttl_seconds'}, TTLS, 3600);
    const button = h('button', {type: 'submit', id: 'new-join-token', class: 'primary'}, 'Make a join token');
    const error = alertBox({id: 'join-error'});
    const form = h('form', {id: 'join-form', class: 'inline-form'},
      error,
      h('div', {class: 'row'}, field('Valid for', ttl), h('div', {class: 'actions'}, button)));

    const token = h('textarea', {id: 'join-token', readonly: 'readonly', rows: '3', spellcheck: 'false', class: 'mono',
      'aria-describedby': 'join-token-expiry'});
    const expiry = h('p', {id: 'join-token-expiry'});
    const command = h('code', {id: 'join-command', class: 'command'});
    const result = h('div', {id: 'join-result', class: 'card', hidden: true},
      h('h2', null, 'Join token'),
      h('div', {class: 'field'}, h('label', {for: 'join-token'}, 'Token (one use)'), token,
        h('div', {class: 'actions'}, copyButton({id: 'copy-join-token'}, () => token.value, token))),
      expiry,
      h('h3', null, 'On the new node, as root'),
      h('pre', {class: 'command-box'}, command),
      h('div', {class: 'actions'}, copyButton({id: 'copy-join-command'}, () => command.textContent)),
      h('p', {class: 'muted'}, 'The token carries the manager\'s address and its CA fingerprint, so the node checks the manager before it sends anything. It works once, and not after it expires. The node then shows on the dashboard; give it roles there.'));

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      say(error, '');
      busy(button, async () => {
        try {
          const answer = await ctx.api.post('/v1/join-tokens', {ttl_seconds: Number(ttl.value)});
          const value = String(answer && answer.token ? answer.token : '');
          token.textContent = value;
          token.value = value;
          command.textContent = joinCommand(value);
          const expires = Number(answer && answer.expires_at_ms);
          expiry.textContent = Number.isFinite(expires) && expires > 0
            ? `Expires ${dateTime(expires)} (in ${duration((expires - Date.now()) / 1000)}).`
            : '';
          result.hidden = false;
          token.focus();
          token.select();
        } catch (e) {
          showError(error, e, form);
        }
      });
    });

    replace(page,
      h('h1', null, 'Enrol a node'),
      section('New join token',
        h('p', null, 'Install shoal on the new server, then make a token here and run the command it shows there.'),
        form),
      result);
    ctx.ready();
  },
};
