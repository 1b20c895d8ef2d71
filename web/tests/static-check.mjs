// Static checks of the panel's rules, run with `node web/tests/static-check.mjs`:
//   - every JavaScript file parses as an ES module;
//   - no markup sink (innerHTML, outerHTML, insertAdjacentHTML, document.write), no eval or
//     new Function, no string timers, no inline style (the CSP forbids them) anywhere;
//   - no module names a plugin's API route (/v1/plugins/...): plugins reach the page only
//     through their declarative panels (/v1/panels/...);
//   - index.html has no inline script, no style= and no on*= attribute, and loads nothing
//     from another origin; neither does style.css.
// Exits 1 and names each offence; prints "N passed, 0 failed" otherwise.

import {readdirSync, readFileSync, statSync} from 'node:fs';
import {join, relative, dirname} from 'node:path';
import {fileURLToPath} from 'node:url';
import {spawnSync} from 'node:child_process';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name.startsWith('.')) return [];
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const files = walk(web).filter((f) => f !== self && /\.(js|mjs|html|css)$/.test(f));
const failures = [];
let passed = 0;
const check = (ok, what) => {
  if (ok) passed += 1;
  else failures.push(what);
};

// Sinks spelled so that this file does not trip its own check when it is scanned by hand.
const forbidden = [
  [/\.\s*inner(HTML)\b/, 'inner' + 'HTML'],
  [/\.\s*outer(HTML)\b/, 'outer' + 'HTML'],
  [/insertAdjacent(HTML)\b/, 'insertAdjacent' + 'HTML'],
  [/document\s*\.\s*write(ln)?\s*\(/, 'document.' + 'write'],
  [/\beval\s*\(/, 'ev' + 'al('],
  [/\bnew\s+Function\s*\(/, 'new ' + 'Function'],
  [/set(Timeout|Interval)\s*\(\s*['"`]/, 'a string timer'],
  [/createContextualFragment|DOMParser|\.srcdoc\b/, 'a markup parser'],
  [/setAttribute\s*\(\s*['"]style['"]|\.style\s*\.|\.style\s*=|cssText/, 'an inline style'],
  [/setAttribute\s*\(\s*['"]on[a-z]+['"]/, 'an event-handler attribute'],
  [/javascript:/i, 'a javascript: URL'],
  [/\/v1\/plugins\/|['"]v1['"]\s*,\s*['"]plugins['"]/, 'a plugin\'s own API route (declare a panel instead)'],
];

for (const file of files) {
  const name = relative(web, file);
  const source = readFileSync(file, 'utf8');
  if (/\.m?js$/.test(file)) {
    const parsed = spawnSync(process.execPath, ['--input-type=module', '--check'], {input: source, encoding: 'utf8'});
    check(parsed.status === 0, `${name}: does not parse as an ES module\n${parsed.stderr}`);
    const lines = source.split('\n');
    for (const [pattern, what] of forbidden) {
      const hits = lines.map((line, i) => [line.replace(/^\s*\/\/.*$/, ''), i]).filter(([code]) => pattern.test(code));
      check(hits.length === 0, hits.map(([, i]) => `${name}:${i + 1}: uses ${what}: ${lines[i].trim()}`).join('\n'));
    }
  }
  if (file.endsWith('.html')) {
    check(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(source), `${name}: has an inline <script>`);
    check(!/\sstyle\s*=/i.test(source), `${name}: has a style= attribute`);
    check(!/\son[a-z]+\s*=/i.test(source), `${name}: has an on*= attribute`);
    check(/<meta charset="utf-8">/i.test(source), `${name}: lacks <meta charset="utf-8">`);
  }
  if (/\.(html|css)$/.test(file)) {
    check(!/(src|href)\s*=\s*["']?(https?:)?\/\//i.test(source) && !/url\(\s*["']?(https?:)?\/\//i.test(source) && !/@import/i.test(source),
      `${name}: loads something from another origin`);
  }
}

for (const f of failures) console.error(`FAIL ${f}`);
console.log(`${passed} passed, ${failures.length} failed`);
process.exit(failures.length ? 1 : 0);
