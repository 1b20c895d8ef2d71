// The panel's only way of building the page.
//
// RULE: every value reaches the page as text. Elements are made with
// document.createElement and filled with textContent (or a Text node) and setAttribute;
// nothing here or anywhere in web/ parses a string as markup: no innerHTML, outerHTML,
// insertAdjacentHTML or document.write. A plugin's panel definition and data, node host
// names, command output, audit details and user names may all contain markup such as
// `<img src=x onerror=alert(1)>`, and the page must show it literally.
//
// href and src are set only to paths this code builds itself with apiPath()/hashPath(),
// which pass every value through encodeURIComponent; h() refuses anything else, and it
// refuses event-handler and style attributes (the Content-Security-Policy forbids inline
// styles and scripts anyway).

const BOOLEAN_PROPS = new Set(['disabled', 'hidden', 'required', 'checked', 'readOnly', 'selected', 'open', 'multiple']);

// h('button', {type: 'button', class: 'primary', 'data-action': 'delete', onclick: fn}, 'Delete')
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') {
        node.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : String(value);
      } else if (name === 'text') {
        node.textContent = String(value);
      } else if (name === 'value') {
        node.value = String(value);
      } else if (BOOLEAN_PROPS.has(name)) {
        node[name] = Boolean(value);
      } else if (name.startsWith('on') && typeof value === 'function') {
        node.addEventListener(name.slice(2), value);
      } else if (name === 'href' || name === 'src') {
        node.setAttribute(name, checkedUrl(name, value));
      } else {
        const lower = name.toLowerCase();
        if (lower.startsWith('on') || lower === 'style' || lower === 'srcdoc' || lower === 'action' ||
            lower === 'formaction') {
          throw new Error(`h(): attribute '${name}' is not allowed`);
        }
        node.setAttribute(name, String(value));
      }
    }
  }
  append(node, children);
  return node;
}

// Appends strings and numbers as Text nodes, Nodes as they are; skips null/undefined/false.
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) {
      append(parent, child);
    } else if (child instanceof Node) {
      parent.appendChild(child);
    } else {
      parent.appendChild(document.createTextNode(String(child)));
    }
  }
  return parent;
}

// Replaces every child of `parent`.
export function replace(parent, ...children) {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  return append(parent, children);
}

// Only our own paths: "#/..." for links inside the panel, "/v1/..." for the API.
function checkedUrl(name, value) {
  const text = String(value);
  if (name === 'href' && (text.startsWith('#/') || text.startsWith('/panel/'))) return text;
  if (name === 'src' && text.startsWith('/v1/')) return text;
  throw new Error(`h(): ${name} '${text}' is not a path built by apiPath() or hashPath()`);
}

// apiPath(['v1', 'panels', plugin, panel, 'sections', id], {page: 2}) → "/v1/panels/hello/greetings/sections/counts?page=2"
export function apiPath(segments, query) {
  let path = '/' + segments.map((s) => encodeURIComponent(String(s))).join('/');
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
    }
    const text = params.toString();
    if (text) path += '?' + text;
  }
  return path;
}

// hashPath(['plugins', plugin, panel]) → "#/plugins/hello/greetings"
export function hashPath(segments) {
  return '#/' + segments.map((s) => encodeURIComponent(String(s))).join('/');
}

// ---- formatting: each returns plain text ----

export function text(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function pad(n) {
  return String(n).padStart(2, '0');
}

// "2024-05-01 14:03:07" in the browser's time zone; "" for none.
export function dateTime(ms) {
  if (ms === null || ms === undefined || ms === '' || !Number.isFinite(Number(ms)) || Number(ms) <= 0) return '';
  const d = new Date(Number(ms));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; "never" for none.
export function relative(ms, now = Date.now()) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms)) || Number(ms) <= 0) return 'never';
  const seconds = Math.round((now - Number(ms)) / 1000);
  if (seconds < 0) return `in ${until(-seconds)}`;
  if (seconds < 2) return 'just now';
  return `${until(seconds)} ago`;
}

function until(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400 * 2) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

// "12 minutes", "1 hour", "3 days" for a number of seconds.
export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  const unit = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`;
  if (s < 120) return unit(s, 'second');
  if (s < 7200) return unit(Math.round(s / 60), 'minute');
  if (s < 86400 * 2) return unit(Math.round(s / 3600), 'hour');
  return unit(Math.round(s / 86400), 'day');
}

export function count(n) {
  if (n === null || n === undefined || n === '') return '';
  const v = Number(n);
  return Number.isFinite(v) ? v.toLocaleString('en-US') : String(n);
}

export function bytes(n) {
  if (n === null || n === undefined || n === '') return '';
  let v = Number(n);
  if (!Number.isFinite(v)) return String(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

// A CSS class for a state word we know; anything else gets "state-other".
const KNOWN_STATES = new Set([
  'healthy', 'unhealthy', 'unknown', 'unchecked', 'online', 'offline', 'removed', 'draining', 'pending',
  'running', 'done', 'failed', 'skipped', 'recovering', 'restoring', 'ok', 'success', 'failure', 'denied', 'refused',
  'active', 'disabled', 'suspended',
]);
export function stateClass(state) {
  const s = String(state || '').toLowerCase();
  return KNOWN_STATES.has(s) ? `state state-${s}` : 'state state-other';
}

export function badge(state) {
  return h('span', {class: stateClass(state)}, text(state));
}
