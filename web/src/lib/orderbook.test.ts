import { toString } from './decimal';
import { cumulative, OrderBook } from './orderbook';

const snap = (sequence: number) => ({
  symbol: 'BTC-USD',
  sequence,
  bids: [['99.00', '1'], ['100.00', '2']] as [string, string][],
  asks: [['102.00', '1'], ['101.00', '3']] as [string, string][],
});

describe('OrderBook', () => {
  it('sorts bids descending and asks ascending', () => {
    const b = new OrderBook('BTC-USD');
    b.applySnapshot(snap(10));
    expect(b.bidLevels().map((l) => l.price)).toEqual(['100.00', '99.00']);
    expect(b.askLevels().map((l) => l.price)).toEqual(['101.00', '102.00']);
    expect(b.bestBid()?.price).toBe('100.00');
    expect(b.bestAsk()?.price).toBe('101.00');
  });

  it('applies consecutive diffs with absolute quantities; "0" removes a level', () => {
    const b = new OrderBook('BTC-USD');
    b.applySnapshot(snap(10));
    expect(b.applyDiff({ symbol: 'BTC-USD', sequence: 11, bids: [['100.00', '5'], ['99.50', '1']], asks: [['101.00', '0']] })).toBe('applied');
    expect(b.bidLevels().map((l) => [l.price, l.quantity])).toEqual([['100.00', '5'], ['99.50', '1'], ['99.00', '1']]);
    expect(b.askLevels().map((l) => l.price)).toEqual(['102.00']);
    expect(b.sequence).toBe(11);
  });

  it('treats differently written prices as one level', () => {
    const b = new OrderBook('BTC-USD');
    b.applySnapshot(snap(1));
    b.applyDiff({ symbol: 'BTC-USD', sequence: 2, bids: [['100.0', '0']], asks: [] });
    expect(b.bidLevels().map((l) => l.price)).toEqual(['99.00']);
  });

  it('ignores stale diffs and refuses gaps, clearing the book', () => {
    const b = new OrderBook('BTC-USD');
    b.applySnapshot(snap(10));
    expect(b.applyDiff({ symbol: 'BTC-USD', sequence: 10, bids: [['100.00', '9']], asks: [] })).toBe('stale');
    expect(b.bestBid()?.quantity).toBe('2');
    expect(b.applyDiff({ symbol: 'BTC-USD', sequence: 12, bids: [], asks: [] })).toBe('gap');
    expect(b.ready).toBe(false);
    expect(b.bidLevels()).toEqual([]);
    // Until a new snapshot, everything is a gap.
    expect(b.applyDiff({ symbol: 'BTC-USD', sequence: 13, bids: [], asks: [] })).toBe('gap');
    b.applySnapshot(snap(20));
    expect(b.applyDiff({ symbol: 'BTC-USD', sequence: 21, bids: [], asks: [] })).toBe('applied');
  });

  it('computes cumulative depth exactly', () => {
    const b = new OrderBook('BTC-USD');
    b.applySnapshot({ symbol: 'X', sequence: 1, bids: [['1', '0.1'], ['0.9', '0.2']], asks: [] });
    expect(cumulative(b.bidLevels()).map((d) => toString(d.total))).toEqual(['0.1', '0.3']);
  });
});
