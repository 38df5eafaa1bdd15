// Local replica of one symbol's order book, kept in step with the server's sequence.
//
// Contract (docs/api.md, WebSocket): a book_snapshot sets the book and its sequence; every
// book_diff must carry exactly sequence + 1 and sets absolute level quantities ("0" removes
// the level). Anything else is a gap: the replica refuses the diff, marks itself stale and
// the caller must resubscribe to get a fresh snapshot. Diffs are never applied on top of a
// book that may be wrong, because a trader would act on prices that do not exist.

import { add, cmp, dec, isZero, toString, type Dec } from './decimal';
import type { BookSnapshot, Level } from './types';

export interface BookLevel {
  price: string;
  quantity: string;
  /** Parsed price, for sorting and arithmetic. */
  p: Dec;
  q: Dec;
}

export type DiffResult = 'applied' | 'stale' | 'gap';

export class OrderBook {
  readonly symbol: string;
  private bids = new Map<string, BookLevel>();
  private asks = new Map<string, BookLevel>();
  private seq: number | null = null;

  constructor(symbol: string) {
    this.symbol = symbol;
  }

  /** Sequence of the last applied message; null before the first snapshot or after a gap. */
  get sequence(): number | null {
    return this.seq;
  }

  get ready(): boolean {
    return this.seq !== null;
  }

  applySnapshot(s: BookSnapshot): void {
    this.bids = toMap(s.bids);
    this.asks = toMap(s.asks);
    this.seq = s.sequence;
  }

  /**
   * Applies one diff. 'stale' = an old message (sequence already seen, e.g. a diff that raced
   * the snapshot), ignored; 'gap' = a message is missing, the book is cleared and must be
   * re-snapshotted.
   */
  applyDiff(d: BookSnapshot): DiffResult {
    if (this.seq === null) return 'gap';
    if (d.sequence <= this.seq) return 'stale';
    if (d.sequence !== this.seq + 1) {
      this.reset();
      return 'gap';
    }
    setLevels(this.bids, d.bids);
    setLevels(this.asks, d.asks);
    this.seq = d.sequence;
    return 'applied';
  }

  reset(): void {
    this.bids.clear();
    this.asks.clear();
    this.seq = null;
  }

  /** Bids best (highest) first. */
  bidLevels(depth = Infinity): BookLevel[] {
    return [...this.bids.values()].sort((a, b) => cmp(b.p, a.p)).slice(0, depth);
  }

  /** Asks best (lowest) first. */
  askLevels(depth = Infinity): BookLevel[] {
    return [...this.asks.values()].sort((a, b) => cmp(a.p, b.p)).slice(0, depth);
  }

  bestBid(): BookLevel | null {
    return this.bidLevels(1)[0] ?? null;
  }

  bestAsk(): BookLevel | null {
    return this.askLevels(1)[0] ?? null;
  }
}

function toMap(levels: Level[]): Map<string, BookLevel> {
  const m = new Map<string, BookLevel>();
  setLevels(m, levels);
  return m;
}

function setLevels(m: Map<string, BookLevel>, levels: Level[]): void {
  for (const [price, quantity] of levels) {
    const p = dec(price);
    const q = dec(quantity);
    // Keyed by the canonical form so "100.10" and "100.1" are the same level.
    const key = toString(p);
    if (isZero(q)) m.delete(key);
    else m.set(key, { price, quantity, p, q });
  }
}

export interface DepthPoint {
  price: Dec;
  /** Cumulative quantity from the best price up to and including this level. */
  total: Dec;
}

/** Cumulative depth from the best level outwards, for the depth chart and the book's bars. */
export function cumulative(levels: BookLevel[]): DepthPoint[] {
  let total: Dec = { units: 0n, scale: 0 };
  return levels.map((l) => {
    total = add(total, l.q);
    return { price: l.p, total };
  });
}
