// Candles with volume, drawn by lightweight-charts. The chart is created once per mount and
// fed with setData on a symbol/interval change and update() for the live last bar, which is
// what the library is built for (a full setData per trade would redraw everything).

import { useEffect, useRef } from 'react';
import {
  CandlestickSeries,
  ColorType,
  createChart,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from 'lightweight-charts';
import { useStore, useSymbolInfo, useTrading } from '../hooks/useStore';
import type { Bar } from '../lib/candles';
import { precisionOf } from '../lib/format';
import type { CandleInterval } from '../lib/types';

const INTERVALS: CandleInterval[] = ['1m', '5m', '1h'];
const UP = '#26a69a';
/** Pixels per bar after a symbol/interval change: readable candles whatever the history length. */
const BAR_PX = 8;
const DOWN = '#ef5350';

export function PriceChart() {
  const store = useStore();
  const bars = useTrading((s) => s.bars);
  const interval = useTrading((s) => s.interval);
  const symbol = useTrading((s) => s.symbol);
  const sym = useSymbolInfo();
  const boxRef = useRef<HTMLDivElement>(null);
  const chartRef = useRef<{ chart: IChartApi; candles: ISeriesApi<'Candlestick'>; volume: ISeriesApi<'Histogram'> } | null>(null);
  const shownRef = useRef<{ key: string; count: number; last: Bar | null }>({ key: '', count: 0, last: null });

  useEffect(() => {
    const box = boxRef.current;
    if (!box) return;
    const chart = createChart(box, {
      autoSize: true,
      // The library's Apache-2.0 NOTICE asks for TradingView attribution: keep its logo on.
      layout: { background: { type: ColorType.Solid, color: 'transparent' }, textColor: '#8b949e' },
      grid: { vertLines: { color: '#1c2230' }, horzLines: { color: '#1c2230' } },
      rightPriceScale: { borderColor: '#262d3b' },
      timeScale: { borderColor: '#262d3b', timeVisible: true, secondsVisible: false },
      crosshair: { mode: 0 },
    });
    const candles = chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    // No last-value label or price line for volume: they would sit on the price axis and read as a price.
    const volume = chart.addSeries(HistogramSeries, { priceScaleId: '', priceFormat: { type: 'volume' }, lastValueVisible: false, priceLineVisible: false });
    // Volume in the bottom fifth, under the candles.
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } });
    chartRef.current = { chart, candles, volume };
    shownRef.current = { key: '', count: 0, last: null };
    return () => {
      chartRef.current = null;
      chart.remove();
    };
  }, []);

  useEffect(() => {
    const c = chartRef.current;
    if (!c || !sym) return;
    const places = precisionOf(sym).price;
    c.candles.applyOptions({ priceFormat: { type: 'price', precision: places, minMove: Number(sym.tick_size) } });
  }, [sym]);

  useEffect(() => {
    const c = chartRef.current;
    if (!c) return;
    const key = `${symbol}|${interval}`;
    const shown = shownRef.current;
    const last = bars[bars.length - 1] ?? null;
    const toCandle = (b: Bar) => ({ time: b.time as UTCTimestamp, open: b.open, high: b.high, low: b.low, close: b.close });
    const toVol = (b: Bar) => ({ time: b.time as UTCTimestamp, value: b.volume, color: b.close >= b.open ? `${UP}66` : `${DOWN}66` });
    // Live trades only touch the last bar or append one: update() those (the previous last
    // bar too, its final trades may have come in the same batch). Anything else is new history.
    const live =
      shown.key === key &&
      shown.last !== null &&
      bars.length >= shown.count &&
      bars.length - shown.count <= 1 &&
      bars[shown.count - 1]?.time === shown.last.time;
    if (live) {
      for (let i = shown.count - 1; i < bars.length; i++) {
        c.candles.update(toCandle(bars[i]));
        c.volume.update(toVol(bars[i]));
      }
    } else {
      c.candles.setData(bars.map(toCandle));
      c.volume.setData(bars.map(toVol));
      // A fixed window ending at the newest bar rather than fitContent: one fresh candle would
      // otherwise fill the whole width, and a long history would be squeezed to hairlines.
      if (shown.key !== key || shown.count === 0) {
        // Sized to the box (a phone shows fewer bars), with room right of the newest bar for its time label.
        const visible = Math.max(20, Math.floor((boxRef.current?.clientWidth ?? 640) / BAR_PX));
        c.chart.timeScale().setVisibleLogicalRange({ from: bars.length - visible, to: bars.length + 3 });
      }
    }
    shownRef.current = { key, count: bars.length, last };
  }, [bars, symbol, interval]);

  return (
    <section className="panel chart" aria-labelledby="chart-title">
      <div className="panel-head">
        <h2 id="chart-title">{symbol ?? 'Chart'}</h2>
        <div className="seg" role="group" aria-label="Candle interval">
          {INTERVALS.map((i) => (
            <button key={i} type="button" className={i === interval ? 'on' : ''} aria-pressed={i === interval} onClick={() => store.setInterval(i)}>
              {i}
            </button>
          ))}
        </div>
      </div>
      <div ref={boxRef} className="chart-box" data-testid="price-chart" data-bars={bars.length} />
    </section>
  );
}
