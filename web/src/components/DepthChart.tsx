// Depth chart: cumulative size on each side of the book as step areas, drawn in SVG (it
// scales with its box, works on a phone, and tests can read its paths). Floats are used
// for geometry only.

import { memo } from 'react';
import { useSymbolInfo, useTrading } from '../hooks/useStore';
import { toNumber } from '../lib/decimal';
import { fmt, precisionOf } from '../lib/format';
import { cumulative } from '../lib/orderbook';

const W = 600;
const H = 200;
const PAD_B = 18;

export const DepthChart = memo(function DepthChart() {
  const bids = useTrading((s) => s.bids);
  const asks = useTrading((s) => s.asks);
  const sym = useSymbolInfo();
  const p = precisionOf(sym);

  const b = cumulative(bids).map((d) => ({ x: toNumber(d.price), y: toNumber(d.total) }));
  const a = cumulative(asks).map((d) => ({ x: toNumber(d.price), y: toNumber(d.total) }));
  if (!b.length && !a.length) {
    return (
      <section className="panel depth" aria-labelledby="depth-title">
        <h2 id="depth-title">Depth</h2>
        <div className="empty">Waiting for the book…</div>
      </section>
    );
  }
  const xs = [...b, ...a].map((d) => d.x);
  const minX = Math.min(...xs);
  const maxX = Math.max(...xs);
  const maxY = Math.max(...[...b, ...a].map((d) => d.y), Number.MIN_VALUE);
  const sx = (x: number) => (maxX === minX ? W / 2 : ((x - minX) / (maxX - minX)) * W);
  const sy = (y: number) => H - PAD_B - (y / maxY) * (H - PAD_B - 6);

  // A step path from the best price outwards, closed down to the axis.
  const area = (pts: { x: number; y: number }[]): string => {
    if (!pts.length) return '';
    let d = `M${sx(pts[0].x)},${sy(0)}`;
    let prevY = 0;
    for (const pt of pts) {
      d += ` L${sx(pt.x)},${sy(prevY)} L${sx(pt.x)},${sy(pt.y)}`;
      prevY = pt.y;
    }
    d += ` L${sx(pts[pts.length - 1].x)},${sy(0)} Z`;
    return d;
  };
  const mid = b.length && a.length ? (b[0].x + a[0].x) / 2 : null;

  return (
    <section className="panel depth" aria-labelledby="depth-title">
      <h2 id="depth-title">Depth</h2>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" className="depth-svg" role="img" aria-label="Cumulative bid and ask depth" data-testid="depth-chart">
        <path d={area(b)} className="depth-bid" data-testid="depth-bids" />
        <path d={area(a)} className="depth-ask" data-testid="depth-asks" />
        {mid !== null && <line x1={sx(mid)} x2={sx(mid)} y1={0} y2={H - PAD_B} className="depth-mid" />}
      </svg>
      <div className="depth-axis mono small muted">
        <span>{fmt(String(minX), p.price)}</span>
        {bids[0] && asks[0] && <span>{`${fmt(bids[0].p, p.price)} / ${fmt(asks[0].p, p.price)}`}</span>}
        <span>{fmt(String(maxX), p.price)}</span>
      </div>
    </section>
  );
});
