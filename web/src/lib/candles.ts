// Candles for the chart: parsed from the REST answer and kept live from the trade stream.
//
// Contract: bars are ordered by time with unique times (lightweight-charts requires it); a
// trade inside the last bar updates it, a later trade opens a new bar aligned to the
// interval, an older trade (a late message) is ignored rather than rewriting history.
// Floats are fine here: the chart only draws, nothing computed here goes back to the server.

import type { Candle, CandleInterval } from './types';

export interface Bar {
  /** Bar open time, UNIX seconds. */
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export const INTERVAL_SECONDS: Record<CandleInterval, number> = { '1m': 60, '5m': 300, '1h': 3600 };

export function toBars(candles: Candle[]): Bar[] {
  const byTime = new Map<number, Bar>();
  for (const c of candles) {
    const time = Math.floor(Date.parse(c.open_time) / 1000);
    if (!Number.isFinite(time)) continue;
    byTime.set(time, {
      time,
      open: Number(c.open),
      high: Number(c.high),
      low: Number(c.low),
      close: Number(c.close),
      volume: Number(c.volume),
    });
  }
  return [...byTime.values()].sort((a, b) => a.time - b.time);
}

/** Returns a new array with the trade folded in (or the same array when it changes nothing). */
export function applyTrade(bars: Bar[], interval: CandleInterval, price: number, quantity: number, timestampMs: number): Bar[] {
  if (!Number.isFinite(price) || !Number.isFinite(timestampMs)) return bars;
  const step = INTERVAL_SECONDS[interval];
  const time = Math.floor(timestampMs / 1000 / step) * step;
  const last = bars[bars.length - 1];
  if (last && time < last.time) return bars;
  if (last && time === last.time) {
    const updated: Bar = {
      ...last,
      high: Math.max(last.high, price),
      low: Math.min(last.low, price),
      close: price,
      volume: last.volume + quantity,
    };
    return [...bars.slice(0, -1), updated];
  }
  return [...bars, { time, open: price, high: price, low: price, close: price, volume: quantity }];
}
