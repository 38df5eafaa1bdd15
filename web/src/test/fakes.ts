// Test doubles: a scriptable WebSocket and a routed fetch, so the real MarketSocket, Api and
// TradingStore run unchanged in jsdom.

import { Api } from '../lib/api';
import { TradingStore } from '../lib/store';
import type { ServerMessage, SymbolInfo } from '../lib/types';
import { MarketSocket } from '../lib/ws';

export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static instances: FakeWebSocket[] = [];
  static reset(): void {
    FakeWebSocket.instances = [];
  }
  static last(): FakeWebSocket {
    const ws = FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    if (!ws) throw new Error('no socket created');
    return ws;
  }

  readyState = FakeWebSocket.CONNECTING;
  sent: Record<string, unknown>[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;

  constructor(readonly url: string) {
    FakeWebSocket.instances.push(this);
  }
  send(data: string): void {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(): void {
    this.readyState = FakeWebSocket.CLOSED;
  }
  // Server side.
  open(): void {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.();
  }
  receive(msg: ServerMessage): void {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code = 1006): void {
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose?.({ code, reason: '' });
  }
  ops(): string[] {
    return this.sent.map((m) => `${String(m.op)}${m.channel ? ':' + String(m.channel) : ''}${m.symbol ? ':' + String(m.symbol) : ''}`);
  }
}

export interface Call {
  method: string;
  path: string;
  body: unknown;
  headers: Record<string, string>;
}

type Handler = (call: Call) => { status?: number; body?: unknown; headers?: Record<string, string> } | undefined;

/** A fetch that answers from `routes` ("METHOD /path" without the query -> handler) and records calls. */
export function routedFetch(routes: Record<string, Handler>) {
  const calls: Call[] = [];
  const fetchImpl = async (input: string, init?: RequestInit): Promise<Response> => {
    const method = init?.method ?? 'GET';
    const path = input.split('?')[0];
    const call: Call = {
      method,
      path: input,
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
      headers: (init?.headers ?? {}) as Record<string, string>,
    };
    calls.push(call);
    const h = routes[`${method} ${path}`];
    const r = h?.(call) ?? { status: 404, body: { error: { code: 'NOT_FOUND', message: `no route ${method} ${path}`, field: null } } };
    return new Response(r.body === undefined ? null : JSON.stringify(r.body), {
      status: r.status ?? 200,
      headers: { 'Content-Type': 'application/json', ...(r.headers ?? {}) },
    });
  };
  return { fetchImpl, calls };
}

export const BTC: SymbolInfo = {
  symbol: 'BTC-USD',
  base_asset: 'BTC',
  quote_asset: 'USD',
  tick_size: '0.01',
  lot_size: '0.0001',
  min_quantity: '0.0001',
  max_quantity: '100',
  min_notional: '1.00',
  price_band_bps: 1000,
  status: 'TRADING',
};

export const ETH: SymbolInfo = { ...BTC, symbol: 'ETH-USD', base_asset: 'ETH', lot_size: '0.001', min_quantity: '0.001' };

export const publicRoutes: Record<string, Handler> = {
  'GET /api/symbols': () => ({ body: { symbols: [BTC, ETH] } }),
  'GET /api/market-data/candles/BTC-USD': () => ({ body: { symbol: 'BTC-USD', interval: '1m', candles: [] } }),
  'GET /api/market-data/candles/ETH-USD': () => ({ body: { symbol: 'ETH-USD', interval: '1m', candles: [] } }),
  'GET /api/market-data/prices/BTC-USD': () => ({ body: { symbol: 'BTC-USD', last: '30000.00', best_bid: null, best_ask: null, high_24h: null, low_24h: null, volume_24h: null, change_24h: null, timestamp: null } }),
  'GET /api/market-data/trades/BTC-USD': () => ({ body: { symbol: 'BTC-USD', trades: [] } }),
};

export const privateRoutes = (key = 'good-key'): Record<string, Handler> => {
  const authed = (h: Handler): Handler => (c) =>
    c.headers.Authorization === `Bearer ${key}` ? h(c) : { status: 401, body: { error: { code: 'UNAUTHORIZED', message: 'bad key', field: null } } };
  return {
    'GET /api/accounts/balances': authed(() => ({ body: { balances: [{ asset: 'USD', available: '1000.00', reserved: '0' }, { asset: 'BTC', available: '2', reserved: '0' }] } })),
    'GET /api/risk/positions': authed(() => ({ body: { positions: [] } })),
    'GET /api/orders': authed(() => ({ body: { orders: [], next_cursor: null } })),
    'GET /api/executions': authed(() => ({ body: { executions: [], next_cursor: null } })),
  };
};

/** A store wired to fakes; notifications are synchronous so tests need no timers. */
export function makeStore(routes: Record<string, Handler> = {}, storage: Storage = sessionStorage) {
  FakeWebSocket.reset();
  const { fetchImpl, calls } = routedFetch({ ...publicRoutes, ...privateRoutes(), ...routes });
  const store = new TradingStore({
    api: new Api(null, fetchImpl),
    socket: (h) => new MarketSocket({ url: 'ws://test/ws/market-data', WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket, ...h }),
    storage,
    local: localStorage,
    notifyMs: 0,
    refreshMs: 0,
  });
  return { store, calls };
}
