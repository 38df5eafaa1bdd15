// Public trades of the selected symbol, newest first, coloured by the taker's side.

import { useSymbolInfo, useTrading } from '../hooks/useStore';
import { fmt, fmtTime, precisionOf } from '../lib/format';

export function Tape() {
  const tape = useTrading((s) => s.tape);
  const p = precisionOf(useSymbolInfo());
  return (
    <section className="panel tape" aria-labelledby="tape-title">
      <h2 id="tape-title">Market trades</h2>
      {tape.length === 0 ? (
        <div className="empty">No trades yet</div>
      ) : (
        <div className="table-wrap scroll">
          <table className="grid-table compact" data-testid="tape">
            <thead>
              <tr>
                <th scope="col">Price</th>
                <th scope="col" className="num">Size</th>
                <th scope="col" className="num">Time</th>
              </tr>
            </thead>
            <tbody>
              {tape.map((t) => (
                <tr key={t.trade_id}>
                  <td className={`mono ${t.taker_side === 'BUY' ? 'up' : 'down'}`}>{fmt(t.price, p.price)}</td>
                  <td className="mono num">{fmt(t.quantity, p.qty)}</td>
                  <td className="mono num muted">{fmtTime(t.timestamp)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
