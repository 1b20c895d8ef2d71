// Users of the panel: list, add, set a password, delete.
//
// Calls: GET /v1/users, POST /v1/users {"name", "password"},
// PUT /v1/users/{name}/password {"password"}, DELETE /v1/users/{name}.

import {h, replace, apiPath, text, dateTime, relative, badge} from '../dom.js';
import {alertBox, busy, clearInvalid, emptyRow, field, headRow, keepFocus, messageOf, missingNotice, say, section, select, setOptions, showError, statusBox, tableBox} from '../ui.js';
import {ApiError, isAbort} from '../api.js';

function passwordPair(id, againId, label) {
  const password = h('input', {id, name: 'password', type: 'password', autocomplete: 'new-password',
    required: true, 'data-field': 'password'});
  const again = h('input', {id: againId, name: 'password_again', type: 'password', autocomplete: 'new-password',
    required: true});
  return {password, again, fields: [field(label, password), field('The same again', again)]};
}

// Client-side checks a person would otherwise learn only from the server; returns a message or ''.
function checkPair(pair) {
  if (!pair.password.value) return 'Enter a password.';
  if (pair.password.value !== pair.again.value) return 'The two passwords differ; type the same password twice.';
  return '';
}

export default {
  id: 'users',
  title: 'Users',
  mount(page, ctx) {
    const pageError = alertBox({id: 'users-error'});
    const pageStatus = statusBox({id: 'users-status'});
    const body = h('tbody');
    const table = h('table', {id: 'users'},
      h('caption', {class: 'visually-hidden'}, 'Users of the panel'),
      headRow(['Name', 'Created', 'State', '']), body);
    const me = ctx.session && ctx.session.user ? String(ctx.session.user.name) : '';

    // Add a user.
    const name = h('input', {id: 'new-user-name', name: 'name', type: 'text', autocomplete: 'off', required: true, 'data-field': 'name',
      autocapitalize: 'none', spellcheck: 'false'});
    const addPair = passwordPair('new-user-password', 'new-user-password-again', 'Password');
    const addSubmit = h('button', {type: 'submit', id: 'user-submit', class: 'primary'}, 'Add user');
    const addError = alertBox({id: 'user-error'});
    const addForm = h('form', {id: 'user-form', class: 'card form-grid', novalidate: true},
      h('h2', null, 'Add a user'), addError,
      h('div', {class: 'grid'}, field('User name', name), ...addPair.fields),
      h('div', {class: 'actions'}, addSubmit));

    // Set a password.
    const who = select({id: 'password-user', name: 'name'}, []);
    const setPair = passwordPair('password-new', 'password-again', 'New password');
    const setSubmit = h('button', {type: 'submit', id: 'password-submit', class: 'primary'}, 'Set password');
    const setError = alertBox({id: 'password-error'});
    // For password managers: the user whose password this is (the select above says it).
    const account = h('input', {type: 'text', name: 'username', autocomplete: 'username', hidden: true, tabindex: '-1', 'aria-hidden': 'true'});
    who.addEventListener('change', () => {
      account.value = who.value;
    });
    const setForm = h('form', {id: 'password-form', class: 'card form-grid', novalidate: true},
      h('h2', null, 'Set a password'), setError, account,
      h('div', {class: 'grid'}, field('User', who), ...setPair.fields),
      h('div', {class: 'actions'}, setSubmit));

    const content = h('div', null, section('Panel users', pageStatus, tableBox(table)), h('div', {class: 'two-forms'}, addForm, setForm));
    replace(page, h('h1', null, 'Users'), pageError, content);

    addForm.addEventListener('submit', (event) => {
      event.preventDefault();
      say(addError, '');
      clearInvalid(addForm);
      const problem = !name.value.trim() ? 'Enter a user name.' : checkPair(addPair);
      if (problem) {
        say(addError, problem);
        (!name.value.trim() ? name : addPair.password).focus();
        return;
      }
      busy(addSubmit, async () => {
        try {
          await ctx.api.post('/v1/users', {name: name.value.trim(), password: addPair.password.value});
          say(pageStatus, `User ${name.value.trim()} was added.`);
          addForm.reset();
          await load();
        } catch (e) {
          showError(addError, e, addForm);
        }
      });
    });

    setForm.addEventListener('submit', (event) => {
      event.preventDefault();
      say(setError, '');
      clearInvalid(setForm);
      const problem = !who.value ? 'Choose a user.' : checkPair(setPair);
      if (problem) {
        say(setError, problem);
        return;
      }
      const user = who.value;
      busy(setSubmit, async () => {
        try {
          await ctx.api.put(apiPath(['v1', 'users', user, 'password']), {password: setPair.password.value});
          say(pageStatus, `The password of ${user} was changed.`);
          setPair.password.value = '';
          setPair.again.value = '';
        } catch (e) {
          showError(setError, e, setForm);
        }
      });
    });

    async function remove(user, button) {
      const self = user === me;
      if (!window.confirm(self ? `Delete your own user ${user}? You are signed out and cannot sign in as ${user} again.` : `Delete the user ${user}?`)) return;
      await busy(button, async () => {
        try {
          await ctx.api.del(apiPath(['v1', 'users', user]));
          say(pageError, '');
          say(pageStatus, `User ${user} was deleted.`);
          await load();
        } catch (e) {
          showError(pageError, e);
        }
      });
    }

    function render(users) {
      if (users.length === 0) {
        replace(body, emptyRow(4, 'No user.'));
      } else {
        replace(body, users.map((u) => {
          const userName = text(u.name);
          const del = h('button', {type: 'button', class: 'small danger', 'data-action': 'delete-user', 'data-user': userName}, 'Delete');
          del.addEventListener('click', () => remove(userName, del));
          const created = u.created_at_ms;
          return h('tr', {'data-user': userName},
            h('td', null, userName, userName === me ? [' ', h('span', {class: 'tag'}, 'you')] : null),
            h('td', {title: dateTime(created)}, created ? relative(created) : ''),
            h('td', null, u.disabled === true ? badge('disabled') : badge('active')),
            h('td', null, del));
        }));
      }
      setOptions(who, [['', 'Choose a user…'], ...users.map((u) => [text(u.name), text(u.name)])]);
    }

    async function load() {
      let answer;
      try {
        answer = await ctx.api.get('/v1/users');
      } catch (e) {
        if (!ctx.alive() || isAbort(e) || (e instanceof ApiError && e.status === 401)) return;
        if (e instanceof ApiError && e.missing) {
          replace(content, missingNotice('This manager does not manage panel users yet.', 'Its /v1/users route answered 404; upgrade shoald.'));
        } else {
          say(pageError, `Could not list the users: ${messageOf(e)}`);
        }
        ctx.ready();
        return;
      }
      if (!ctx.alive()) return;
      const users = Array.isArray(answer && answer.users) ? answer.users.filter((u) => u && u.name !== undefined) : [];
      keepFocus(table, () => render(users));
      ctx.ready();
    }

    load().catch(() => {});
  },
};
