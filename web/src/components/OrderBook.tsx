// Live order book: asks above (best at the bottom), spread, bids below (best at the top).
// Each row's bar is the cumulative depth, so the book reads as a depth profile too. Clicking
// a price hands it to the order ticket.

import { memo } from 'react';
import { useSymbolInfo, useTrading } from '../hooks/useStore';
import { sub, toNumber, type Dec } from '../lib/decimal';
import { fmt, precisionOf } from '../lib/format';
import { cumulative, type BookLevel } from '../lib/orderbook';

const ROWS = 12;

interface Props {
  onPickPrice?: (price: string) => void;
}

export const OrderBookPanel = memo(function OrderBookPanel({ onPickPrice }: Props) {
  const bids = useTrading((s) => s.bids);
  const asks = useTrading((s) => s.asks);
  const status = useTrading((s) => s.bookStatus);
  const sequence = useTrading((s) => s.bookSequence);
  const sym = useSymbolInfo();
  const p = precisionOf(sym);

  const topBids = bids.slice(0, ROWS);
  const topAsks = asks.slice(0, ROWS);
  const bidDepth = cumulative(topBids);
  const askDepth = cumulative(topAsks);
  const maxTotal = Math.max(
    bidDepth.length ? toNumber(bidDepth[bidDepth.length - 1].total) : 0,
    askDepth.length ? toNumber(askDepth[askDepth.length - 1].total) : 0,
    Number.MIN_VALUE,
  );
  const spread: Dec | null = topBids[0] && topAsks[0] ? sub(topAsks[0].p, topBids[0].p) : null;

  const row = (l: BookLevel, total: Dec, side: 'bid' | 'ask') => (
    <tr
      key={l.price}
      className={`book-row ${side}`}
      data-price={l.price}
      onClick={() => onPickPrice?.(l.price)}
      style={{ ['--depth' as string]: `${Math.min(100, (toNumber(total) / maxTotal) * 100).toFixed(1)}%` }}
    >
      <td className="mono price">{fmt(l.p, p.price)}</td>
      <td className="mono num">{fmt(l.q, p.qty)}</td>
      <td className="mono num muted">{fmt(total, p.qty)}</td>
    </tr>
  );

  return (
    <section className="panel book" aria-labelledby="book-title" data-testid="order-book" data-status={status} data-sequence={sequence ?? ''}>
      <div className="panel-head">
        <h2 id="book-title">Order book</h2>
        <span className="muted small" title="Sequence of the last applied update">
          {status === 'live' ? `seq ${sequence}` : status === 'resyncing' ? 'resyncing…' : 'loading…'}
        </span>
      </div>
      <table className="book-table">
        <thead>
          <tr>
            <th scope="col">Price</th>
            <th scope="col" className="num">Size</th>
            <th scope="col" className="num">Total</th>
          </tr>
        </thead>
        <tbody data-testid="asks">
          {[...topAsks]
            .map((l, i) => ({ l, total: askDepth[i].total }))
            .reverse()
            .map(({ l, total }) => row(l, total, 'ask'))}
        </tbody>
        <tbody>
          <tr className="spread-row">
            <td colSpan={3} className="mono">
              {spread ? `Spread ${fmt(spread, p.price)}` : status === 'live' ? 'No two-sided market' : '—'}
            </td>
          </tr>
        </tbody>
        <tbody data-testid="bids">{topBids.map((l, i) => row(l, bidDepth[i].total, 'bid'))}</tbody>
      </table>
    </section>
  );
});
