// The two pages in a real browser: headless Chromium from Debian's
// `chromium` package, driven by playwright-core (never a downloaded
// browser). Votes are cast by clicking on the gateway's vote page; the
// reporter's results page, opened once, must follow without a reload.
// Screenshots of both pages, desktop and phone sized, are written to
// tests/artifacts/browser/ (gitignored) and their paths printed.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { startStack, dumpLogs, repoRoot } from './harness.mjs';

const require = createRequire(path.join(repoRoot, 'tests', 'js', 'package.json'));
const { chromium } = require('playwright-core');

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = path.join(repoRoot, 'tests', 'artifacts', 'browser');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let stack, gw, rep, browser;
const problems = [];  // console errors, CSP violations, page errors

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  stack = await startStack();
  await stack.startProcessor();
  rep = await stack.startReporter();
  gw = await stack.startGateway();
  // launch() gives every run a fresh temporary profile (user-data-dir).
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});
afterEach((t) => { if (!t.passed) dumpLogs(stack); });

async function newPage(viewport = DESKTOP) {
  const ctx = await browser.newContext({ viewport, isMobile: viewport === PHONE, hasTouch: viewport === PHONE });
  const page = await ctx.newPage();
  // Failed loads are reported with their URL below; the console's copy of
  // them has none. A favicon is the browser's own idea, not the page's.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(`${page.url()}: console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`${page.url()}: ${r.status()} for ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    // An EventSource cut when its page closes is not a problem.
    if (!/\/events$/.test(r.url())) problems.push(`${page.url()}: failed ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('pageerror', (e) => problems.push(`${page.url()}: ${e.message}`));
  return page;
}

async function shot(page, name) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.waitForTimeout(700);  // let the bars' 0.5 s transition finish
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot: ${file}`);
  return file;
}

/** What the results page shows: total line, each option's share text, bar width classes. */
function readResults(page) {
  return page.evaluate(() => ({
    total: document.getElementById('result').textContent,
    stats: [...document.querySelectorAll('.choice')].map((li) =>
      `${li.querySelector('.label').textContent} ${li.querySelector('.stat').textContent}`),
    bars: [...document.querySelectorAll('.bar')].map((b) => (b.className.match(/\bw(\d+)\b/) || [])[1]),
    marker: window.__notReloaded === true,
  }));
}

async function waitResults(page, want, what) {
  try {
    await page.waitForFunction((w) => {
      const total = document.getElementById('result').textContent;
      const stats = [...document.querySelectorAll('.choice .stat')].map((s) => s.textContent);
      return total === w.total && JSON.stringify(stats) === JSON.stringify(w.stats);
    }, want, { timeout: 10000, polling: 50 });
  } catch (e) {
    throw new Error(`${what}: results page shows ${JSON.stringify(await readResults(page))}, want ${JSON.stringify(want)}`);
  }
}

async function vote(page, option) {
  await page.goto(`${gw.url}/`);
  await Promise.all([page.waitForNavigation(), page.click(`button[name="vote"][value="${option}"]`)]);
  // The vote page marks the chosen option.
  assert.equal(await page.getAttribute(`button[value="${option}"]`, 'aria-pressed'), 'true');
}

test('results page follows votes cast on the vote page, without a reload', async () => {
  const results = await newPage();
  await results.goto(`${rep.url}/`);
  assert.equal(await results.title(), 'Cats vs Dogs -- Result');
  assert.deepEqual(await readResults(results), { total: 'No votes yet', stats: ['Cats 50.0%', 'Dogs 50.0%'], bars: ['50', '50'], marker: false });
  // Marks this document: a reload would lose it.
  await results.evaluate(() => { window.__notReloaded = true; });
  await results.waitForFunction(() => document.body.dataset.live === 'open', null, { timeout: 10000 });

  const voter1 = await newPage();
  await vote(voter1, 'a');
  await waitResults(results, { total: '1 vote', stats: ['100.0%', '0.0%'] }, 'after voter 1 chose Cats');
  let r = await readResults(results);
  assert.deepEqual(r.bars, ['100', '0']);
  assert.equal(r.marker, true, 'the results page was not reloaded');

  // Changing the vote: the total stays at one, the shares move.
  await vote(voter1, 'b');
  await waitResults(results, { total: '1 vote', stats: ['0.0%', '100.0%'] }, 'after voter 1 changed to Dogs');

  // A second voter (own cookie jar): two votes, 50/50; then a third for
  // Cats: 67/33 as the original would round it.
  const voter2 = await newPage();
  await vote(voter2, 'a');
  await waitResults(results, { total: '2 votes', stats: ['50.0%', '50.0%'] }, 'after voter 2 chose Cats');
  const voter3 = await newPage();
  await vote(voter3, 'a');
  await waitResults(results, { total: '3 votes', stats: ['67.0%', '33.0%'] }, 'after voter 3 chose Cats');
  r = await readResults(results);
  assert.deepEqual(r.bars, ['67', '33']);
  assert.equal(r.marker, true, 'the results page was not reloaded');

  // Accessibility basics: the total is a polite live region; the bars,
  // which repeat the list, are hidden from screen readers; a language is set.
  assert.equal(await results.getAttribute('#result', 'aria-live'), 'polite');
  assert.equal(await results.getAttribute('.bars', 'aria-hidden'), 'true');
  assert.equal(await results.getAttribute('html', 'lang'), 'en');

  await shot(results, 'results-desktop');
  await shot(voter3, 'vote-desktop');
  for (const p of [results, voter1, voter2, voter3]) await p.context().close();
});

test('both pages fit a phone-sized screen', async () => {
  for (const [name, url] of [['results-phone', `${rep.url}/`], ['vote-phone', `${gw.url}/`]]) {
    const page = await newPage(PHONE);
    await page.goto(url);
    if (name === 'results-phone') {
      await page.waitForFunction(() => document.body.dataset.live === 'open', null, { timeout: 10000 });
      await waitResults(page, { total: '3 votes', stats: ['67.0%', '33.0%'] }, 'phone results');
    }
    const fit = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
    assert.ok(fit.scroll <= fit.inner, `${name}: page is ${fit.scroll}px wide on a ${fit.inner}px screen`);
    await shot(page, name);
    await page.context().close();
  }
});

// A browser gives an EventSource up for good when a reconnect is answered
// with anything but 200 (a draining replica, a proxy's 503): the page must
// start a new one itself. The reporter is restarted on its port; while it
// is away the page's reconnects are answered 503 (page.route), then let
// through. This page has none of newPage's listeners: its 503s are meant.
test('results page starts a new stream after a reconnect answered 503, and follows votes again', async () => {
  const ctx = await browser.newContext({ viewport: DESKTOP });
  const results = await ctx.newPage();
  let refused = 0;
  try {
    await results.goto(`${rep.url}/`);
    await results.waitForFunction(() => document.body.dataset.live === 'open', null, { timeout: 10000 });
    const before = Number(await results.evaluate(() => document.body.dataset.total));
    await results.route('**/events', (route) => { refused++; return route.fulfill({ status: 503, body: 'draining' }); });
    const port = rep.port;
    assert.equal(await rep.stop('SIGTERM'), 0);
    await results.waitForFunction(() => document.body.dataset.live === 'reconnecting', null, { timeout: 10000 });
    // Two refusals: the browser's own retry, then the page's first new stream.
    for (let i = 0; i < 100 && refused < 2; i++) await results.waitForTimeout(100);
    assert.ok(refused >= 2, `the page tried again after the browser gave up (${refused} refused)`);
    rep = await stack.startReporter({ BIND_PORT: String(port) });
    await results.unroute('**/events');
    await results.waitForFunction(() => document.body.dataset.live === 'open', null, { timeout: 20000 });
    const voter = await newPage();
    await vote(voter, 'b');
    await results.waitForFunction((n) => Number(document.body.dataset.total) === n, before + 1, { timeout: 10000 });
    await voter.context().close();
  } finally {
    await ctx.close();
  }
});

test('no script errors and no Content-Security-Policy violations', () => {
  assert.deepEqual(problems, []);
});
