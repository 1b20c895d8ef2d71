// Hosting accounts: list them with their state and certificate, create one on a plan, suspend,
// unsuspend and delete; add and remove an account's domains. Plans with their limits (the
// dimensions the loaded plugins declare), and applying a plan to its accounts.
//
// Calls: GET /v1/accounts, POST /v1/accounts {"name", "domain", "plan"},
// POST /v1/accounts/{name}/suspend {"reason"}, POST /v1/accounts/{name}/unsuspend,
// DELETE /v1/accounts/{name}, POST /v1/accounts/{name}/domains {"name", "kind", "parent"},
// DELETE /v1/accounts/{name}/domains/{domain}, GET /v1/limits, GET /v1/plans,
// POST /v1/plans {"name", "description", "limits"}, POST /v1/plans/{name}/apply.

import {h, replace, apiPath, text, dateTime, relative, badge} from '../dom.js';
import {alertBox, busy, clearInvalid, emptyRow, field, headRow, keepFocus, messageOf, missingNotice, say, section, select, setOptions, showError, statusBox, tableBox} from '../ui.js';
import {ApiError, isAbort} from '../api.js';

const KINDS = [['secondary', 'Secondary (a site of its own)'], ['alias', 'Alias (served by its parent\'s site)'],
  ['subdomain', 'Subdomain (a site under a domain of the account)']];

function limitText(value) {
  return value === null || value === undefined ? 'unlimited' : String(value);
}

function limitsSummary(limits) {
  const entries = Object.entries(limits || {});
  return entries.length ? entries.map(([k, v]) => `${k} ${limitText(v)}`).join(', ') : 'none';
}

// What the nodes were given, for the status line.
function sent(answer) {
  const commands = Array.isArray(answer && answer.commands) ? answer.commands : [];
  const warning = answer && answer.warning ? ` ${text(answer.warning)}` : '';
  return (commands.length ? ` Sent to the nodes as command ${commands.join(', ')}.` : '') + warning;
}

export default {
  id: 'accounts',
  title: 'Accounts',
  mount(page, ctx) {
    // An owner sees their own account and its domains; creating, suspending and deleting
    // accounts and the plans are the admins'.
    const owner = Boolean(ctx.session && ctx.session.user && ctx.session.user.kind === 'owner');
    const pageError = alertBox({id: 'accounts-error'});
    const pageStatus = statusBox({id: 'accounts-status'});
    const body = h('tbody');
    const table = h('table', {id: 'accounts'},
      h('caption', {class: 'visually-hidden'}, 'Hosting accounts'),
      headRow(['Account', 'uid', 'State', 'Domains', 'Plan', 'Certificate', '']), body);

    // Create an account.
    const name = h('input', {id: 'new-account-name', name: 'name', type: 'text', autocomplete: 'off', required: true,
      'data-field': 'name', autocapitalize: 'none', spellcheck: 'false'});
    const domain = h('input', {id: 'new-account-domain', name: 'domain', type: 'text', autocomplete: 'off', required: true,
      'data-field': 'domain', autocapitalize: 'none', spellcheck: 'false'});
    const plan = select({id: 'new-account-plan', name: 'plan', 'data-field': 'plan'}, [['', 'No plan (unlimited)']]);
    const addSubmit = h('button', {type: 'submit', id: 'account-submit', class: 'primary'}, 'Create account');
    const addError = alertBox({id: 'account-error'});
    const addForm = h('form', {id: 'account-form', class: 'card form-grid', novalidate: true},
      h('h2', null, 'Create an account'), addError,
      h('div', {class: 'grid'},
        field('Account name', name, 'a-z, 0-9, _ and -, starting with a letter; it is also the Unix user on every node'),
        field('Primary domain', domain, 'Unicode names are stored as punycode'),
        field('Plan', plan, 'The plan\'s limits are copied into the account')),
      h('div', {class: 'actions'}, addSubmit));

    // Add a domain.
    const domainAccount = select({id: 'domain-account', name: 'account'}, []);
    const domainName = h('input', {id: 'new-domain-name', name: 'name', type: 'text', autocomplete: 'off', required: true,
      'data-field': 'name', autocapitalize: 'none', spellcheck: 'false'});
    const domainKind = select({id: 'new-domain-kind', name: 'kind', 'data-field': 'kind'}, KINDS, 'secondary');
    const domainParent = select({id: 'new-domain-parent', name: 'parent', 'data-field': 'parent'}, []);
    const parentField = field('Parent', domainParent, 'The site the alias or subdomain belongs to');
    const domainSubmit = h('button', {type: 'submit', id: 'domain-submit', class: 'primary'}, 'Add domain');
    const domainError = alertBox({id: 'domain-error'});
    const domainForm = h('form', {id: 'domain-form', class: 'card form-grid', novalidate: true},
      h('h2', null, 'Add a domain'), domainError,
      h('div', {class: 'grid'}, field('Account', domainAccount), field('Domain', domainName), field('Kind', domainKind), parentField),
      h('div', {class: 'actions'}, domainSubmit));

    // Plans.
    const planBody = h('tbody');
    const planTable = h('table', {id: 'plans'}, h('caption', {class: 'visually-hidden'}, 'Plans'),
      headRow(['Plan', 'Accounts', 'Limits', '']), planBody);
    const planName = h('input', {id: 'new-plan-name', name: 'name', type: 'text', autocomplete: 'off', required: true,
      'data-field': 'name', autocapitalize: 'none', spellcheck: 'false'});
    const planDescription = h('input', {id: 'new-plan-description', name: 'description', type: 'text', autocomplete: 'off',
      'data-field': 'description'});
    const limitFields = h('div', {class: 'grid', id: 'new-plan-limits'});
    const planSubmit = h('button', {type: 'submit', id: 'plan-submit', class: 'primary'}, 'Add plan');
    const planError = alertBox({id: 'plan-error'});
    const planForm = h('form', {id: 'plan-form', class: 'card form-grid', novalidate: true},
      h('h2', null, 'Add a plan'), planError,
      h('div', {class: 'grid'}, field('Plan name', planName), field('Description', planDescription)),
      h('p', {class: 'hint'}, 'Leave a limit empty for unlimited.'), limitFields,
      h('div', {class: 'actions'}, planSubmit));

    const content = owner
      ? h('div', null, section('Your account', pageStatus, tableBox(table)), domainForm)
      : h('div', null,
        section('Accounts', pageStatus, tableBox(table)),
        h('div', {class: 'two-forms'}, addForm, domainForm),
        section('Plans', tableBox(planTable)), planForm);
    replace(page, h('h1', null, owner ? 'Your account' : 'Accounts'), pageError, content);

    let accounts = [];
    let dimensions = [];

    function refreshParents() {
      const chosen = accounts.find((a) => text(a.name) === domainAccount.value);
      const sites = chosen && Array.isArray(chosen.domains) ? chosen.domains.filter((d) => d.kind !== 'alias') : [];
      setOptions(domainParent, sites.map((d) => [text(d.name), text(d.unicode)]));
      parentField.hidden = domainKind.value === 'secondary';
    }
    domainAccount.addEventListener('change', refreshParents);
    domainKind.addEventListener('change', refreshParents);

    addForm.addEventListener('submit', (event) => {
      event.preventDefault();
      say(addError, '');
      clearInvalid(addForm);
      if (!name.value.trim() || !domain.value.trim()) {
        say(addError, 'Enter the account name and its primary domain.');
        (!name.value.trim() ? name : domain).focus();
        return;
      }
      busy(addSubmit, async () => {
        try {
          const request = {name: name.value.trim(), domain: domain.value.trim()};
          if (plan.value) request.plan = plan.value;
          const answer = await ctx.api.post('/v1/accounts', request);
          say(pageStatus, `Account ${request.name} was created (uid ${text(answer.account && answer.account.uid)}).${sent(answer)}`);
          addForm.reset();
          await load();
        } catch (e) {
          showError(addError, e, addForm);
        }
      });
    });

    domainForm.addEventListener('submit', (event) => {
      event.preventDefault();
      say(domainError, '');
      clearInvalid(domainForm);
      if (!domainAccount.value || !domainName.value.trim()) {
        say(domainError, 'Choose an account and enter the domain.');
        return;
      }
      const account = domainAccount.value;
      busy(domainSubmit, async () => {
        try {
          const request = {name: domainName.value.trim(), kind: domainKind.value};
          if (domainKind.value !== 'secondary') request.parent = domainParent.value;
          const answer = await ctx.api.post(apiPath(['v1', 'accounts', account, 'domains']), request);
          say(pageStatus, `${request.name} was added to ${account}.${sent(answer)}`);
          domainName.value = '';
          await load();
        } catch (e) {
          showError(domainError, e, domainForm);
        }
      });
    });

    planForm.addEventListener('submit', (event) => {
      event.preventDefault();
      say(planError, '');
      clearInvalid(planForm);
      if (!planName.value.trim()) {
        say(planError, 'Enter the plan name.');
        planName.focus();
        return;
      }
      const limits = {};
      for (const input of limitFields.querySelectorAll('input')) {
        const value = input.value.trim();
        if (value === '') continue;
        if (!/^[0-9]+$/.test(value)) {
          say(planError, `${input.dataset.limit} must be a whole number, or empty for unlimited.`);
          input.focus();
          return;
        }
        limits[input.dataset.limit] = Number(value);
      }
      busy(planSubmit, async () => {
        try {
          await ctx.api.post('/v1/plans', {name: planName.value.trim(), description: planDescription.value, limits});
          say(pageStatus, `Plan ${planName.value.trim()} was added.`);
          planForm.reset();
          await load();
        } catch (e) {
          showError(planError, e, planForm);
        }
      });
    });

    async function act(button, work, done) {
      await busy(button, async () => {
        try {
          const answer = await work();
          say(pageError, '');
          say(pageStatus, done(answer));
          await load();
        } catch (e) {
          showError(pageError, e);
        }
      });
    }

    function accountRow(a) {
      const accountName = text(a.name);
      const domains = Array.isArray(a.domains) ? a.domains : [];
      const suspended = a.state === 'suspended';
      const toggle = h('button', {type: 'button', class: 'small', 'data-action': suspended ? 'unsuspend' : 'suspend',
        'data-account': accountName}, suspended ? 'Unsuspend' : 'Suspend');
      toggle.addEventListener('click', () => {
        if (suspended) {
          act(toggle, () => ctx.api.post(apiPath(['v1', 'accounts', accountName, 'unsuspend']), {}),
            (answer) => `${accountName} is active again.${sent(answer)}`);
          return;
        }
        const reason = window.prompt(`Why is ${accountName} suspended? The owner and the logs see it.`, '');
        if (reason === null) return;
        act(toggle, () => ctx.api.post(apiPath(['v1', 'accounts', accountName, 'suspend']), {reason}),
          (answer) => `${accountName} is suspended: its sites answer 503.${sent(answer)}`);
      });
      const del = h('button', {type: 'button', class: 'small danger', 'data-action': 'delete-account', 'data-account': accountName}, 'Delete');
      del.addEventListener('click', () => {
        if (!window.confirm(`Delete the account ${accountName}? Its sites and its Unix user go from every node; its files stay on the storage.`)) return;
        act(del, () => ctx.api.del(apiPath(['v1', 'accounts', accountName])), (answer) => `${accountName} was deleted.${sent(answer)}`);
      });
      const domainList = h('ul', {class: 'plain'}, domains.map((d) => {
        const domainKey = text(d.name);
        const remove = d.kind === 'primary' ? null
          : h('button', {type: 'button', class: 'small secondary', 'data-action': 'remove-domain', 'data-domain': domainKey}, 'Remove');
        if (remove) {
          remove.addEventListener('click', () => {
            if (!window.confirm(`Remove ${text(d.unicode)} from ${accountName}?`)) return;
            act(remove, () => ctx.api.del(apiPath(['v1', 'accounts', accountName, 'domains', domainKey])),
              (answer) => `${text(d.unicode)} was removed from ${accountName}.${sent(answer)}`);
          });
        }
        return h('li', {'data-domain': domainKey}, text(d.unicode), ' ', h('span', {class: 'tag'}, text(d.kind)),
          d.parent ? h('span', {class: 'muted'}, ` of ${text(d.parent)}`) : null, remove ? [' ', remove] : null);
      }));
      const certificate = a.certificate;
      return h('tr', {'data-account': accountName},
        h('td', null, accountName, h('div', {class: 'muted'}, text(a.home))),
        h('td', null, text(a.uid)),
        h('td', null, badge(suspended ? 'suspended' : 'active'), suspended ? h('div', {class: 'muted'}, text(a.suspend_reason)) : null),
        h('td', null, domainList),
        h('td', null, a.plan ? text(a.plan) : '—', h('div', {class: 'muted'}, limitsSummary(a.limits))),
        h('td', {title: certificate ? dateTime(certificate.not_after_ms) : ''},
          certificate ? `${text(certificate.issuer)}, ends ${relative(certificate.not_after_ms)}` : 'none'),
        h('td', null, owner ? null : [toggle, ' ', del]));
    }

    function planRow(p) {
      const planKey = text(p.name);
      const apply = h('button', {type: 'button', class: 'small', 'data-action': 'apply-plan', 'data-plan': planKey}, 'Apply to its accounts');
      apply.addEventListener('click', () => {
        if (!window.confirm(`Give every account on ${planKey} the plan's limits now?`)) return;
        act(apply, () => ctx.api.post(apiPath(['v1', 'plans', planKey, 'apply']), {}),
          (answer) => `${Array.isArray(answer && answer.changed) ? answer.changed.length : 0} account(s) took the limits of ${planKey}.`);
      });
      return h('tr', {'data-plan': planKey}, h('td', null, planKey, p.description ? h('div', {class: 'muted'}, text(p.description)) : null),
        h('td', null, text(p.accounts)), h('td', null, limitsSummary(p.limits)), h('td', null, apply));
    }

    function render(plans) {
      keepFocus(table, () => replace(body, accounts.length ? accounts.map(accountRow) : emptyRow(7, 'No account yet.')));
      keepFocus(planTable, () => replace(planBody, plans.length ? plans.map(planRow) : emptyRow(4, 'No plan yet.')));
      setOptions(plan, [['', 'No plan (unlimited)'], ...plans.map((p) => [text(p.name), text(p.name)])]);
      setOptions(domainAccount, accounts.map((a) => [text(a.name), text(a.name)]));
      refreshParents();
      if (limitFields.childElementCount !== dimensions.length) {
        replace(limitFields, dimensions.map((d) => field(`${text(d.label)} (${text(d.name)})`,
          h('input', {id: `plan-limit-${text(d.name).replace(/[^a-z0-9]/g, '-')}`, type: 'text', inputmode: 'numeric',
            autocomplete: 'off', 'data-limit': text(d.name)}))));
      }
    }

    async function load() {
      let answers;
      try {
        answers = await Promise.all([ctx.api.get('/v1/accounts'), owner ? {plans: []} : ctx.api.get('/v1/plans'),
          ctx.api.get('/v1/limits')]);
      } catch (e) {
        if (!ctx.alive() || isAbort(e) || (e instanceof ApiError && e.status === 401)) return;
        if (e instanceof ApiError && e.missing) {
          replace(content, missingNotice('This manager does not host accounts yet.', 'Its /v1/accounts route answered 404; upgrade shoald.'));
        } else {
          say(pageError, `Could not list the accounts: ${messageOf(e)}`);
        }
        ctx.ready();
        return;
      }
      if (!ctx.alive()) return;
      const [accountAnswer, planAnswer, limitAnswer] = answers;
      accounts = Array.isArray(accountAnswer && accountAnswer.accounts) ? accountAnswer.accounts : [];
      dimensions = Array.isArray(limitAnswer && limitAnswer.limits) ? limitAnswer.limits : [];
      render(Array.isArray(planAnswer && planAnswer.plans) ? planAnswer.plans : []);
      ctx.ready();
    }

    load().catch(() => {});
  },
};
