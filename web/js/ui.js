// Building blocks shared by the pages: labelled fields, alerts, busy buttons, tables.
// Everything goes through h() from dom.js, so every value is text.

import {h, replace} from './dom.js';
import {ApiError, isAbort} from './api.js';

// A labelled control: <div class="field"><label for=ID>Label</label> control hint</div>.
export function field(label, control, hint) {
  const id = control.id || control.querySelector('[id]')?.id;
  const hintNode = hint ? h('p', {class: 'hint', id: id ? `${id}-hint` : undefined}, hint) : null;
  if (hintNode && id) control.setAttribute('aria-describedby', `${id}-hint`);
  return h('div', {class: control.type === 'checkbox' ? 'field field-check' : 'field'},
    h('label', {for: id}, label), control, hintNode);
}

// <select> with options given as strings or [value, label] pairs.
export function select(props, options, selected) {
  const node = h('select', props);
  setOptions(node, options, selected);
  return node;
}

export function setOptions(node, options, selected) {
  const keep = selected !== undefined ? String(selected) : node.value;
  replace(node, options.map((o) => {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    return h('option', {value: String(value)}, label);
  }));
  if ([...node.options].some((o) => o.value === keep)) node.value = keep;
}

// The message of an error, for a person.
export function messageOf(error) {
  if (error instanceof ApiError) return error.message;
  if (error && error.message) return error.message;
  return String(error);
}

// An alert box at the top of a form or a page: hidden until it has something to say.
export function alertBox(props = {}) {
  return h('div', {class: 'alert', role: 'alert', hidden: true, ...props});
}

// A status line for good news (role=status: read out politely).
export function statusBox(props = {}) {
  return h('div', {class: 'notice', role: 'status', hidden: true, ...props});
}

export function say(box, message) {
  if (!message) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.textContent = message;
  box.hidden = false;
}

// Shows the error in `box`; marks the field the message names ('scheduler' ...) in `form`
// as invalid and moves the focus there. Aborted requests and 401s (the sign-in page takes
// over) show nothing.
export function showError(box, error, form) {
  if (isAbort(error) || (error instanceof ApiError && error.status === 401)) return;
  say(box, messageOf(error));
  if (!form) return;
  clearInvalid(form);
  const named = /'([A-Za-z_][A-Za-z0-9_]*)'/.exec(messageOf(error));
  if (!named) return;
  for (const control of form.elements) {
    if (control.dataset && control.dataset.field === named[1]) {
      control.setAttribute('aria-invalid', 'true');
      if (box.id) control.setAttribute('aria-errormessage', box.id);
      control.focus();
      break;
    }
  }
}

export function clearInvalid(form) {
  for (const control of form.elements) {
    control.removeAttribute('aria-invalid');
    control.removeAttribute('aria-errormessage');
  }
}

// Runs `work` with `button` showing a spinner and "Working…"; the button is disabled meanwhile.
export async function busy(button, work, label = 'Working…') {
  const before = button.textContent;
  button.disabled = true;
  button.classList.add('busy');
  button.setAttribute('aria-busy', 'true');
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.classList.remove('busy');
    button.removeAttribute('aria-busy');
    button.textContent = before;
  }
}

// A table inside a box that scrolls sideways when the table is wider than the page.
export function tableBox(table) {
  return h('div', {class: 'table-box'}, table);
}

export function headRow(labels) {
  return h('thead', null, h('tr', null, labels.map((l) => h('th', {scope: 'col'}, l))));
}

export function emptyRow(columns, message) {
  return h('tr', {class: 'empty'}, h('td', {colspan: String(columns)}, message));
}

// A page section with a heading.
export function section(title, ...children) {
  return h('section', {class: 'card'}, h('h2', null, title), ...children);
}

// What the page says when a route is not there (404/501): which part is missing and what to do.
export function missingNotice(what, remedy) {
  return h('div', {class: 'missing', role: 'status'}, h('p', null, h('strong', null, what)), remedy ? h('p', null, remedy) : null);
}

// A button that copies `getText()` to the clipboard and says so.
export function copyButton(props, getText, source) {
  const button = h('button', {type: 'button', class: 'secondary', ...props}, 'Copy');
  button.addEventListener('click', async () => {
    const value = getText();
    let copied = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(value);
        copied = true;
      }
    } catch {
      copied = false;
    }
    if (!copied && source && typeof source.select === 'function') {
      source.focus();
      source.select();
      copied = document.execCommand('copy');
    }
    button.textContent = copied ? 'Copied' : 'Select and copy by hand';
    setTimeout(() => {
      button.textContent = 'Copy';
    }, 2000);
  });
  return button;
}

// Re-renders part of the page without losing the keyboard focus: the focused control is
// found again afterwards by its id or its data-* attributes.
export function keepFocus(container, render) {
  const active = document.activeElement;
  let key = null;
  if (active && active !== document.body && container.contains(active)) key = focusKey(active);
  render();
  if (!key) return;
  for (const candidate of container.querySelectorAll(active.tagName)) {
    if (focusKey(candidate) === key) {
      candidate.focus();
      return;
    }
  }
}

function focusKey(node) {
  if (node.id) return `#${node.id}`;
  const parts = [node.tagName];
  for (const attr of node.getAttributeNames()) {
    if (attr.startsWith('data-') && attr !== 'data-on' && attr !== 'data-state') parts.push(`${attr}=${node.getAttribute(attr)}`);
  }
  let cell = node.closest('[data-node-id],[data-row-key],[data-nested-key],[data-delivery-id]');
  while (cell) {
    for (const attr of cell.getAttributeNames()) if (attr.startsWith('data-')) parts.push(`${attr}=${cell.getAttribute(attr)}`);
    cell = cell.parentElement ? cell.parentElement.closest('[data-node-id],[data-row-key],[data-nested-key],[data-delivery-id]') : null;
  }
  return parts.length > 1 ? parts.join('|') : null;
}
