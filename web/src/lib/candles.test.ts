import { applyTrade, toBars } from './candles';

describe('candles', () => {
  const bars = toBars([
    { open_time: '2026-11-25T10:01:00Z', open: '2', high: '3', low: '1', close: '2.5', volume: '4' },
    { open_time: '2026-11-25T10:00:00Z', open: '1', high: '2', low: '1', close: '2', volume: '1' },
  ]);

  it('orders bars by time in UNIX seconds', () => {
    expect(bars.map((b) => b.time)).toEqual([Date.parse('2026-11-25T10:00:00Z') / 1000, Date.parse('2026-11-25T10:01:00Z') / 1000]);
  });

  it('folds a trade into the current bar', () => {
    const next = applyTrade(bars, '1m', 3.5, 2, Date.parse('2026-11-25T10:01:30Z'));
    expect(next[1]).toMatchObject({ open: 2, high: 3.5, low: 1, close: 3.5, volume: 6 });
    expect(next).toHaveLength(2);
  });

  it('opens a new aligned bar and ignores late trades', () => {
    const next = applyTrade(bars, '1m', 2.2, 1, Date.parse('2026-11-25T10:02:59Z'));
    expect(next[2]).toEqual({ time: Date.parse('2026-11-25T10:02:00Z') / 1000, open: 2.2, high: 2.2, low: 2.2, close: 2.2, volume: 1 });
    expect(applyTrade(bars, '1m', 9, 1, Date.parse('2026-11-25T09:59:00Z'))).toBe(bars);
  });
});
