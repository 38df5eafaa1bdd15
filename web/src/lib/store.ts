// The trading screen's state: one store fed by REST (initial loads, actions) and the
// WebSocket (everything live), read by React through useSyncExternalStore.
//
// Contract:
//   - The state object is immutable: each change produces a new snapshot, published at most
//     every `notifyMs` so a busy book does not re-render the page per message.
//   - The book is shown only while it is in sequence: a gap or a reconnect puts it in
//     "resyncing" (rows cleared) until the server's next snapshot arrives.
//   - Private data (orders, fills, balances, positions) is reloaded over REST every time the
//     socket (re)authenticates, so updates missed while disconnected are never lost; in
//     between it is kept live from "order"/"fill" messages and action answers.
//   - The API key lives in sessionStorage only: it survives a reload, not a closed tab.

import { Api, ApiError } from './api';
import { applyTrade, toBars, type Bar } from './candles';
import { OrderBook, type BookLevel } from './orderbook';
import {
  isOpen,
  type Balance,
  type CandleInterval,
  type Execution,
  type Order,
  type Position,
  type PublicTrade,
  type ServerMessage,
  type SymbolInfo,
  type Ticker,
} from './types';
import { MarketSocket, socketUrl, type ConnectionState } from './ws';

export const BOOK_DEPTH = 50;
const TAPE_SIZE = 60;
export const KEY_STORAGE = 'qt.apiKey';
const SYMBOL_STORAGE = 'qt.symbol';

export type BookStatus = 'loading' | 'live' | 'resyncing';

export interface State {
  symbols: SymbolInfo[];
  symbolsError: string | null;
  symbol: string | null;
  connection: ConnectionState;
  retryInMs: number | null;
  attempt: number;
  bookStatus: BookStatus;
  bookSequence: number | null;
  bids: BookLevel[];
  asks: BookLevel[];
  gaps: number;
  ticker: Ticker | null;
  tape: PublicTrade[];
  interval: CandleInterval;
  bars: Bar[];
  // Private.
  apiKey: string | null;
  userId: string | null;
  signInError: string | null;
  signingIn: boolean;
  balances: Balance[];
  positions: Position[];
  openOrders: Order[];
  executions: Execution[];
  privateError: string | null;
}

export const initialState: State = {
  symbols: [],
  symbolsError: null,
  symbol: null,
  connection: 'connecting',
  retryInMs: null,
  attempt: 0,
  bookStatus: 'loading',
  bookSequence: null,
  bids: [],
  asks: [],
  gaps: 0,
  ticker: null,
  tape: [],
  interval: '1m',
  bars: [],
  apiKey: null,
  userId: null,
  signInError: null,
  signingIn: false,
  balances: [],
  positions: [],
  openOrders: [],
  executions: [],
  privateError: null,
};

export interface StoreDeps {
  api?: Api;
  socket?: (handlers: {
    onMessage: (m: ServerMessage) => void;
    onState: (s: ConnectionState, info: { attempt: number; retryInMs: number | null }) => void;
    onReconnect: () => void;
  }) => MarketSocket;
  storage?: Storage;
  local?: Storage;
  notifyMs?: number;
  refreshMs?: number;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class TradingStore {
  private state: State = initialState;
  private readonly listeners = new Set<() => void>();
  private api: Api;
  private readonly publicApi: Api;
  private readonly socket: MarketSocket;
  private readonly session: Storage | undefined;
  private readonly local: Storage | undefined;
  private readonly notifyMs: number;
  private readonly refreshMs: number;
  private book: OrderBook | null = null;
  private notifyTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private candleGen = 0;

  constructor(deps: StoreDeps = {}) {
    this.publicApi = deps.api ?? new Api();
    this.api = this.publicApi;
    this.session = deps.storage ?? (typeof sessionStorage === 'undefined' ? undefined : sessionStorage);
    this.local = deps.local ?? (typeof localStorage === 'undefined' ? undefined : localStorage);
    this.notifyMs = deps.notifyMs ?? 50;
    this.refreshMs = deps.refreshMs ?? 250;
    const handlers = {
      onMessage: (m: ServerMessage) => this.onMessage(m),
      onState: (s: ConnectionState, info: { attempt: number; retryInMs: number | null }) =>
        this.set({ connection: s, attempt: info.attempt, retryInMs: info.retryInMs }),
      onReconnect: () => this.onReconnect(),
    };
    this.socket = deps.socket
      ? deps.socket(handlers)
      : new MarketSocket({ url: socketUrl(), ...handlers });
  }

  // --- useSyncExternalStore plumbing ---
  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };
  getState = (): State => this.state;

  private set(patch: Partial<State>, immediate = false): void {
    this.state = { ...this.state, ...patch };
    if (immediate || this.notifyMs === 0) {
      this.flush();
      return;
    }
    this.notifyTimer ??= setTimeout(() => this.flush(), this.notifyMs);
  }

  private flush(): void {
    if (this.notifyTimer) clearTimeout(this.notifyTimer);
    this.notifyTimer = null;
    for (const l of [...this.listeners]) l();
  }

  // --- lifecycle ---
  async start(): Promise<void> {
    this.socket.start();
    const saved = this.session?.getItem(KEY_STORAGE) ?? null;
    const symbolsLoaded = this.loadSymbols();
    if (saved) void this.signIn(saved);
    await symbolsLoaded;
  }

  stop(): void {
    this.socket.stop();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    if (this.notifyTimer) clearTimeout(this.notifyTimer);
  }

  private async loadSymbols(): Promise<void> {
    try {
      const symbols = (await this.publicApi.symbols()).filter((s) => s.status !== 'DELISTED');
      const saved = this.local?.getItem(SYMBOL_STORAGE);
      const first = symbols.find((s) => s.symbol === saved)?.symbol ?? symbols[0]?.symbol ?? null;
      this.set({ symbols, symbolsError: null }, true);
      if (first) this.selectSymbol(first);
    } catch (e) {
      this.set({ symbolsError: `Cannot load symbols: ${errorText(e)}` }, true);
      // The server may be starting: try again rather than leave a dead screen.
      setTimeout(() => void this.loadSymbols(), 3000);
    }
  }

  selectSymbol(symbol: string): void {
    const prev = this.state.symbol;
    if (prev === symbol) return;
    if (prev) {
      this.socket.unsubscribe('book', prev);
      this.socket.unsubscribe('trades', prev);
      this.socket.unsubscribe('ticker', prev);
    }
    this.book = new OrderBook(symbol);
    this.local?.setItem(SYMBOL_STORAGE, symbol);
    this.set(
      { symbol, bookStatus: 'loading', bookSequence: null, bids: [], asks: [], ticker: null, tape: [], bars: [] },
      true,
    );
    this.socket.subscribe('book', symbol, BOOK_DEPTH);
    this.socket.subscribe('trades', symbol);
    this.socket.subscribe('ticker', symbol);
    void this.loadMarket(symbol);
  }

  setInterval(interval: CandleInterval): void {
    if (interval === this.state.interval) return;
    this.set({ interval, bars: [] }, true);
    if (this.state.symbol) void this.loadCandles(this.state.symbol, interval);
  }

  private async loadMarket(symbol: string): Promise<void> {
    const api = this.publicApi;
    await Promise.all([
      this.loadCandles(symbol, this.state.interval),
      api.ticker(symbol).then(
        (t) => this.state.symbol === symbol && !this.state.ticker && this.set({ ticker: t }),
        () => undefined, // the ticker channel fills it in
      ),
      api.trades(symbol, TAPE_SIZE).then(
        (trades) => this.state.symbol === symbol && this.set({ tape: mergeTape(this.state.tape, trades) }),
        () => undefined,
      ),
    ]);
  }

  private async loadCandles(symbol: string, interval: CandleInterval): Promise<void> {
    const gen = ++this.candleGen;
    try {
      const candles = await this.publicApi.candles(symbol, interval, 500);
      if (gen !== this.candleGen || this.state.symbol !== symbol) return;
      // Trades that arrived while the request was in flight are already in state.bars; the
      // REST answer is authoritative up to its last bar, live bars after it are kept.
      const fresh = toBars(candles);
      const lastTime = fresh[fresh.length - 1]?.time ?? -Infinity;
      this.set({ bars: [...fresh, ...this.state.bars.filter((b) => b.time > lastTime)] });
    } catch {
      /* The chart stays empty and fills from live trades. */
    }
  }

  // --- WebSocket ---
  private onReconnect(): void {
    // Whatever the book was, diffs were missed while disconnected: wait for the new snapshot.
    this.book?.reset();
    if (this.state.symbol) this.set({ bookStatus: this.state.bookSequence === null ? 'loading' : 'resyncing', bids: [], asks: [] });
  }

  private onMessage(m: ServerMessage): void {
    switch (m.type) {
      case 'book_snapshot':
        if (!this.book || m.symbol !== this.book.symbol) return;
        this.book.applySnapshot(m);
        this.publishBook('live');
        return;
      case 'book_diff': {
        if (!this.book || m.symbol !== this.book.symbol) return;
        const r = this.book.applyDiff(m);
        if (r === 'applied') this.publishBook('live');
        else if (r === 'gap') {
          // Resync only once per gap: until the snapshot comes, later diffs are gaps too.
          if (this.state.bookStatus !== 'resyncing') {
            this.set({ bookStatus: 'resyncing', bids: [], asks: [], gaps: this.state.gaps + 1 });
            this.socket.resubscribe('book', m.symbol);
          }
        }
        return;
      }
      case 'trade': {
        if (m.symbol !== this.state.symbol) return;
        const trade: PublicTrade = {
          trade_id: m.trade_id,
          price: m.price,
          quantity: m.quantity,
          taker_side: m.taker_side,
          timestamp: m.timestamp,
        };
        this.set({
          tape: mergeTape(this.state.tape, [trade]),
          bars: applyTrade(this.state.bars, this.state.interval, Number(m.price), Number(m.quantity), Date.parse(m.timestamp)),
        });
        return;
      }
      case 'ticker':
        if (m.symbol === this.state.symbol) this.set({ ticker: m });
        return;
      case 'authenticated':
        this.set({ userId: m.user_id });
        void this.loadPrivate();
        return;
      case 'order':
        this.upsertOrder(m.order);
        this.scheduleRefresh();
        return;
      case 'fill':
        this.addFills([m.fill]);
        this.scheduleRefresh();
        return;
      case 'error':
        if (m.error.code === 'UNAUTHORIZED' && this.state.apiKey) {
          this.set({ privateError: `Live updates refused: ${m.error.message}` });
        }
        return;
      default:
        return;
    }
  }

  private publishBook(status: BookStatus): void {
    if (!this.book) return;
    this.set({
      bookStatus: status,
      bookSequence: this.book.sequence,
      bids: this.book.bidLevels(BOOK_DEPTH),
      asks: this.book.askLevels(BOOK_DEPTH),
    });
  }

  // --- private data ---
  async signIn(apiKey: string): Promise<boolean> {
    const key = apiKey.trim();
    if (!key) {
      this.set({ signInError: 'Enter your API key' }, true);
      return false;
    }
    this.set({ signingIn: true, signInError: null }, true);
    const api = this.publicApi.withKey(key);
    try {
      const balances = await api.balances();
      this.api = api;
      this.session?.setItem(KEY_STORAGE, key);
      this.set({ apiKey: key, balances, signingIn: false, privateError: null }, true);
      this.socket.setApiKey(key);
      this.socket.subscribe('orders');
      await this.loadPrivate();
      return true;
    } catch (e) {
      const msg =
        e instanceof ApiError && e.status === 401 ? 'This API key was not accepted' : `Sign-in failed: ${errorText(e)}`;
      if (e instanceof ApiError && e.status === 401) this.session?.removeItem(KEY_STORAGE);
      this.set({ signInError: msg, signingIn: false }, true);
      return false;
    }
  }

  signOut(): void {
    this.session?.removeItem(KEY_STORAGE);
    this.socket.setApiKey(null);
    this.api = this.publicApi;
    this.set(
      { apiKey: null, userId: null, balances: [], positions: [], openOrders: [], executions: [], privateError: null },
      true,
    );
  }

  /** Reloads every private view; used at sign-in, on each (re)authentication and after actions. */
  async loadPrivate(): Promise<void> {
    if (!this.api.authenticated) return;
    const api = this.api;
    try {
      const [balances, positions, openOrders, executions] = await Promise.all([
        api.balances(),
        api.positions(),
        api.openOrders(),
        api.executions(100),
      ]);
      if (api !== this.api) return; // signed out or switched key meanwhile
      this.set({ balances, positions, openOrders, executions: mergeExecutions(executions, this.state.executions), privateError: null });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        this.signOut();
        this.set({ signInError: 'Your API key is no longer valid' }, true);
        return;
      }
      this.set({ privateError: `Cannot load account data: ${errorText(e)}` });
    }
  }

  private async refreshBalances(): Promise<void> {
    if (!this.api.authenticated) return;
    const api = this.api;
    try {
      const [balances, positions] = await Promise.all([api.balances(), api.positions()]);
      if (api === this.api) this.set({ balances, positions });
    } catch {
      /* The next update or reconnect reloads them. */
    }
  }

  /** Fills and order updates change balances, which have no push channel: coalesce reloads. */
  private scheduleRefresh(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      void this.refreshBalances();
    }, this.refreshMs);
  }

  private upsertOrder(o: Order): void {
    const rest = this.state.openOrders.filter((x) => x.order_id !== o.order_id);
    const existing = this.state.openOrders.find((x) => x.order_id === o.order_id);
    // Out-of-order delivery (REST answer vs push) must not resurrect an older state.
    if (existing && existing.updated_at > o.updated_at) return;
    this.set({ openOrders: isOpen(o.status) ? [o, ...rest].sort(byCreatedDesc) : rest });
  }

  private addFills(fills: Execution[]): void {
    if (fills.length) this.set({ executions: mergeExecutions(fills, this.state.executions) });
  }

  // --- actions (errors are thrown to the component that shows them) ---
  async placeOrder(...args: Parameters<Api['placeOrder']>): Promise<Order> {
    const order = await this.api.placeOrder(...args);
    this.upsertOrder(order);
    this.addFills(order.fills ?? []);
    this.scheduleRefresh();
    return order;
  }

  async cancelOrder(orderId: string): Promise<void> {
    try {
      const order = await this.api.cancelOrder(orderId);
      this.upsertOrder(order);
    } catch (e) {
      // Already gone (filled or cancelled elsewhere): the list was stale, so fix it and say so.
      if (e instanceof ApiError && (e.code === 'ORDER_NOT_OPEN' || e.status === 404)) {
        this.set({ openOrders: this.state.openOrders.filter((x) => x.order_id !== orderId) });
      }
      throw e;
    } finally {
      this.scheduleRefresh();
    }
  }

  async cancelAll(symbol?: string): Promise<number> {
    const r = await this.api.cancelAll(symbol);
    const gone = new Set(r.cancelled);
    this.set({ openOrders: this.state.openOrders.filter((o) => !gone.has(o.order_id)) });
    this.scheduleRefresh();
    return r.cancelled.length;
  }

  async amendOrder(orderId: string, change: { price?: string; quantity?: string }): Promise<Order> {
    const order = await this.api.amendOrder(orderId, change);
    this.upsertOrder(order);
    this.scheduleRefresh();
    return order;
  }
}

function byCreatedDesc(a: Order, b: Order): number {
  return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0;
}

function mergeTape(current: PublicTrade[], incoming: PublicTrade[]): PublicTrade[] {
  const seen = new Set(current.map((t) => t.trade_id));
  const fresh = incoming.filter((t) => !seen.has(t.trade_id));
  if (!fresh.length) return current;
  return [...fresh, ...current]
    .sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0))
    .slice(0, TAPE_SIZE);
}

function mergeExecutions(incoming: Execution[], current: Execution[]): Execution[] {
  const byId = new Map<string, Execution>();
  for (const e of [...current, ...incoming]) byId.set(e.execution_id, e);
  return [...byId.values()]
    .sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0))
    .slice(0, 200);
}
