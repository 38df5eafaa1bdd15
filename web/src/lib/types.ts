// Wire types of the QuantTrader API (docs/api.md). Every price, quantity and amount is a
// decimal string and stays one until it is parsed by lib/decimal: a float never touches money.

export type Side = 'BUY' | 'SELL';
export type OrderType = 'LIMIT' | 'MARKET' | 'STOP' | 'STOP_LIMIT';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK';
export type OrderStatus =
  | 'NEW'
  | 'ACCEPTED'
  | 'PARTIALLY_FILLED'
  | 'FILLED'
  | 'SETTLED'
  | 'REJECTED'
  | 'CANCELLED'
  | 'EXPIRED';

/** Statuses after which an order can no longer trade, be cancelled or amended. */
export const FINAL_STATUSES: ReadonlySet<OrderStatus> = new Set([
  'FILLED',
  'SETTLED',
  'REJECTED',
  'CANCELLED',
  'EXPIRED',
]);

export const isOpen = (status: OrderStatus): boolean => !FINAL_STATUSES.has(status);

export interface SymbolInfo {
  symbol: string;
  base_asset: string;
  quote_asset: string;
  tick_size: string;
  lot_size: string;
  min_quantity: string;
  max_quantity: string;
  min_notional: string;
  price_band_bps: number;
  status: string;
  /** Display places the server recommends (added by the server; derived from the grid when absent). */
  price_decimals?: number;
  quantity_decimals?: number;
}

export interface ApiErrorBody {
  code: string;
  message: string;
  field: string | null;
}

export interface NewOrder {
  symbol: string;
  side: Side;
  type: OrderType;
  quantity: string;
  price: string | null;
  stop_price: string | null;
  time_in_force: TimeInForce;
  post_only: boolean;
  client_order_id: string;
}

export interface Execution {
  execution_id: string;
  order_id: string;
  symbol: string;
  side: Side;
  price: string;
  quantity: string;
  fee: string;
  fee_asset: string;
  liquidity: 'MAKER' | 'TAKER';
  timestamp: string;
  trade_id?: string;
}

export interface Order {
  order_id: string;
  client_order_id: string | null;
  symbol: string;
  side: Side;
  type: OrderType;
  status: OrderStatus;
  price: string | null;
  stop_price: string | null;
  quantity: string;
  filled_quantity: string;
  remaining_quantity: string;
  average_price: string | null;
  time_in_force: TimeInForce;
  post_only: boolean;
  reject_reason: string | null;
  /** Server additions (docs/api.md allows added fields): total fees so far, stop state, why it ended. */
  fees?: string;
  stp_mode?: string;
  triggered?: boolean;
  cancel_reason?: string | null;
  created_at: string;
  updated_at: string;
  fills?: Execution[];
}

export interface Balance {
  asset: string;
  available: string;
  reserved: string;
}

export interface Position {
  symbol: string;
  quantity: string;
  average_entry_price: string | null;
  realized_pnl: string | null;
  unrealized_pnl: string | null;
  mark_price: string | null;
}

/** A price level on the wire: [price, quantity]. */
export type Level = [string, string];

export interface BookSnapshot {
  symbol: string;
  sequence: number;
  bids: Level[];
  asks: Level[];
}

export interface Ticker {
  symbol: string;
  last: string | null;
  best_bid: string | null;
  best_ask: string | null;
  high_24h: string | null;
  low_24h: string | null;
  volume_24h: string | null;
  change_24h: string | null;
  timestamp: string | null;
  /** Server additions; optional so a server without them still works. */
  best_bid_quantity?: string | null;
  best_ask_quantity?: string | null;
  open_24h?: string | null;
  quote_volume_24h?: string | null;
  change_24h_percent?: string | null;
}

export interface PublicTrade {
  trade_id: string;
  price: string;
  quantity: string;
  taker_side: Side;
  timestamp: string;
}

export type CandleInterval = '1m' | '5m' | '1h';

export interface Candle {
  open_time: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
}

/** Server -> client WebSocket messages. */
export type ServerMessage =
  | { type: 'subscribed' | 'unsubscribed'; channel: string; symbol?: string }
  | ({ type: 'book_snapshot' } & BookSnapshot)
  | ({ type: 'book_diff' } & BookSnapshot)
  | ({ type: 'trade'; symbol: string } & PublicTrade)
  | ({ type: 'ticker' } & Ticker)
  | { type: 'authenticated'; user_id: string }
  | { type: 'order'; order: Order }
  | { type: 'fill'; fill: Execution }
  | { type: 'error'; error: ApiErrorBody }
  | { type: 'pong' };
