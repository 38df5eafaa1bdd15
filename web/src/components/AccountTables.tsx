// The user's balances, positions and trade history (own fills).

import { useTrading } from '../hooks/useStore';
import { isNegative, parseDec } from '../lib/decimal';
import { assetPlaces, fmt, fmtAtLeast, fmtDateTime, precisionOf } from '../lib/format';

export function Balances() {
  const balances = useTrading((s) => s.balances);
  const symbols = useTrading((s) => s.symbols);
  if (!balances.length) return <div className="empty">No balances</div>;
  return (
    <table className="grid-table compact" data-testid="balances">
      <thead>
        <tr>
          <th scope="col">Asset</th>
          <th scope="col" className="num">Available</th>
          <th scope="col" className="num">Reserved</th>
        </tr>
      </thead>
      <tbody>
        {balances.map((b) => {
          const places = assetPlaces(b.asset, symbols);
          return (
            <tr key={b.asset} data-asset={b.asset}>
              <td>{b.asset}</td>
              <td className="mono num" data-testid={`balance-${b.asset}`}>{fmtAtLeast(b.available, places)}</td>
              <td className="mono num muted">{fmtAtLeast(b.reserved, places)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

const pnlClass = (v: string | null) => {
  const d = v ? parseDec(v) : null;
  return d ? (isNegative(d) ? 'down' : d.units > 0n ? 'up' : '') : '';
};

export function Positions() {
  const positions = useTrading((s) => s.positions);
  const symbols = useTrading((s) => s.symbols);
  const open = positions.filter((x) => {
    const q = parseDec(x.quantity);
    return q && q.units !== 0n;
  });
  if (!open.length) return <div className="empty">No open positions</div>;
  return (
    <div className="table-wrap">
      <table className="grid-table" data-testid="positions">
        <thead>
          <tr>
            <th scope="col">Symbol</th>
            <th scope="col" className="num">Quantity</th>
            <th scope="col" className="num">Entry</th>
            <th scope="col" className="num">Mark</th>
            <th scope="col" className="num">Unrealised P&amp;L</th>
            <th scope="col" className="num">Realised P&amp;L</th>
          </tr>
        </thead>
        <tbody>
          {open.map((x) => {
            const p = precisionOf(symbols.find((s) => s.symbol === x.symbol));
            return (
              <tr key={x.symbol} data-symbol={x.symbol} data-testid="position-row">
                <td>{x.symbol}</td>
                <td className={`mono num ${pnlClass(x.quantity)}`}>{fmt(x.quantity, p.qty)}</td>
                <td className="mono num">{fmt(x.average_entry_price, p.price)}</td>
                <td className="mono num">{fmt(x.mark_price, p.price)}</td>
                <td className={`mono num ${pnlClass(x.unrealized_pnl)}`}>{fmt(x.unrealized_pnl, 2)}</td>
                <td className={`mono num ${pnlClass(x.realized_pnl)}`}>{fmt(x.realized_pnl, 2)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function TradeHistory() {
  const executions = useTrading((s) => s.executions);
  const symbols = useTrading((s) => s.symbols);
  if (!executions.length) return <div className="empty" data-testid="trade-history-empty">No trades yet</div>;
  return (
    <div className="table-wrap">
      <table className="grid-table" data-testid="trade-history">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Symbol</th>
            <th scope="col">Side</th>
            <th scope="col" className="num">Price</th>
            <th scope="col" className="num">Quantity</th>
            <th scope="col" className="num">Fee</th>
            <th scope="col">Role</th>
            <th scope="col">Order</th>
          </tr>
        </thead>
        <tbody>
          {executions.map((e) => {
            const p = precisionOf(symbols.find((s) => s.symbol === e.symbol));
            return (
              <tr key={e.execution_id} data-order-id={e.order_id} data-testid="execution-row">
                <td className="muted">{fmtDateTime(e.timestamp)}</td>
                <td>{e.symbol}</td>
                <td className={e.side === 'BUY' ? 'up' : 'down'}>{e.side}</td>
                <td className="mono num">{fmt(e.price, p.price)}</td>
                <td className="mono num">{fmt(e.quantity, p.qty)}</td>
                <td className="mono num muted">
                  {fmtAtLeast(e.fee, 2)} {e.fee_asset}
                </td>
                <td className="muted">{e.liquidity.toLowerCase()}</td>
                <td className="muted mono">{e.order_id}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
