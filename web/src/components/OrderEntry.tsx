// Order ticket: limit, market, stop and stop-limit; buy/sell; time in force; post-only.
// Inputs are validated on the symbol's tick/lot grid before anything is sent; the server's
// answer (its error code and field) is shown next to the input it concerns.
//
// A submission that failed on the network is retried with the same Idempotency-Key and
// client order id as long as the ticket is unchanged, so "click again" can never place
// the order twice.

import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useStore, useSymbolInfo, useTrading } from '../hooks/useStore';
import { ApiError, randomId } from '../lib/api';
import { fmt, precisionOf } from '../lib/format';
import type { OrderType, Side, TimeInForce } from '../lib/types';
import { effectiveTif, fieldForError, needsPrice, needsStop, tifChoices, validateOrder, type FieldErrors, type OrderForm } from '../lib/validate';

interface Props {
  /** A price clicked in the book; `n` changes on each click so the same price can be picked twice. */
  picked?: { price: string; n: number } | null;
}

const TYPES: { value: OrderType; label: string }[] = [
  { value: 'LIMIT', label: 'Limit' },
  { value: 'MARKET', label: 'Market' },
  { value: 'STOP', label: 'Stop' },
  { value: 'STOP_LIMIT', label: 'Stop limit' },
];

const TIF_HELP: Record<TimeInForce, string> = {
  GTC: 'Good till cancelled: rests on the book',
  IOC: 'Immediate or cancel: the rest is cancelled',
  FOK: 'Fill or kill: all at once or nothing',
};

export function OrderEntry({ picked }: Props) {
  const store = useStore();
  const sym = useSymbolInfo();
  const balances = useTrading((s) => s.balances);
  const id = useId();
  const [form, setForm] = useState<OrderForm>({
    side: 'BUY',
    type: 'LIMIT',
    price: '',
    stopPrice: '',
    quantity: '',
    timeInForce: 'GTC',
    postOnly: false,
  });
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<string | null>(null);
  const retry = useRef<{ form: string; key: string; clientId: string } | null>(null);

  useEffect(() => {
    if (picked) setForm((f) => ({ ...f, price: picked.price }));
  }, [picked]);
  useEffect(() => {
    // A new symbol has another grid: stale prices would be wildly wrong.
    setForm((f) => ({ ...f, price: '', stopPrice: '', quantity: '' }));
    setErrors({});
    setResult(null);
  }, [sym?.symbol]);

  if (!sym) return <section className="panel entry"><div className="empty">Loading symbols…</div></section>;
  const p = precisionOf(sym);

  const update = (patch: Partial<OrderForm>) => {
    setForm((f) => ({ ...f, ...patch }));
    // Clear only the errors of what changed, the others still hold.
    setErrors((e) => {
      const next = { ...e };
      if ('price' in patch) delete next.price;
      if ('stopPrice' in patch) delete next.stop_price;
      if ('quantity' in patch) delete next.quantity;
      if ('timeInForce' in patch || 'type' in patch || 'postOnly' in patch) delete next.time_in_force;
      delete next.form;
      return next;
    });
    setResult(null);
  };

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setResult(null);
    const snapshot = JSON.stringify({ ...form, symbol: sym.symbol });
    const again = retry.current?.form === snapshot ? retry.current : null;
    const clientId = again?.clientId ?? `web-${randomId().slice(0, 20)}`;
    const key = again?.key ?? randomId();
    const v = validateOrder(form, sym, clientId);
    if (!v.ok) {
      setErrors(v.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const order = await store.placeOrder(v.order, key);
      retry.current = null;
      setResult(`Order ${order.order_id} ${order.status.toLowerCase().replace('_', ' ')}`);
      setForm((f) => ({ ...f, quantity: '' }));
    } catch (e) {
      if (e instanceof ApiError) {
        retry.current = e.code === 'NETWORK_ERROR' || e.status >= 500 ? { form: snapshot, key, clientId } : null;
        const field = fieldForError(e.code, e.field);
        // A 429 says when to come back (Retry-After): tell the trader rather than let them hammer.
        const wait = e.retryAfter !== null ? ` Try again in ${e.retryAfter} s.` : '';
        setErrors({ [field]: (field === 'form' ? `${e.message} (${e.code})` : e.message) + wait });
      } else {
        setErrors({ form: String(e) });
      }
    } finally {
      setBusy(false);
    }
  };

  const base = balances.find((b) => b.asset === sym.base_asset);
  const quote = balances.find((b) => b.asset === sym.quote_asset);
  const avail = form.side === 'BUY' ? quote : base;
  const availAsset = form.side === 'BUY' ? sym.quote_asset : sym.base_asset;
  const err = (f: keyof FieldErrors) =>
    errors[f] ? (
      <p className="field-error" id={`${id}-${f}-err`} role="alert" data-testid={`error-${f}`}>
        {errors[f]}
      </p>
    ) : null;
  const described = (f: keyof FieldErrors) => (errors[f] ? { 'aria-invalid': true, 'aria-describedby': `${id}-${f}-err` } : {});

  return (
    <section className="panel entry" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Place order</h2>
      <form onSubmit={submit} noValidate data-testid="order-form">
        <div className="side-toggle" role="radiogroup" aria-label="Side">
          {(['BUY', 'SELL'] as Side[]).map((s) => (
            <button
              key={s}
              type="button"
              role="radio"
              aria-checked={form.side === s}
              className={`${s === 'BUY' ? 'buy' : 'sell'} ${form.side === s ? 'on' : ''}`}
              onClick={() => update({ side: s })}
            >
              {s === 'BUY' ? 'Buy' : 'Sell'}
            </button>
          ))}
        </div>
        <div className="row2">
          <label>
            Type
            <select value={form.type} onChange={(e) => update({ type: e.target.value as OrderType })}>
              {TYPES.map((t) => (
                <option key={t.value} value={t.value}>
                  {t.label}
                </option>
              ))}
            </select>
          </label>
          <label>
            Time in force
            <select
              value={effectiveTif(form.type, form.timeInForce)}
              onChange={(e) => update({ timeInForce: e.target.value as TimeInForce })}
              {...described('time_in_force')}
            >
              {tifChoices(form.type).map((t) => (
                <option key={t} value={t} title={TIF_HELP[t]}>
                  {t}
                </option>
              ))}
            </select>
          </label>
        </div>
        {err('time_in_force')}
        {needsStop(form.type) && (
          <div className="field">
            <label htmlFor={`${id}-stop`}>Stop price</label>
            <div className="input-unit">
              <input id={`${id}-stop`} inputMode="decimal" autoComplete="off" value={form.stopPrice} placeholder={sym.tick_size} onChange={(e) => update({ stopPrice: e.target.value })} {...described('stop_price')} />
              <span>{sym.quote_asset}</span>
            </div>
            {err('stop_price')}
          </div>
        )}
        {needsPrice(form.type) && (
          <div className="field">
            <label htmlFor={`${id}-price`}>{form.type === 'STOP_LIMIT' ? 'Limit price' : 'Price'}</label>
            <div className="input-unit">
              <input id={`${id}-price`} inputMode="decimal" autoComplete="off" value={form.price} placeholder={sym.tick_size} onChange={(e) => update({ price: e.target.value })} {...described('price')} />
              <span>{sym.quote_asset}</span>
            </div>
            {err('price')}
          </div>
        )}
        <div className="field">
          <label htmlFor={`${id}-qty`}>Quantity</label>
          <div className="input-unit">
            <input id={`${id}-qty`} inputMode="decimal" autoComplete="off" value={form.quantity} placeholder={sym.lot_size} onChange={(e) => update({ quantity: e.target.value })} {...described('quantity')} />
            <span>{sym.base_asset}</span>
          </div>
          {err('quantity')}
        </div>
        <label className={`check ${form.type !== 'LIMIT' ? 'disabled' : ''}`}>
          <input type="checkbox" checked={form.postOnly && form.type === 'LIMIT'} disabled={form.type !== 'LIMIT'} onChange={(e) => update({ postOnly: e.target.checked })} />
          Post-only
        </label>
        <p className="small muted grid-hint">
          Tick {sym.tick_size} · lot {sym.lot_size} · min {sym.min_quantity}
          <br />
          Available: <span className="mono" data-testid="available">{avail ? fmt(avail.available, availAsset === sym.quote_asset ? 2 : p.qty) : '—'}</span> {availAsset}
        </p>
        {err('form')}
        <button type="submit" className={`btn btn-block ${form.side === 'BUY' ? 'btn-buy' : 'btn-sell'}`} disabled={busy}>
          {busy ? 'Sending…' : `${form.side === 'BUY' ? 'Buy' : 'Sell'} ${sym.base_asset}`}
        </button>
        {result && (
          <p className="ok small" role="status" data-testid="order-result">
            {result}
          </p>
        )}
      </form>
    </section>
  );
}
