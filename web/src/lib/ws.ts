// WebSocket client for /ws/market-data with reconnect, backoff and subscription replay.
//
// Contract:
//   - subscribe/unsubscribe/auth are remembered, not just sent: after every (re)connect the
//     client re-authenticates first and replays every live subscription, so callers never
//     deal with reconnects. The server answers a re-subscribe to "book" with a fresh
//     snapshot, which is also how a sequence gap is repaired (resubscribe()).
//   - Reconnect delays grow exponentially with full jitter (so a restarted server is not hit
//     by every browser at once) and reset after a connection has stayed up.
//   - A ping goes out every pingMs; a connection that has said nothing for idleMs is treated
//     as dead and replaced, because a half-open TCP connection never fires `close`.
//   - The private "orders" subscription is sent only after the server confirmed the auth.

import type { ServerMessage } from './types';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SocketOptions {
  url: string;
  WebSocketImpl?: typeof WebSocket;
  baseDelayMs?: number;
  maxDelayMs?: number;
  pingMs?: number;
  idleMs?: number;
  /** A connection that lived this long resets the backoff. */
  stableMs?: number;
  random?: () => number;
  onMessage: (m: ServerMessage) => void;
  onState: (s: ConnectionState, info: { attempt: number; retryInMs: number | null }) => void;
  /** Called after each successful (re)connect, once subscriptions were replayed. */
  onReconnect?: () => void;
}

interface Sub {
  channel: string;
  symbol?: string;
  depth?: number;
}

const subKey = (s: Sub): string => `${s.channel}|${s.symbol ?? ''}`;

/** Delay before reconnect attempt `attempt` (1-based): full jitter over an exponential cap. */
export function backoffDelay(attempt: number, base: number, max: number, random: () => number): number {
  const cap = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  // Never zero: a tight reconnect loop against a server that accepts then closes would spin.
  return Math.max(base / 2, Math.floor(random() * cap));
}

export class MarketSocket {
  private ws: WebSocket | null = null;
  private readonly subs = new Map<string, Sub>();
  private apiKey: string | null = null;
  private authenticated = false;
  private attempt = 0;
  private stopped = true;
  private everOpened = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private stableTimer: ReturnType<typeof setTimeout> | null = null;
  private lastSeen = 0;
  private readonly o: Required<Omit<SocketOptions, 'onReconnect'>> & Pick<SocketOptions, 'onReconnect'>;

  constructor(opts: SocketOptions) {
    this.o = {
      WebSocketImpl: globalThis.WebSocket,
      baseDelayMs: 500,
      maxDelayMs: 15_000,
      pingMs: 15_000,
      idleMs: 40_000,
      stableMs: 10_000,
      random: Math.random,
      ...opts,
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'client closed');
    }
    this.o.onState('closed', { attempt: 0, retryInMs: null });
  }

  get isOpen(): boolean {
    return this.ws !== null && this.ws.readyState === this.o.WebSocketImpl.OPEN;
  }

  subscribe(channel: string, symbol?: string, depth?: number): void {
    const s: Sub = { channel, symbol, depth };
    this.subs.set(subKey(s), s);
    this.sendSub(s);
  }

  unsubscribe(channel: string, symbol?: string): void {
    const s: Sub = { channel, symbol };
    if (!this.subs.delete(subKey(s))) return;
    this.send({ op: 'unsubscribe', channel, ...(symbol ? { symbol } : {}) });
  }

  /** Drops and re-requests one subscription: for "book" the server answers with a new snapshot. */
  resubscribe(channel: string, symbol?: string): void {
    const s = this.subs.get(subKey({ channel, symbol }));
    if (!s) return;
    this.send({ op: 'unsubscribe', channel, ...(symbol ? { symbol } : {}) });
    this.sendSub(s);
  }

  /** Sets (or clears, with null) the API key used for the private channel on every connection. */
  setApiKey(key: string | null): void {
    this.apiKey = key;
    this.authenticated = false;
    if (key) this.send({ op: 'auth', api_key: key });
    else if (this.subs.has(subKey({ channel: 'orders' }))) this.unsubscribe('orders');
  }

  private sendSub(s: Sub): void {
    // The private channel would be refused before the auth answer arrives.
    if (s.channel === 'orders' && !this.authenticated) return;
    this.send({
      op: 'subscribe',
      channel: s.channel,
      ...(s.symbol ? { symbol: s.symbol } : {}),
      ...(s.depth ? { depth: s.depth } : {}),
    });
  }

  private send(msg: object): void {
    if (this.isOpen) this.ws!.send(JSON.stringify(msg));
    // Otherwise nothing is lost: the open handler replays auth and every subscription.
  }

  private connect(): void {
    this.o.onState(this.everOpened ? 'reconnecting' : 'connecting', { attempt: this.attempt, retryInMs: null });
    let ws: WebSocket;
    try {
      ws = new this.o.WebSocketImpl(this.o.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.everOpened = true;
      this.authenticated = false;
      this.lastSeen = Date.now();
      this.o.onState('open', { attempt: this.attempt, retryInMs: null });
      if (this.apiKey) this.send({ op: 'auth', api_key: this.apiKey });
      for (const s of this.subs.values()) this.sendSub(s);
      this.startHeartbeat();
      this.stableTimer = setTimeout(() => {
        this.attempt = 0;
      }, this.o.stableMs);
      this.o.onReconnect?.();
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws) return;
      this.lastSeen = Date.now();
      let msg: ServerMessage;
      try {
        msg = JSON.parse(String(ev.data)) as ServerMessage;
      } catch {
        return; // Not ours to interpret; the contract says one JSON object per frame.
      }
      if (msg.type === 'authenticated') {
        this.authenticated = true;
        const priv = this.subs.get(subKey({ channel: 'orders' }));
        if (priv) this.sendSub(priv);
      }
      this.o.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.clearTimers();
      if (!this.stopped) this.scheduleReconnect();
    };
    // An error is always followed by close; reconnecting happens there, once.
    ws.onerror = () => undefined;
  }

  private scheduleReconnect(): void {
    this.attempt += 1;
    const delay = backoffDelay(this.attempt, this.o.baseDelayMs, this.o.maxDelayMs, this.o.random);
    this.o.onState('reconnecting', { attempt: this.attempt, retryInMs: delay });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private startHeartbeat(): void {
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastSeen > this.o.idleMs) {
        // Dead but not closed: drop it ourselves and let onclose-equivalent logic reconnect.
        const ws = this.ws;
        this.ws = null;
        this.clearTimers();
        ws?.close(4000, 'idle');
        if (!this.stopped) this.scheduleReconnect();
        return;
      }
      this.send({ op: 'ping' });
    }, this.o.pingMs);
  }

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.stableTimer = null;
  }
}

/** ws:// or wss:// URL of the market-data socket on this page's own origin. */
export function socketUrl(loc: Pick<Location, 'protocol' | 'host'> = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws/market-data`;
}
