// REST client for the QuantTrader API (docs/api.md).
//
// Contract: relative URLs only (the binary serves this app on the same origin as /api and
// /ws); every non-2xx answer becomes an ApiError carrying the server's {code, message,
// field} so the UI can show it next to the offending input; network failures become an
// ApiError with code NETWORK_ERROR. Order placement always sends an Idempotency-Key, so a
// retried click can never place a second order.

import type {
  ApiErrorBody,
  Balance,
  BookSnapshot,
  Candle,
  CandleInterval,
  Execution,
  NewOrder,
  Order,
  Position,
  PublicTrade,
  SymbolInfo,
  Ticker,
} from './types';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;
  /** Seconds to wait, from Retry-After on a 429. */
  readonly retryAfter: number | null;

  constructor(status: number, body: ApiErrorBody, retryAfter: number | null = null) {
    super(body.message);
    this.name = 'ApiError';
    this.status = status;
    this.code = body.code;
    this.field = body.field;
    this.retryAfter = retryAfter;
  }
}

/** A random id usable outside secure contexts too (crypto.randomUUID needs HTTPS or localhost). */
export function randomId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export class Api {
  private readonly fetchImpl: FetchLike;

  constructor(
    private apiKey: string | null = null,
    fetchImpl?: FetchLike,
    private readonly base = '',
  ) {
    // Bound lazily so tests can stub globalThis.fetch after construction.
    this.fetchImpl = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
  }

  withKey(apiKey: string | null): Api {
    return new Api(apiKey, this.fetchImpl, this.base);
  }

  get authenticated(): boolean {
    return this.apiKey !== null;
  }

  private async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const h: Record<string, string> = { Accept: 'application/json', ...headers };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    if (this.apiKey) h.Authorization = `Bearer ${this.apiKey}`;
    let res: Response;
    try {
      res = await this.fetchImpl(this.base + path, {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, {
        code: 'NETWORK_ERROR',
        message: `cannot reach the server (${e instanceof Error ? e.message : String(e)})`,
        field: null,
      });
    }
    const text = await res.text();
    let json: unknown = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    if (!res.ok) {
      const err = (json as { error?: ApiErrorBody } | null)?.error;
      const retry = res.headers.get('Retry-After');
      throw new ApiError(
        res.status,
        err && typeof err.code === 'string'
          ? { code: err.code, message: err.message ?? err.code, field: err.field ?? null }
          : { code: `HTTP_${res.status}`, message: res.statusText || `HTTP ${res.status}`, field: null },
        retry !== null && /^\d+$/.test(retry) ? Number(retry) : null,
      );
    }
    return json as T;
  }

  // Public market data.
  symbols(): Promise<SymbolInfo[]> {
    return this.request<{ symbols: SymbolInfo[] }>('GET', '/api/symbols').then((r) => r.symbols);
  }
  ticker(symbol: string): Promise<Ticker> {
    return this.request('GET', `/api/market-data/prices/${encodeURIComponent(symbol)}`);
  }
  orderBook(symbol: string, depth = 50): Promise<BookSnapshot> {
    return this.request('GET', `/api/market-data/orderbook/${encodeURIComponent(symbol)}?depth=${depth}`);
  }
  trades(symbol: string, limit = 50): Promise<PublicTrade[]> {
    return this.request<{ trades: PublicTrade[] }>(
      'GET',
      `/api/market-data/trades/${encodeURIComponent(symbol)}?limit=${limit}`,
    ).then((r) => r.trades);
  }
  candles(symbol: string, interval: CandleInterval, limit = 500): Promise<Candle[]> {
    return this.request<{ candles: Candle[] }>(
      'GET',
      `/api/market-data/candles/${encodeURIComponent(symbol)}?interval=${interval}&limit=${limit}`,
    ).then((r) => r.candles);
  }

  // Private: need an API key.
  balances(): Promise<Balance[]> {
    return this.request<{ balances: Balance[] }>('GET', '/api/accounts/balances').then((r) => r.balances);
  }
  positions(): Promise<Position[]> {
    return this.request<{ positions: Position[] }>('GET', '/api/risk/positions').then((r) => r.positions);
  }
  openOrders(): Promise<Order[]> {
    return this.request<{ orders: Order[] }>('GET', '/api/orders?status=OPEN&limit=200').then((r) => r.orders);
  }
  executions(limit = 100): Promise<Execution[]> {
    return this.request<{ executions: Execution[] }>('GET', `/api/executions?limit=${limit}`).then(
      (r) => r.executions,
    );
  }
  placeOrder(order: NewOrder, idempotencyKey: string = randomId()): Promise<Order> {
    return this.request('POST', '/api/orders', order, { 'Idempotency-Key': idempotencyKey });
  }
  cancelOrder(orderId: string): Promise<Order> {
    return this.request('DELETE', `/api/orders/${encodeURIComponent(orderId)}`);
  }
  cancelAll(symbol?: string): Promise<{ cancelled: string[] }> {
    return this.request('DELETE', symbol ? `/api/orders?symbol=${encodeURIComponent(symbol)}` : '/api/orders');
  }
  amendOrder(orderId: string, change: { price?: string; quantity?: string }): Promise<Order> {
    return this.request('PATCH', `/api/orders/${encodeURIComponent(orderId)}`, change);
  }
}
