#!/usr/bin/env node
// End-to-end test of the trading screen in a real browser against a real server.
//
// Starts `quanttrader run` on a free loopback port with a throw-away data dir, creates and
// funds a user through the admin API, then drives Debian's Chromium (playwright-core,
// headless) through what a trader does: watch the simulator move the book, switch symbols,
// sign in, place a resting order and see it in open orders, amend it, cancel it, place a
// stop order that waits for its trigger, place a marketable order and see the fill in trade
// history, positions and balances, get a server error next to the field, survive a server
// restart (reconnect + resync), and use the screen on a phone.
//
// Usage: node e2e/run.mjs            (from web/, after `vite build`)
// Env:   QT_BIN       server binary (default $QT_CACHE/cargo-target/debug/quanttrader, what
//                     scripts/ci/50-web.sh builds)
//        QT_WEB_DIR   built assets (default web/dist)
//        CHROMIUM     browser (default /usr/bin/chromium)
//        E2E_HEADFUL  set to 1 to watch the browser
// Output: screenshots and the server log in web/e2e/artifacts/; one line per test and a
// closing "N passed, N failed" line; exit status 1 when anything failed.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB = path.resolve(HERE, '..');
const ARTIFACTS = path.join(HERE, 'artifacts');
const CACHE = process.env.QT_CACHE ?? path.join(os.homedir(), '.cache', 'quanttrader');
const BIN = process.env.QT_BIN ?? path.join(CACHE, 'cargo-target', 'debug', 'quanttrader');
const WEB_DIR = path.resolve(process.env.QT_WEB_DIR ?? path.join(WEB, 'dist'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ADMIN_TOKEN = `e2e-admin-${process.pid}-${Date.now()}`;
const SYMBOL = 'BTC-USD';
// Generous but bounded: a cold server on a busy 2-core CI machine is slow to start.
const START_TIMEOUT_MS = 90_000;
const STEP_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------
// Exact decimal helpers (prices are chosen on the tick grid; a float would drift off it).
function parseUnits(text) {
  const [i, f = ''] = text.split('.');
  return { units: BigInt((i || '0') + f), scale: f.length };
}
function fmtUnits(units, scale) {
  const neg = units < 0n;
  const digits = (neg ? -units : units).toString().padStart(scale + 1, '0');
  const out = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return (neg ? '-' : '') + out;
}
/** price * (1 + bps/10000), snapped down to the tick grid. */
function offsetPrice(price, tick, bps) {
  const t = parseUnits(tick);
  const p = parseUnits(price);
  const pUnits = p.units * 10n ** BigInt(t.scale) / 10n ** BigInt(p.scale); // price in tick-scale units
  const moved = pUnits * BigInt(10_000 + bps) / 10_000n;
  return fmtUnits((moved / t.units) * t.units, t.scale);
}
/** The smallest lot multiple >= min_quantity whose value at `price` is >= 2 * min_notional. */
function smallQuantity(sym, price) {
  const lot = parseUnits(sym.lot_size);
  const target = Number(sym.min_notional) * 2 / Number(price);
  let lots = BigInt(Math.max(1, Math.ceil(target / Number(sym.lot_size))));
  const minLots = BigInt(Math.ceil(Number(sym.min_quantity) / Number(sym.lot_size)));
  if (lots < minLots) lots = minLots;
  return fmtUnits(lots * lot.units, lot.scale);
}
const num = (s) => Number(String(s).replace(/,/g, ''));

// ---------------------------------------------------------------------------------------
// Server lifecycle.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Servers started by this run: killed if the run itself is killed (e.g. by the CI timeout),
// so no orphan keeps the port or the data dir.
const running = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const p of running) p.kill('SIGKILL');
    console.log(`interrupted by ${sig}`);
    process.exit(1);
  });
}

class Server {
  constructor(port, dataDir) {
    this.port = port;
    this.dataDir = dataDir;
    this.base = `http://127.0.0.1:${port}`;
    this.proc = null;
    this.log = fs.createWriteStream(path.join(ARTIFACTS, 'server.log'), { flags: 'a' });
  }

  async start() {
    const args = ['run', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--admin-token', ADMIN_TOKEN, '--seed', '7', '--web-dir', WEB_DIR];
    this.log.write(`\n--- ${new Date().toISOString()} ${BIN} ${args.join(' ')}\n`);
    this.proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' } });
    const proc = this.proc;
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
    this.proc.stdout.pipe(this.log, { end: false });
    this.proc.stderr.pipe(this.log, { end: false });
    const exited = new Promise((resolve) => this.proc.once('exit', (code, sig) => resolve(`exited early (code ${code}, signal ${sig})`)));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const early = await Promise.race([exited, sleep(250).then(() => null)]);
      if (early) throw new Error(`server ${early}; see ${path.join(ARTIFACTS, 'server.log')}`);
      try {
        const r = await fetch(`${this.base}/ready`);
        if (r.ok) return;
      } catch {
        /* not listening yet */
      }
    }
    throw new Error(`server not ready after ${START_TIMEOUT_MS / 1000}s`);
  }

  async stop() {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    // Graceful shutdown is part of the contract; SIGKILL only so the test never hangs.
    const graceful = await Promise.race([done.then(() => true), sleep(15_000).then(() => false)]);
    if (!graceful) {
      p.kill('SIGKILL');
      await done;
      throw new Error('server ignored SIGTERM for 15 s');
    }
  }

  async api(method, p, body, token) {
    const r = await fetch(this.base + p, {
      method,
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${p} -> ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

// ---------------------------------------------------------------------------------------
// A minimal runner: ordered steps sharing state; after a failure the dependent steps are
// skipped, and each failure leaves a screenshot.
const results = [];
let page;
async function step(name, fn, { needs = [] } = {}) {
  const missing = needs.filter((n) => !results.find((r) => r.name === n && r.ok));
  if (missing.length) {
    results.push({ name, ok: false, skipped: true });
    console.log(`SKIP  ${name} (needs: ${missing.join(', ')})`);
    return;
  }
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok    ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL  ${name} (${Date.now() - t0} ms)\n      ${String(e?.stack ?? e).split('\n').slice(0, 6).join('\n      ')}`);
    const file = path.join(ARTIFACTS, `failure-${results.length.toString().padStart(2, '0')}.png`);
    await page?.screenshot({ path: file, fullPage: true }).catch(() => undefined);
  }
}
function expect(cond, message) {
  if (!cond) throw new Error(message);
}
async function eventually(fn, message, timeout = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`${message} (after ${timeout} ms${last ? `; last error: ${last.message}` : ''})`);
}
const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });

// ---------------------------------------------------------------------------------------
async function main() {
  if (!fs.existsSync(path.join(WEB_DIR, 'index.html'))) throw new Error(`${WEB_DIR}/index.html missing: run vite build first`);
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-web-e2e-'));
  const server = new Server(await freePort(), dataDir);
  let browser;
  const pageErrors = [];
  try {
    await server.start();
    console.log(`server ready at ${server.base}`);

    // A funded trader, made the way an operator would.
    const user = await server.api('POST', '/api/admin/users', { name: `e2e-${Date.now()}` }, ADMIN_TOKEN);
    const { symbols } = await server.api('GET', '/api/symbols');
    const sym = symbols.find((s) => s.symbol === SYMBOL);
    expect(sym, `${SYMBOL} missing from /api/symbols`);
    await server.api('POST', `/api/admin/users/${user.user_id}/deposits`, { asset: sym.quote_asset, amount: '1000000' }, ADMIN_TOKEN);
    await server.api('POST', `/api/admin/users/${user.user_id}/deposits`, { asset: sym.base_asset, amount: '10' }, ADMIN_TOKEN);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: process.env.E2E_HEADFUL !== '1',
      // No sandbox as root in CI; no background traffic, which this machine's closed network refuses.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') fs.appendFileSync(path.join(ARTIFACTS, 'console.log'), `${m.text()}\n`);
    });

    const bookSeq = async () => {
      const v = await page.getByTestId('order-book').getAttribute('data-sequence');
      return v ? Number(v) : null;
    };

    await step('market data shows without signing in', async () => {
      await page.goto(server.base + '/');
      const picker = page.getByTestId('symbol-picker');
      await eventually(async () => (await picker.locator('option').count()) >= 3, 'symbol picker has the simulator symbols');
      const opts = await picker.locator('option').allTextContents();
      for (const s of ['BTC-USD', 'ETH-USD', 'SOL-USD']) expect(opts.includes(s), `symbol picker lacks ${s}: ${opts}`);
      await picker.selectOption(SYMBOL);
      await eventually(async () => (await page.getByTestId('connection').textContent()) === 'Live', 'connection badge says Live');
      await eventually(async () => (await page.getByTestId('bids').locator('tr').count()) > 0 && (await page.getByTestId('asks').locator('tr').count()) > 0, 'book has bids and asks');
      await eventually(async () => Number(await page.getByTestId('price-chart').getAttribute('data-bars')) > 0, 'price chart has candles');
      await page.locator('[data-testid=price-chart] canvas').first().waitFor();
      await page.getByTestId('depth-bids').waitFor();
    });

    await step('the simulator moves the book live', async () => {
      const first = await eventually(bookSeq, 'book has a sequence');
      const firstRows = await page.getByTestId('order-book').innerText();
      await eventually(async () => (await bookSeq()) > first, 'book sequence advances', 45_000);
      // Diffs are applied, not just counted: the rendered levels change too.
      await eventually(async () => (await page.getByTestId('order-book').innerText()) !== firstRows, 'book rows change');
      await shot('01-market-laptop.png');
    }, { needs: ['market data shows without signing in'] });

    await step('switching symbols shows that market', async () => {
      const other = symbols.find((s) => s.symbol === 'SOL-USD') ?? symbols.find((s) => s.symbol !== SYMBOL);
      const serverBook = await server.api('GET', `/api/market-data/orderbook/${other.symbol}?depth=5`);
      expect(serverBook.bids.length > 0, `the simulator quotes ${other.symbol}`);
      await page.getByTestId('symbol-picker').selectOption(other.symbol);
      await page.locator('#chart-title', { hasText: other.symbol }).waitFor();
      // The book is the other market's: its best bid is within 10 % of the server's (prices move
      // meanwhile), and it is printed on that symbol's tick (SOL: 3 places, BTC: 2).
      const places = (other.tick_size.split('.')[1] ?? '').length;
      await eventually(async () => {
        const best = (await page.getByTestId('bids').locator('tr').first().locator('td').first().innerText()).trim();
        const ratio = num(best) / Number(serverBook.bids[0][0]);
        return ratio > 0.9 && ratio < 1.1 && (best.split('.')[1] ?? '').length === places;
      }, `book shows ${other.symbol} levels`);
      await eventually(async () => (await bookSeq()) !== null, `${other.symbol} book has a sequence`);
      await page.getByTestId('symbol-picker').selectOption(SYMBOL);
      await page.locator('#chart-title', { hasText: SYMBOL }).waitFor();
      const btcBook = await server.api('GET', `/api/market-data/orderbook/${SYMBOL}?depth=1`);
      await eventually(async () => {
        const best = await page.getByTestId('bids').locator('tr').first().locator('td').first().innerText();
        const ratio = num(best) / Number(btcBook.bids[0][0]);
        return ratio > 0.9 && ratio < 1.1;
      }, `book back on ${SYMBOL}`);
    }, { needs: ['market data shows without signing in'] });

    await step('a lost book diff is detected and repaired with a fresh snapshot', async () => {
      // A proxy in the browser between the page and the real server drops one book diff, as
      // a lossy path would; the screen must notice the sequence gap, resubscribe and go on
      // from the server's new snapshot.
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const seen = { diffs: 0, dropped: null, resubscribed: false, snapshotAfter: null };
      await ctx.routeWebSocket(/\/ws\/market-data$/, (ws) => {
        const upstream = ws.connectToServer();
        ws.onMessage((msg) => {
          if (seen.dropped !== null && typeof msg === 'string' && /"op":"subscribe"/.test(msg) && /"channel":"book"/.test(msg)) seen.resubscribed = true;
          upstream.send(msg);
        });
        upstream.onMessage((msg) => {
          const m = typeof msg === 'string' ? JSON.parse(msg) : null;
          if (m?.type === 'book_diff' && m.symbol === SYMBOL && seen.dropped === null && ++seen.diffs === 3) {
            seen.dropped = m.sequence;
            return;
          }
          if (m?.type === 'book_snapshot' && seen.dropped !== null && seen.snapshotAfter === null) seen.snapshotAfter = m.sequence;
          ws.send(msg);
        });
      });
      const p = await ctx.newPage();
      try {
        p.on('pageerror', (e) => pageErrors.push(`gap: ${e.message}`));
        await p.goto(server.base + '/');
        await p.getByTestId('symbol-picker').selectOption(SYMBOL);
        await eventually(() => seen.dropped !== null, 'a book diff was dropped', 45_000);
        await eventually(() => seen.resubscribed, 'the screen resubscribed to the book after the gap');
        await eventually(() => seen.snapshotAfter !== null, 'the server sent a fresh snapshot');
        const seqOf = async () => Number((await p.getByTestId('order-book').getAttribute('data-sequence')) || 0);
        await eventually(async () => (await p.getByTestId('order-book').getAttribute('data-status')) === 'live' && (await seqOf()) > seen.snapshotAfter, 'book live again and moving past the new snapshot', 45_000);
        expect((await p.getByTestId('bids').locator('tr').count()) > 0, 'book has levels again');
        const title = await p.getByTestId('connection').getAttribute('title');
        expect(/book gaps recovered: 1\b/.test(title ?? ''), `connection badge counts the recovered gap: ${title}`);
      } finally {
        await ctx.close();
      }
    }, { needs: ['the simulator moves the book live'] });

    await step('a wrong API key is refused with a message', async () => {
      await page.locator('#api-key').fill('not-a-real-key');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#api-key-error').waitFor();
      expect(/not accepted/i.test(await page.locator('#api-key-error').innerText()), 'error says the key was not accepted');
    }, { needs: ['market data shows without signing in'] });

    await step('sign in with an API key', async () => {
      await page.locator('#api-key').fill(user.api_key);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByTestId(`balance-${sym.quote_asset}`).waitFor();
      await eventually(async () => num(await page.getByTestId(`balance-${sym.quote_asset}`).innerText()) === 1_000_000, 'USD balance 1,000,000 shown');
      expect(num(await page.getByTestId(`balance-${sym.base_asset}`).innerText()) === 10, 'BTC balance 10 shown');
      // Kept for the tab, not beyond it.
      expect((await page.evaluate(() => sessionStorage.getItem('qt.apiKey'))) === user.api_key, 'key in sessionStorage');
      expect((await page.evaluate(() => JSON.stringify(localStorage))).indexOf(user.api_key) === -1, 'key not in localStorage');
      await eventually(async () => /user/.test(await page.getByTestId('user-id').innerText()), 'socket authenticated (user id shown)');
      await shot('02-signed-in.png');
    }, { needs: ['market data shows without signing in'] });

    const form = () => page.getByTestId('order-form');
    /** The quote asset's "Reserved" cell of the balances table, as a number. */
    const quoteReserved = async () => num(await page.locator(`[data-asset="${sym.quote_asset}"] td`).nth(2).innerText());
    const result = () => page.getByTestId('order-result');
    let restingId = null;
    let restingPrice = null;
    let restingQty = null;

    await step('off-grid input is rejected before sending', async () => {
      const tickPlaces = (sym.tick_size.split('.')[1] ?? '').length;
      const offTick = `100.${'0'.repeat(tickPlaces)}1`;
      await form().getByRole('radio', { name: 'Buy' }).click();
      await form().getByLabel('Type').selectOption('LIMIT');
      await form().getByLabel('Price', { exact: true }).fill(offTick);
      await form().getByLabel('Quantity', { exact: true }).fill(sym.lot_size);
      await form().getByRole('button', { name: /^Buy/ }).click();
      const err = page.getByTestId('error-price');
      await err.waitFor();
      expect(/tick/i.test(await err.innerText()), 'price error names the tick');
      expect((await page.getByTestId('open-order-row').count()) === 0, 'no order was placed');
    }, { needs: ['sign in with an API key'] });

    await step('place a resting limit order and see it in open orders', async () => {
      const book = await server.api('GET', `/api/market-data/orderbook/${SYMBOL}?depth=1`);
      expect(book.bids.length > 0, 'the simulator quotes a bid');
      restingPrice = offsetPrice(book.bids[0][0], sym.tick_size, -200); // 2 % under the best bid, inside the band
      restingQty = smallQuantity(sym, restingPrice);
      await form().getByLabel('Price', { exact: true }).fill(restingPrice);
      await form().getByLabel('Quantity', { exact: true }).fill(restingQty);
      await form().getByRole('button', { name: /^Buy/ }).click();
      const text = await eventually(async () => (await result().isVisible()) && (await result().innerText()), 'order result shown');
      const m = /^Order (\S+) (accepted|new)/i.exec(text);
      expect(m, `order accepted, got "${text}"`);
      restingId = m[1];
      const row = page.locator(`[data-testid=open-order-row][data-order-id="${restingId}"]`);
      await row.waitFor();
      const rowText = await row.innerText();
      expect(rowText.includes(SYMBOL) && rowText.includes('BUY'), `row shows the order: ${rowText}`);
      await eventually(async () => (await quoteReserved()) > 0, `${sym.quote_asset} reserved for the order`);
      await shot('03-open-order.png');
    }, { needs: ['sign in with an API key'] });

    await step('amend the open order', async () => {
      const newQty = fmtUnits(parseUnits(restingQty).units * 2n, parseUnits(restingQty).scale);
      await page.getByRole('button', { name: `Amend order ${restingId}` }).click();
      const amend = page.getByTestId('amend-row');
      await amend.getByLabel('New quantity').fill(newQty);
      await amend.getByRole('button', { name: 'Save' }).click();
      const row = page.locator(`[data-testid=open-order-row][data-order-id="${restingId}"]`);
      await eventually(async () => {
        const cells = await row.locator('td').allInnerTexts();
        return num(cells[5]) === Number(newQty);
      }, `open order shows the amended quantity ${newQty}`);
      const o = await server.api('GET', `/api/orders/${restingId}`, undefined, user.api_key);
      expect(Number(o.quantity) === Number(newQty), `server has quantity ${newQty}, got ${o.quantity}`);
    }, { needs: ['place a resting limit order and see it in open orders'] });

    await step('cancel the open order', async () => {
      await page.getByRole('button', { name: `Cancel order ${restingId}` }).click();
      await page.locator(`[data-testid=open-order-row][data-order-id="${restingId}"]`).waitFor({ state: 'detached' });
      await page.getByTestId('open-orders-empty').waitFor();
      const o = await server.api('GET', `/api/orders/${restingId}`, undefined, user.api_key);
      expect(o.status === 'CANCELLED', `server says ${o.status}`);
      await eventually(async () => (await quoteReserved()) === 0, 'USD reservation released');
    }, { needs: ['place a resting limit order and see it in open orders'] });

    await step('orders from another client with the same key arrive live over the WebSocket', async () => {
      // The screen does not poll: only the private "orders" channel can bring these in.
      const book = await server.api('GET', `/api/market-data/orderbook/${SYMBOL}?depth=1`);
      const price = offsetPrice(book.bids[0][0], sym.tick_size, -300);
      const body = { symbol: SYMBOL, side: 'BUY', type: 'LIMIT', quantity: smallQuantity(sym, price), price, stop_price: null, time_in_force: 'GTC', post_only: false, client_order_id: `e2e-other-${Date.now()}` };
      const r = await fetch(`${server.base}/api/orders`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${user.api_key}`, 'Idempotency-Key': body.client_order_id },
        body: JSON.stringify(body),
      });
      const placed = await r.json();
      expect(r.status === 201, `order placed by the other client: ${r.status} ${JSON.stringify(placed)}`);
      const row = page.locator(`[data-testid=open-order-row][data-order-id="${placed.order_id}"]`);
      await row.waitFor({ timeout: 10_000 });
      await server.api('DELETE', `/api/orders/${placed.order_id}`, undefined, user.api_key);
      await row.waitFor({ state: 'detached', timeout: 10_000 });
      await eventually(async () => (await quoteReserved()) === 0, 'USD reservation released on screen');
    }, { needs: ['sign in with an API key'] });

    await step('a stop order waits for its trigger in open orders, then is cancelled', async () => {
      const book = await server.api('GET', `/api/market-data/orderbook/${SYMBOL}?depth=1`);
      expect(book.asks.length > 0, 'the simulator quotes an ask');
      const stopPrice = offsetPrice(book.asks[0][0], sym.tick_size, 300); // 3 % over the ask: not triggered soon
      await form().getByRole('radio', { name: 'Buy' }).click();
      await form().getByLabel('Type').selectOption('STOP');
      // A stop-market order must be immediate once triggered: the ticket offers IOC/FOK only.
      const tifs = await form().getByLabel('Time in force').locator('option').allTextContents();
      expect(tifs.join(',') === 'IOC,FOK', `stop order time in force choices: ${tifs}`);
      await form().getByLabel('Stop price').fill(stopPrice);
      await form().getByLabel('Quantity', { exact: true }).fill(smallQuantity(sym, stopPrice));
      await form().getByRole('button', { name: /^Buy/ }).click();
      const text = await eventually(async () => (await result().isVisible()) && (await result().innerText()), 'order result shown');
      const m = /^Order (\S+) (accepted|new)/i.exec(text);
      expect(m, `stop order accepted, got "${text}"`);
      const row = page.locator(`[data-testid=open-order-row][data-order-id="${m[1]}"]`);
      await row.getByTestId('untriggered').waitFor();
      expect((await row.innerText()).includes('STOP'), 'row shows the stop type');
      await page.getByRole('button', { name: `Cancel order ${m[1]}` }).click();
      await row.waitFor({ state: 'detached' });
      const o = await server.api('GET', `/api/orders/${m[1]}`, undefined, user.api_key);
      expect(o.status === 'CANCELLED' && o.time_in_force === 'IOC', `server has ${o.status} ${o.time_in_force}`);
      // The stop held a reservation too; the next step's "before" balance must not include it.
      await eventually(async () => (await quoteReserved()) === 0, 'USD reservation of the stop released');
    }, { needs: ['sign in with an API key'] });

    await step('a marketable order fills: trade history and balances change', async () => {
      // Compare against settled balances only: nothing reserved by an earlier order.
      await eventually(async () => (await quoteReserved()) === 0, 'no USD reserved before the fill');
      const usdBefore = num(await page.getByTestId(`balance-${sym.quote_asset}`).innerText());
      const btcBefore = num(await page.getByTestId(`balance-${sym.base_asset}`).innerText());
      const book = await server.api('GET', `/api/market-data/orderbook/${SYMBOL}?depth=1`);
      expect(book.asks.length > 0, 'the simulator quotes an ask');
      const qty = smallQuantity(sym, book.asks[0][0]);
      await form().getByRole('radio', { name: 'Buy' }).click();
      await form().getByLabel('Type').selectOption('MARKET');
      await form().getByLabel('Quantity', { exact: true }).fill(qty);
      await form().getByRole('button', { name: /^Buy/ }).click();
      const text = await eventually(async () => (await result().isVisible()) && (await result().innerText()), 'order result shown');
      const m = /^Order (\S+) (filled|settled|partially filled)/i.exec(text);
      expect(m, `market order filled, got "${text}"`);
      await page.getByRole('tab', { name: 'Trade history' }).click();
      await page.locator(`[data-testid=execution-row][data-order-id="${m[1]}"]`).first().waitFor();
      await eventually(async () => num(await page.getByTestId(`balance-${sym.base_asset}`).innerText()) > btcBefore, `${sym.base_asset} balance went up`);
      await eventually(async () => num(await page.getByTestId(`balance-${sym.quote_asset}`).innerText()) < usdBefore, `${sym.quote_asset} balance went down`);
      await shot('04-filled.png');
      // The fill opened (or grew) a long position.
      await page.getByRole('tab', { name: 'Positions' }).click();
      const pos = page.locator(`[data-testid=position-row][data-symbol="${SYMBOL}"]`);
      await eventually(async () => (await pos.count()) === 1 && num((await pos.locator('td').allInnerTexts())[1]) > 0, `${SYMBOL} long position shown`);
    }, { needs: ['sign in with an API key'] });

    await step('a server rejection is shown next to the field', async () => {
      const book = await server.api('GET', `/api/market-data/orderbook/${SYMBOL}?depth=1`);
      const price = offsetPrice(book.asks[0]?.[0] ?? book.bids[0][0], sym.tick_size, 300);
      // More than the 10 + a bit BTC the user has, within max_quantity: only the server knows it cannot be done.
      const tooMuch = Number(sym.max_quantity) >= 50 ? '50' : sym.max_quantity;
      await page.getByRole('tab', { name: /Open orders/ }).click();
      await form().getByRole('radio', { name: 'Sell' }).click();
      await form().getByLabel('Type').selectOption('LIMIT');
      await form().getByLabel('Price', { exact: true }).fill(price);
      await form().getByLabel('Quantity', { exact: true }).fill(tooMuch);
      await form().getByRole('button', { name: /^Sell/ }).click();
      // The server refuses it for funds (422 INSUFFICIENT_FUNDS): that belongs under the quantity.
      const err = page.getByTestId('error-quantity');
      await err.waitFor();
      expect(/insufficient|not enough/i.test(await err.innerText()), `quantity error says why: ${await err.innerText()}`);
      expect((await page.getByTestId('open-order-row').count()) === 0, 'nothing rests');
      await shot('05-server-error.png');
    }, { needs: ['sign in with an API key'] });

    await step('survives a server restart: reconnects, resyncs the book, keeps the session', async () => {
      await server.stop();
      await eventually(async () => /Reconnecting/.test(await page.getByTestId('connection').innerText()), 'badge shows Reconnecting');
      await shot('06-reconnecting.png');
      await server.start();
      await eventually(async () => (await page.getByTestId('connection').innerText()) === 'Live', 'badge back to Live', 60_000);
      const after = await eventually(bookSeq, 'book snapshot after reconnect');
      await eventually(async () => (await bookSeq()) > after, 'book moves again after reconnect', 45_000);
      await eventually(async () => num(await page.getByTestId(`balance-${sym.quote_asset}`).innerText()) > 0, 'balances still shown (state survived the restart)');
    }, { needs: ['sign in with an API key'] });

    await step('usable on a phone', async () => {
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      const p = await phone.newPage();
      try {
        p.on('pageerror', (e) => pageErrors.push(`phone: ${e.message}`));
        await p.goto(server.base + '/');
        await p.locator('#api-key').fill(user.api_key);
        await p.getByRole('button', { name: 'Sign in' }).click();
        await p.getByTestId('order-form').waitFor();
        await eventually(async () => (await p.getByTestId('bids').locator('tr').count()) > 0, 'book shown on the phone');
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow <= 0, `no sideways scrolling (page is ${overflow}px wider than the screen)`);
        const box = await p.getByTestId('order-form').getByRole('button', { name: /^(Buy|Sell)/ }).boundingBox();
        expect(box && box.height >= 40 && box.width <= 390, `order button fits and is thumb-sized: ${JSON.stringify(box)}`);
        await p.screenshot({ path: path.join(ARTIFACTS, '07-phone.png'), fullPage: true });
      } finally {
        await phone.close();
      }
    }, { needs: ['sign in with an API key'] });

    await step('no uncaught errors in the page', async () => {
      expect(pageErrors.length === 0, `page errors: ${pageErrors.join(' | ')}`);
    });
  } finally {
    await browser?.close().catch(() => undefined);
    await server.stop().catch((e) => console.log(`warning: ${e.message}`));
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  results.push({ name: 'setup', ok: false });
  console.log(`FAIL  setup\n      ${e?.stack ?? e}`);
}
const passed = results.filter((r) => r.ok).length;
const failed = results.filter((r) => !r.ok && !r.skipped).length;
const skipped = results.filter((r) => r.skipped).length;
console.log(`artifacts: ${ARTIFACTS}`);
console.log(`web-e2e: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed || skipped ? 1 : 0);
