import { FakeWebSocket } from '../test/fakes';
import type { ServerMessage } from './types';
import { backoffDelay, MarketSocket, socketUrl, type ConnectionState } from './ws';

function make(opts: Partial<ConstructorParameters<typeof MarketSocket>[0]> = {}) {
  FakeWebSocket.reset();
  const states: ConnectionState[] = [];
  const messages: ServerMessage[] = [];
  let reconnects = 0;
  const s = new MarketSocket({
    url: 'ws://x/ws/market-data',
    WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket,
    random: () => 1,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    onMessage: (m) => messages.push(m),
    onState: (st) => states.push(st),
    onReconnect: () => reconnects++,
    ...opts,
  });
  return { s, states, messages, reconnects: () => reconnects };
}

describe('MarketSocket', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends subscriptions made before the socket opened, once it opens', () => {
    const { s } = make();
    s.subscribe('book', 'BTC-USD', 50);
    s.subscribe('trades', 'BTC-USD');
    s.start();
    const ws = FakeWebSocket.last();
    expect(ws.sent).toEqual([]);
    ws.open();
    expect(ws.sent).toEqual([
      { op: 'subscribe', channel: 'book', symbol: 'BTC-USD', depth: 50 },
      { op: 'subscribe', channel: 'trades', symbol: 'BTC-USD' },
    ]);
  });

  it('reconnects with growing delays and replays auth first, then subscriptions', () => {
    const { s, states, reconnects } = make();
    s.setApiKey('k');
    s.subscribe('orders');
    s.subscribe('book', 'BTC-USD');
    s.start();
    FakeWebSocket.last().open();
    FakeWebSocket.last().drop();
    expect(states.at(-1)).toBe('reconnecting');
    vi.advanceTimersByTime(99);
    expect(FakeWebSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
    FakeWebSocket.last().drop(); // failed attempt: next delay doubles
    vi.advanceTimersByTime(199);
    expect(FakeWebSocket.instances).toHaveLength(2);
    vi.advanceTimersByTime(1);
    const ws = FakeWebSocket.last();
    ws.open();
    expect(reconnects()).toBe(2);
    // The private channel waits for the server to confirm the key.
    expect(ws.ops()).toEqual(['auth', 'subscribe:book:BTC-USD']);
    ws.receive({ type: 'authenticated', user_id: 'u1' });
    expect(ws.ops()).toEqual(['auth', 'subscribe:book:BTC-USD', 'subscribe:orders']);
  });

  it('forgets unsubscribed channels and resubscribes on demand', () => {
    const { s } = make();
    s.subscribe('book', 'BTC-USD');
    s.start();
    const ws = FakeWebSocket.last();
    ws.open();
    s.resubscribe('book', 'BTC-USD');
    s.unsubscribe('book', 'BTC-USD');
    expect(ws.ops()).toEqual(['subscribe:book:BTC-USD', 'unsubscribe:book:BTC-USD', 'subscribe:book:BTC-USD', 'unsubscribe:book:BTC-USD']);
    ws.drop();
    vi.advanceTimersByTime(1000);
    FakeWebSocket.last().open();
    expect(FakeWebSocket.last().sent).toEqual([]);
  });

  it('pings, and replaces a connection that went silent', () => {
    const { s } = make({ pingMs: 1000, idleMs: 2500 });
    s.start();
    const ws = FakeWebSocket.last();
    ws.open();
    vi.advanceTimersByTime(1000);
    expect(ws.ops()).toEqual(['ping']);
    vi.advanceTimersByTime(2000); // 3 s of silence > idleMs
    expect(ws.readyState).toBe(FakeWebSocket.CLOSED);
    vi.advanceTimersByTime(1000);
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it('stops for good on stop()', () => {
    const { s, states } = make();
    s.start();
    FakeWebSocket.last().open();
    s.stop();
    expect(states.at(-1)).toBe('closed');
    vi.advanceTimersByTime(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('passes messages through and ignores malformed frames', () => {
    const { s, messages } = make();
    s.start();
    const ws = FakeWebSocket.last();
    ws.open();
    ws.onmessage?.({ data: 'not json' });
    ws.receive({ type: 'pong' });
    expect(messages).toEqual([{ type: 'pong' }]);
  });
});

describe('backoffDelay', () => {
  it('caps exponential growth and never returns zero', () => {
    expect(backoffDelay(1, 500, 15000, () => 1)).toBe(500);
    expect(backoffDelay(4, 500, 15000, () => 1)).toBe(4000);
    expect(backoffDelay(20, 500, 15000, () => 1)).toBe(15000);
    expect(backoffDelay(3, 500, 15000, () => 0)).toBe(250);
  });
});

describe('socketUrl', () => {
  it('uses the page origin and its scheme', () => {
    expect(socketUrl({ protocol: 'https:', host: 'trade.example.com' })).toBe('wss://trade.example.com/ws/market-data');
    expect(socketUrl({ protocol: 'http:', host: '127.0.0.1:8080' })).toBe('ws://127.0.0.1:8080/ws/market-data');
  });
});
