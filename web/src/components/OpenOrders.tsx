// The user's open orders, all symbols, with cancel and amend. Amend edits price and/or
// total quantity in place; only changed values are sent (the server keeps time priority
// when just the quantity shrinks, so an unchanged price must not be re-sent as a change).

import { useState, type FormEvent } from 'react';
import { useStore, useTrading } from '../hooks/useStore';
import { ApiError } from '../lib/api';
import { cmp, isMultipleOf, isPositive, parseDec } from '../lib/decimal';
import { fmt, fmtDateTime, precisionOf } from '../lib/format';
import type { Order, SymbolInfo } from '../lib/types';

export function OpenOrders() {
  const store = useStore();
  const orders = useTrading((s) => s.openOrders);
  const symbols = useTrading((s) => s.symbols);
  const [editing, setEditing] = useState<string | null>(null);
  const [rowError, setRowError] = useState<{ id: string; text: string } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const cancel = async (o: Order) => {
    setBusy(o.order_id);
    setRowError(null);
    try {
      await store.cancelOrder(o.order_id);
    } catch (e) {
      setRowError({ id: o.order_id, text: e instanceof Error ? e.message : String(e) });
    } finally {
      setBusy(null);
    }
  };

  if (!orders.length) return <div className="empty" data-testid="open-orders-empty">No open orders</div>;

  return (
    <div className="table-wrap">
      <table className="grid-table" data-testid="open-orders">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Symbol</th>
            <th scope="col">Side</th>
            <th scope="col">Type</th>
            <th scope="col" className="num">Price</th>
            <th scope="col" className="num">Quantity</th>
            <th scope="col" className="num">Filled</th>
            <th scope="col">Status</th>
            <th scope="col"><span className="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {orders.map((o) => {
            const sym = symbols.find((s) => s.symbol === o.symbol);
            const p = precisionOf(sym);
            if (editing === o.order_id && sym) {
              return <AmendRow key={o.order_id} order={o} sym={sym} onDone={() => setEditing(null)} />;
            }
            return (
              <tr key={o.order_id} data-order-id={o.order_id} data-testid="open-order-row">
                <td className="muted">{fmtDateTime(o.created_at)}</td>
                <td>{o.symbol}</td>
                <td className={o.side === 'BUY' ? 'up' : 'down'}>{o.side}</td>
                <td>
                  {o.type.replace('_', ' ')}
                  {o.post_only ? ' · PO' : ''}
                  {o.stop_price ? ` @ ${fmt(o.stop_price, p.price)}` : ''}
                </td>
                <td className="mono num">{o.price ? fmt(o.price, p.price) : 'market'}</td>
                <td className="mono num">{fmt(o.quantity, p.qty)}</td>
                <td className="mono num">{fmt(o.filled_quantity, p.qty)}</td>
                <td>
                  <span className="status">{o.status.replace('_', ' ')}</span>
                  {o.stop_price !== null && o.triggered === false && (
                    <span className="muted small" data-testid="untriggered">
                      {' '}
                      · waiting for stop
                    </span>
                  )}
                  {rowError?.id === o.order_id && (
                    <span className="field-error inline" role="alert">
                      {rowError.text}
                    </span>
                  )}
                </td>
                <td className="actions">
                  <button type="button" className="btn-small" onClick={() => setEditing(o.order_id)} disabled={!sym || busy === o.order_id} aria-label={`Amend order ${o.order_id}`}>
                    Amend
                  </button>
                  <button type="button" className="btn-small danger" onClick={() => void cancel(o)} disabled={busy === o.order_id} aria-label={`Cancel order ${o.order_id}`}>
                    {busy === o.order_id ? '…' : 'Cancel'}
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {orders.length > 1 && (
        <p className="cancel-all">
          <button
            type="button"
            className="btn-link"
            onClick={() => {
              setRowError(null);
              store.cancelAll().catch((e: unknown) => setRowError({ id: '*', text: e instanceof Error ? e.message : String(e) }));
            }}
          >
            Cancel all
          </button>
          {rowError?.id === '*' && (
            <span className="field-error inline" role="alert">
              {rowError.text}
            </span>
          )}
        </p>
      )}
    </div>
  );
}

function AmendRow({ order, sym, onDone }: { order: Order; sym: SymbolInfo; onDone: () => void }) {
  const store = useStore();
  const [price, setPrice] = useState(order.price ?? '');
  const [quantity, setQuantity] = useState(order.quantity);
  const [error, setError] = useState<{ field: 'price' | 'quantity' | 'form'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const change: { price?: string; quantity?: string } = {};
    const pd = parseDec(price);
    const qd = parseDec(quantity);
    if (order.price !== null) {
      if (!pd || !isPositive(pd)) return setError({ field: 'price', text: 'Price must be a positive number' });
      if (!isMultipleOf(pd, parseDec(sym.tick_size)!)) return setError({ field: 'price', text: `Not on the tick ${sym.tick_size}` });
      if (cmp(pd, parseDec(order.price)!) !== 0) change.price = price.trim();
    }
    if (!qd || !isPositive(qd)) return setError({ field: 'quantity', text: 'Quantity must be a positive number' });
    if (!isMultipleOf(qd, parseDec(sym.lot_size)!)) return setError({ field: 'quantity', text: `Not on the lot ${sym.lot_size}` });
    if (cmp(qd, parseDec(order.filled_quantity)!) <= 0) return setError({ field: 'quantity', text: 'Must exceed the filled quantity' });
    if (cmp(qd, parseDec(order.quantity)!) !== 0) change.quantity = quantity.trim();
    if (!change.price && !change.quantity) return onDone();
    setBusy(true);
    try {
      await store.amendOrder(order.order_id, change);
      onDone();
    } catch (err) {
      if (err instanceof ApiError) {
        const f = err.field === 'price' || err.field === 'quantity' ? err.field : 'form';
        setError({ field: f, text: err.message });
      } else setError({ field: 'form', text: String(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <tr className="amend-row" data-order-id={order.order_id} data-testid="amend-row">
      <td colSpan={9}>
        <form className="amend" onSubmit={submit} noValidate>
          <span>
            Amend {order.side} {order.symbol} #{order.order_id}
          </span>
          {order.price !== null && (
            <label>
              Price
              <input aria-label="New price" value={price} onChange={(e) => setPrice(e.target.value)} inputMode="decimal" aria-invalid={error?.field === 'price' || undefined} />
            </label>
          )}
          <label>
            Quantity
            <input aria-label="New quantity" value={quantity} onChange={(e) => setQuantity(e.target.value)} inputMode="decimal" aria-invalid={error?.field === 'quantity' || undefined} />
          </label>
          <button type="submit" className="btn-small" disabled={busy}>
            Save
          </button>
          <button type="button" className="btn-small" onClick={onDone}>
            Keep
          </button>
          {error && (
            <span className="field-error inline" role="alert">
              {error.text}
            </span>
          )}
        </form>
      </td>
    </tr>
  );
}
