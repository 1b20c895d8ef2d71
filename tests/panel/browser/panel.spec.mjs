// The panel in Debian's Chromium, driven by Playwright, against a real cluster
// (tests/panel/cluster.py): sign in, see the nodes, create a balancer policy and see it
// listed, see its graph load, run a rolling restart to the end, open plugin panels (one made
// of markup, which must show as text), read the audit log, sign out, and check that a
// signed-out request and a request without the CSRF token are refused. A screenshot of every
// page goes into the artifacts folder.
//
//   node panel.spec.mjs STATE_FILE ARTIFACTS_DIR
import {chromium} from 'playwright-core';
import {mkdirSync, readFileSync} from 'node:fs';
import {join} from 'node:path';

const [stateFile, artifacts] = process.argv.slice(2);
const cluster = JSON.parse(readFileSync(stateFile, 'utf8'));
mkdirSync(artifacts, {recursive: true});

const failures = [];
function check(condition, message) {
  if (!condition) {
    failures.push(message);
    console.log(`FAIL: ${message}`);
  } else {
    console.log(`ok: ${message}`);
  }
}

// Playwright gives every launch a fresh profile of its own (a new user data directory).
const browser = await chromium.launch({
  executablePath: process.env.SHOAL_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
// The manager's certificate is signed by the cluster's own CA, which this browser does not know.
const context = await browser.newContext({ignoreHTTPSErrors: true, viewport: {width: 1280, height: 900}});
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
const refusedRequests = [];
page.on('response', (r) => {
  if (r.status() >= 400) refusedRequests.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
});
// Deleting and some plugin actions ask first; the test says yes.
page.on('dialog', (d) => d.accept());

async function ready(name, timeout = 20000) {
  await page.waitForSelector(`main#page[data-page="${name}"][data-ready="1"]`, {timeout});
}
async function shot(name) {
  await page.screenshot({path: join(artifacts, `${name}.png`), fullPage: true});
}
async function open(navTest, pageName) {
  await page.click(`a[data-test="${navTest}"]`);
  await ready(pageName);
}

try {
  // ---- sign in ----
  await page.goto(`${cluster.url}/panel/`);
  await page.waitForSelector('form#login');
  await shot('01-login');
  // A user name made of markup: refused, and later shown as text in the audit log.
  const markupUser = `<img src=x onerror="document.title='pwned'">`;
  await page.fill('#login-user', markupUser);
  await page.fill('#login-password', 'whatever it is');
  await page.click('#login-submit');
  await page.waitForFunction(() => document.querySelector('#login-error')?.textContent.includes('wrong'));
  await page.fill('#login-user', 'admin');
  await page.fill('#login-password', 'not the password');
  await page.click('#login-submit');
  await page.waitForFunction(() => document.querySelector('#login-error')?.textContent.includes('wrong'));
  check(true, 'a wrong password is refused with a message');
  // The real sign-in by keyboard alone: type, Tab to the password, Enter.
  await page.fill('#login-user', '');
  await page.fill('#login-password', '');
  await page.focus('#login-user');
  await page.keyboard.type('admin');
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement?.id) === 'login-password', 'Tab moves from the user name to the password');
  await page.keyboard.type(cluster.admin_password);
  await page.keyboard.press('Enter');
  await ready('dashboard');

  // ---- the nodes ----
  await page.waitForFunction(() => document.querySelectorAll('table#nodes tr[data-node-id]').length === 3);
  const nodeText = await page.textContent('table#nodes');
  check(cluster.node_addresses.every((a) => nodeText.includes(a)), 'the dashboard lists every node');
  await page.waitForSelector('table#health td[data-service="http"][data-state="healthy"]');
  await shot('02-dashboard');

  // ---- a balancer policy, created from the form ----
  await open('nav-balancer', 'balancer');
  const markup = `<img src=x onerror="document.title='pwned'">`;
  await page.fill('#policy-address', '127.0.0.1');
  await page.fill('#policy-port', String(cluster.vip_port));
  await page.fill('#policy-service', markup);
  await page.click('#policy-submit');
  await page.waitForFunction(() => (document.querySelector('#policy-error')?.textContent || '').length > 0);
  const refusal = await page.textContent('#policy-error');
  check(refusal.includes('<img src=x'), `a refused value with markup shows as text: ${refusal}`);
  check(await page.locator('#policy-error img').count() === 0, 'and makes no element');
  await shot('03-balancer-refused');

  await page.fill('#policy-service', 'http');
  await page.selectOption('#policy-scheduler', 'rr');
  await page.fill('#policy-persistence', '0');
  await page.selectOption('#policy-forwarding', 'nat');
  await page.click('#policy-submit');
  const key = `tcp:127.0.0.1:${cluster.vip_port}`;
  await page.waitForSelector(`tbody[data-policy-key="${key}"]`);
  check(true, `the new policy ${key} is listed`);
  for (const address of cluster.node_addresses) {
    await page.selectOption('#member-policy', key);
    await page.fill('#member-address', address);
    await page.fill('#member-port', String(cluster.web_port));
    await page.fill('#member-weight', '1');
    await page.click('#member-submit');
    await page.waitForSelector(`tbody[data-policy-key="${key}"] tr[data-member="${address}:${cluster.web_port}"]`);
  }
  check(true, 'both real servers are listed under it');

  // Traffic through the virtual service, so the counters and the graph have something to show.
  let served = 0;
  for (let i = 0; i < 200 && served < 30; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${cluster.vip_port}/`);
      if ((await r.text()).startsWith('served by')) served++;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  check(served >= 30, `the virtual service forwards (${served} answers)`);

  // ---- the graph of the policy ----
  await open('nav-graphs', 'graphs');
  const graph = `figure[data-series="lvs.service.${key}"] img.graph`;
  // The director samples every second; a page opened before the first sample says so, and
  // the test opens it again until the series is there.
  for (let i = 0; i < 30 && !(await page.$(graph)); i++) {
    await page.waitForTimeout(1000);
    await open('nav-dashboard', 'dashboard');
    await open('nav-graphs', 'graphs');
  }
  await page.waitForSelector(graph, {timeout: 5000});
  const loaded = async () => page.$eval(graph, (img) => img.complete && img.naturalWidth > 0);
  await page.waitForFunction((sel) => {
    const img = document.querySelector(sel);
    return img && img.complete && img.naturalWidth > 0;
  }, graph, {timeout: 20000});
  check(await loaded(), 'the policy\'s graph image loads');
  await page.selectOption('#graph-range', 'week');
  await page.waitForFunction((sel) => {
    const img = document.querySelector(sel);
    return img && img.src.includes('range=week') && img.complete && img.naturalWidth > 0;
  }, graph, {timeout: 20000});
  check(true, 'the range picker draws the week');
  await shot('05-graphs');

  // Back on the balancer: the policy with its live counters and its small graph.
  await open('nav-balancer', 'balancer');
  await page.waitForSelector(`tbody[data-policy-key="${key}"] img[data-graph-series]`, {timeout: 30000});
  await shot('04-balancer');

  // ---- a rolling restart, watched to the end ----
  await open('nav-restart', 'restart');
  await page.selectOption('#restart-service', 'http');
  await page.fill('#restart-max-unavailable', '1');
  await page.click('#restart-submit');
  await page.waitForSelector('section#restart-watch', {timeout: 10000});
  await page.waitForFunction(() => document.querySelector('#restart-state')?.textContent.trim() === 'running'
    || document.querySelector('#restart-state')?.textContent.trim() === 'done', null, {timeout: 10000});
  await shot('06-restart-running');
  await page.waitForFunction(() => (document.querySelector('#restart-state')?.textContent || '').trim() !== 'running',
    null, {timeout: 120000});
  const finalState = (await page.textContent('#restart-state')).trim();
  check(finalState === 'done', `the rolling restart finished: ${finalState}`);
  const progress = await page.$eval('progress#restart-progress', (p) => [p.value, p.max]);
  check(progress[0] === progress[1] && progress[1] === cluster.node_addresses.length,
    `its progress is complete: ${progress}`);
  const phases = await page.$$eval('table#restart-nodes tr[data-phase]', (rows) => rows.map((r) => r.dataset.phase));
  check(phases.length === 2 && phases.every((p) => p === 'done'), `each node is done: ${phases}`);
  await shot('07-restart-done');

  // ---- plugin panels ----
  await open('nav-plugin-hello-greetings', 'plugin');
  await page.fill('section[data-section-id="greet"] input[name="name"]', 'visitor');
  await page.click('section[data-section-id="greet"] button[type="submit"]');
  await page.waitForFunction(() => (document.querySelector('section[data-section-id="counts"]')?.textContent || '')
    .includes('visitor'), null, {timeout: 10000});
  check(true, 'the hello panel\'s form greets and its table shows it');
  await shot('08-plugin-hello');
  await open('nav-plugin-http-status', 'plugin');
  await page.waitForFunction(() => document.querySelectorAll('section[data-section-id="nodes"] tbody tr').length >= 2);
  await shot('09-plugin-http');
  await open('nav-plugin-lvs-balancer', 'plugin');
  await shot('10-plugin-lvs');
  await open('nav-plugin-markup-markup', 'plugin');
  await page.click('section[data-section-id="poke"] button');
  await page.waitForTimeout(500);
  const body = await page.textContent('main#page');
  check(body.includes('<img src=x onerror=') && body.includes('<script>document.title'),
    'the markup plugin\'s values show as text');
  check(await page.locator('main#page img[src="x"], main#page script').count() === 0,
    'none of them became an element');
  check((await page.title()) !== 'pwned', 'and none of their script ran');
  await shot('11-plugin-markup');

  // ---- the Command Queue: a command that fails everywhere, its output, skip and retry ----
  const session = await (await context.request.get(`${cluster.url}/v1/session`)).json();
  const enqueued = await context.request.post(`${cluster.url}/v1/commands`, {
    data: {kind: 'markup.fail', payload: {}, key: 'markup', target: {all: true}},
    headers: {'X-CSRF-Token': session.csrf_token},
  });
  check(enqueued.status() === 201, `a failing command is enqueued: ${enqueued.status()}`);
  const commandId = (await enqueued.json()).id;
  await open('nav-queue', 'queue');
  const failed = `tr[data-command-id="${commandId}"] li.delivery[data-state="failed"]`;
  // Five attempts with backoff: about 8 s until each delivery has failed for good.
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 3, failed, {timeout: 60000});
  const row = await page.textContent(`tr[data-command-id="${commandId}"]`);
  check(row.includes('refused: <img src=x'), 'each node\'s output shows, its markup as text');
  check(await page.locator('table#commands img').count() === 0, 'and makes no element');
  await shot('13-queue-failed');
  const ids = await page.$$eval(failed, (items) => items.map((li) => li.dataset.deliveryId));
  await page.click(`button[data-action="skip"][data-delivery-id="${ids[0]}"]`);
  await page.waitForSelector(`li.delivery[data-delivery-id="${ids[0]}"][data-state="skipped"]`, {timeout: 10000});
  check(true, 'skip gives a failed delivery up');
  await page.click(`button[data-action="retry"][data-delivery-id="${ids[1]}"]`);
  await page.waitForSelector(`li.delivery[data-delivery-id="${ids[1]}"]:not([data-state="failed"])`, {timeout: 10000});
  check(true, 'retry runs a failed delivery again');
  await shot('13-queue');

  // ---- the other pages ----
  await open('nav-enrol', 'enrol');
  await page.click('#new-join-token');
  await page.waitForFunction(() => (document.querySelector('#join-token')?.value || '').length > 20);
  await shot('12-enrol');
  await open('nav-users', 'users');
  await shot('14-users');
  await open('nav-audit', 'audit');
  const audit = await page.textContent('table#audit');
  check(audit.includes('user:admin') && audit.includes('/v1/plugins/lvs/services'),
    'the audit log shows who created the policy');
  check(audit.includes(`user:admin`) && audit.includes('/v1/rollouts'), 'and who started the restart');
  check(audit.includes(`user name as typed: ${markupUser}`), 'a refused sign-in\'s user name with markup shows as text');
  check(await page.locator('table#audit img').count() === 0, 'and makes no element');
  await shot('15-audit');

  // Readable from 1024 px wide: no page scrolls sideways.
  await page.setViewportSize({width: 1024, height: 768});
  for (const [nav, name] of [['nav-dashboard', 'dashboard'], ['nav-balancer', 'balancer'], ['nav-graphs', 'graphs'],
    ['nav-enrol', 'enrol'], ['nav-queue', 'queue'], ['nav-restart', 'restart'], ['nav-audit', 'audit'],
    ['nav-users', 'users'], ['nav-plugin-lvs-balancer', 'plugin']]) {
    await open(nav, name);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(overflow <= 0, `${nav} fits 1024 px (${overflow} px too wide)`);
  }
  await open('nav-balancer', 'balancer');
  await shot('17-balancer-1024');
  await page.setViewportSize({width: 1280, height: 900});

  // ---- CSRF and signing out ----
  const withoutToken = await context.request.post(`${cluster.url}/v1/join-tokens`, {data: {}});
  check(withoutToken.status() === 403, `a change without the CSRF token is refused: ${withoutToken.status()}`);
  await page.click('#logout');
  await page.waitForSelector('form#login');
  await shot('16-signed-out');
  const afterLogout = await context.request.get(`${cluster.url}/v1/nodes`);
  check(afterLogout.status() === 401, `a signed-out request is refused: ${afterLogout.status()}`);
  const stranger = await browser.newContext({ignoreHTTPSErrors: true});
  const strangerGet = await stranger.request.get(`${cluster.url}/v1/stats/series`);
  check(strangerGet.status() === 401, `a request with no session at all is refused: ${strangerGet.status()}`);
  await stranger.close();

  // Chromium logs every refused request as a console error. The test makes exactly three on
  // purpose (two wrong sign-ins, the policy with markup); nothing else may be refused or logged.
  const deliberate = ['401 POST /v1/session', '401 POST /v1/session', '400 POST /v1/plugins/lvs/services'];
  check(JSON.stringify(refusedRequests) === JSON.stringify(deliberate),
    `the only refused requests are the deliberate ones: ${JSON.stringify(refusedRequests)}`);
  const unexpected = consoleErrors.filter((m) => !/^Failed to load resource: the server responded with a status of 40[01]/.test(m));
  check(unexpected.length === 0 && consoleErrors.length <= deliberate.length,
    `no other console errors: ${JSON.stringify(consoleErrors)}`);
} catch (e) {
  failures.push(`the test stopped: ${e.stack || e}`);
  console.log(`FAIL: ${e.stack || e}`);
  await shot('zz-failure').catch(() => {});
} finally {
  await browser.close();
}

if (failures.length) {
  console.log(`${failures.length} failure(s); screenshots in ${artifacts}`);
  process.exit(1);
}
console.log(`browser: all checks passed; screenshots in ${artifacts}`);
