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
  // Symmetric window around the mid, as wide as the nearer side reaches: one far-away order
  // must not squash the interesting part of the book into a sliver.
  const mid = b.length && a.length ? (b[0].x + a[0].x) / 2 : null;
  let minX: number;
  let maxX: number;
  if (mid !== null) {
    const reachB = mid - b[b.length - 1].x;
    const reachA = a[a.length - 1].x - mid;
    const half = Math.min(reachB, reachA) > 0 ? Math.min(reachB, reachA) : Math.max(reachB, reachA);
    minX = mid - half;
    maxX = mid + half;
  } else {
    const xs = [...b, ...a].map((d) => d.x);
    minX = Math.min(...xs);
    maxX = Math.max(...xs);
  }
  const inB = clip(b, minX, maxX);
  const inA = clip(a, minX, maxX);
  const maxY = Math.max(...[...inB, ...inA].map((d) => d.y), Number.MIN_VALUE);
  const sx = (x: number) => (maxX === minX ? W / 2 : ((x - minX) / (maxX - minX)) * W);
  const sy = (y: number) => H - PAD_B - (y / maxY) * (H - PAD_B - 6);

  // A step path from the best price outwards to the window's edge, closed down to the axis.
  const area = (pts: { x: number; y: number }[], edge: number): string => {
    if (!pts.length) return '';
    let d = `M${sx(pts[0].x)},${sy(0)}`;
    let prevY = 0;
    for (const pt of pts) {
      d += ` L${sx(pt.x)},${sy(prevY)} L${sx(pt.x)},${sy(pt.y)}`;
      prevY = pt.y;
    }
    d += ` L${sx(edge)},${sy(prevY)} L${sx(edge)},${sy(0)} Z`;
    return d;
  };
  return (
    <section className="panel depth" aria-labelledby="depth-title">
      <h2 id="depth-title">Depth</h2>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" className="depth-svg" role="img" aria-label="Cumulative bid and ask depth" data-testid="depth-chart">
        <path d={area(inB, minX)} className="depth-bid" data-testid="depth-bids" />
        <path d={area(inA, maxX)} className="depth-ask" data-testid="depth-asks" />
        {mid !== null && <line x1={sx(mid)} x2={sx(mid)} y1={0} y2={H - PAD_B} className="depth-mid" />}
      </svg>
      <div className="depth-axis mono small muted">
        <span>{fmt(minX.toFixed(p.price), p.price)}</span>
        {bids[0] && asks[0] && <span>{`${fmt(bids[0].p, p.price)} / ${fmt(asks[0].p, p.price)}`}</span>}
        <span>{fmt(maxX.toFixed(p.price), p.price)}</span>
      </div>
    </section>
  );
});

function clip(pts: { x: number; y: number }[], lo: number, hi: number): { x: number; y: number }[] {
  return pts.filter((p) => p.x >= lo && p.x <= hi);
}
