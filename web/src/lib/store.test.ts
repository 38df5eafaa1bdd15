import { FakeWebSocket, makeStore } from '../test/fakes';
import { KEY_STORAGE } from './store';
import type { Order } from './types';

const order = (patch: Partial<Order> = {}): Order => ({
  order_id: '42',
  client_order_id: 'c',
  symbol: 'BTC-USD',
  side: 'BUY',
  type: 'LIMIT',
  status: 'ACCEPTED',
  price: '29000.00',
  stop_price: null,
  quantity: '0.5',
  filled_quantity: '0',
  remaining_quantity: '0.5',
  average_price: null,
  time_in_force: 'GTC',
  post_only: false,
  reject_reason: null,
  created_at: '2026-11-25T10:00:00Z',
  updated_at: '2026-11-25T10:00:00Z',
  ...patch,
});

async function started() {
  const ctx = makeStore();
  await ctx.store.start();
  const ws = FakeWebSocket.last();
  ws.open();
  return { ...ctx, ws };
}

describe('TradingStore', () => {
  beforeEach(() => {
    sessionStorage.clear();
    localStorage.clear();
  });

  it('selects the first symbol and subscribes to its market data', async () => {
    const { store, ws } = await started();
    expect(store.getState().symbol).toBe('BTC-USD');
    expect(ws.ops()).toEqual(['subscribe:book:BTC-USD', 'subscribe:trades:BTC-USD', 'subscribe:ticker:BTC-USD']);
    store.selectSymbol('ETH-USD');
    expect(ws.ops().slice(3)).toEqual([
      'unsubscribe:book:BTC-USD',
      'unsubscribe:trades:BTC-USD',
      'unsubscribe:ticker:BTC-USD',
      'subscribe:book:ETH-USD',
      'subscribe:trades:ETH-USD',
      'subscribe:ticker:ETH-USD',
    ]);
  });

  it('keeps the book in sequence and resubscribes once on a gap', async () => {
    const { store, ws } = await started();
    ws.receive({ type: 'book_snapshot', symbol: 'BTC-USD', sequence: 5, bids: [['100.00', '1']], asks: [['101.00', '1']] });
    expect(store.getState()).toMatchObject({ bookStatus: 'live', bookSequence: 5 });
    ws.receive({ type: 'book_diff', symbol: 'BTC-USD', sequence: 6, bids: [['100.50', '2']], asks: [] });
    expect(store.getState().bids.map((l) => l.price)).toEqual(['100.50', '100.00']);
    ws.sent = [];
    ws.receive({ type: 'book_diff', symbol: 'BTC-USD', sequence: 8, bids: [], asks: [] });
    ws.receive({ type: 'book_diff', symbol: 'BTC-USD', sequence: 9, bids: [], asks: [] });
    expect(store.getState()).toMatchObject({ bookStatus: 'resyncing', bids: [], gaps: 1 });
    expect(ws.ops()).toEqual(['unsubscribe:book:BTC-USD', 'subscribe:book:BTC-USD']);
    ws.receive({ type: 'book_snapshot', symbol: 'BTC-USD', sequence: 20, bids: [['99.00', '1']], asks: [] });
    expect(store.getState()).toMatchObject({ bookStatus: 'live', bookSequence: 20 });
  });

  it('ignores book messages of another symbol', async () => {
    const { store, ws } = await started();
    ws.receive({ type: 'book_snapshot', symbol: 'ETH-USD', sequence: 1, bids: [['1.00', '1']], asks: [] });
    expect(store.getState().bids).toEqual([]);
  });

  it('clears the book on reconnect until the new snapshot', async () => {
    vi.useFakeTimers();
    try {
      const { store, ws } = await started();
      ws.receive({ type: 'book_snapshot', symbol: 'BTC-USD', sequence: 5, bids: [['100.00', '1']], asks: [] });
      ws.drop();
      vi.advanceTimersByTime(20_000);
      FakeWebSocket.last().open();
      expect(store.getState()).toMatchObject({ bookStatus: 'resyncing', bids: [] });
      FakeWebSocket.last().receive({ type: 'book_diff', symbol: 'BTC-USD', sequence: 6, bids: [], asks: [] });
      expect(store.getState().bookStatus).toBe('resyncing');
    } finally {
      vi.useRealTimers();
    }
  });

  it('signs in, keeps the key for the tab only, and authenticates the socket', async () => {
    const { store, ws } = await started();
    expect(await store.signIn('good-key')).toBe(true);
    expect(sessionStorage.getItem(KEY_STORAGE)).toBe('good-key');
    expect(localStorage.getItem(KEY_STORAGE)).toBeNull();
    expect(store.getState().balances.map((b) => b.asset)).toEqual(['USD', 'BTC']);
    expect(ws.sent).toContainEqual({ op: 'auth', api_key: 'good-key' });
    ws.receive({ type: 'authenticated', user_id: '7' });
    expect(ws.sent.at(-1)).toEqual({ op: 'subscribe', channel: 'orders' });
    store.signOut();
    expect(sessionStorage.getItem(KEY_STORAGE)).toBeNull();
    expect(store.getState()).toMatchObject({ apiKey: null, balances: [] });
  });

  it('refuses a bad key with a message and keeps nothing', async () => {
    const { store } = await started();
    expect(await store.signIn('bad')).toBe(false);
    expect(store.getState().signInError).toMatch(/not accepted/);
    expect(sessionStorage.getItem(KEY_STORAGE)).toBeNull();
  });

  it('tracks open orders from pushes: new, updated, final, and never goes back in time', async () => {
    const { store, ws } = await started();
    await store.signIn('good-key');
    ws.receive({ type: 'order', order: order() });
    expect(store.getState().openOrders.map((o) => o.order_id)).toEqual(['42']);
    ws.receive({ type: 'order', order: order({ status: 'PARTIALLY_FILLED', filled_quantity: '0.1', updated_at: '2026-11-25T10:00:02Z' }) });
    ws.receive({ type: 'order', order: order({ status: 'ACCEPTED', updated_at: '2026-11-25T10:00:01Z' }) });
    expect(store.getState().openOrders[0].status).toBe('PARTIALLY_FILLED');
    ws.receive({ type: 'fill', fill: { execution_id: 'e1', order_id: '42', symbol: 'BTC-USD', side: 'BUY', price: '29000.00', quantity: '0.1', fee: '0.03', fee_asset: 'USD', liquidity: 'MAKER', timestamp: '2026-11-25T10:00:02Z' } });
    ws.receive({ type: 'fill', fill: { execution_id: 'e1', order_id: '42', symbol: 'BTC-USD', side: 'BUY', price: '29000.00', quantity: '0.1', fee: '0.03', fee_asset: 'USD', liquidity: 'MAKER', timestamp: '2026-11-25T10:00:02Z' } });
    expect(store.getState().executions).toHaveLength(1);
    ws.receive({ type: 'order', order: order({ status: 'CANCELLED', updated_at: '2026-11-25T10:00:03Z' }) });
    expect(store.getState().openOrders).toEqual([]);
  });

  it('reloads private data on every (re)authentication, so missed updates are recovered', async () => {
    const { store, ws, calls } = await started();
    await store.signIn('good-key');
    const before = calls.filter((c) => c.path.startsWith('/api/orders')).length;
    ws.receive({ type: 'authenticated', user_id: '7' });
    await vi.waitFor(() => expect(calls.filter((c) => c.path.startsWith('/api/orders')).length).toBe(before + 1));
  });
});
