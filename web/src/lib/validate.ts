// Client-side order validation against the symbol's grid (tick, lot, min/max, min notional).
//
// Contract: returns either field errors or the exact NewOrder body the server expects.
// Values are checked with exact decimals and sent as the user typed them (trimmed), never
// re-formatted through a float, so what passes here is what the server sees. The server
// stays the authority: its errors are mapped back onto the same fields (fieldForError).

import { cmp, isMultipleOf, isPositive, mul, parseDec, type Dec } from './decimal';
import type { NewOrder, OrderType, Side, SymbolInfo, TimeInForce } from './types';

export interface OrderForm {
  side: Side;
  type: OrderType;
  price: string;
  stopPrice: string;
  quantity: string;
  timeInForce: TimeInForce;
  postOnly: boolean;
}

export type OrderField = 'price' | 'stop_price' | 'quantity' | 'time_in_force' | 'form';
export type FieldErrors = Partial<Record<OrderField, string>>;

export const needsPrice = (t: OrderType): boolean => t === 'LIMIT' || t === 'STOP_LIMIT';
export const needsStop = (t: OrderType): boolean => t === 'STOP' || t === 'STOP_LIMIT';

/**
 * Time in force a type allows. A market order, and a stop order (stop-market: a market order
 * once triggered), must be immediate, so only IOC or FOK; the server rejects GTC with
 * MARKET_ORDER_TIF.
 */
export function tifChoices(t: OrderType): TimeInForce[] {
  return t === 'MARKET' || t === 'STOP' ? ['IOC', 'FOK'] : ['GTC', 'IOC', 'FOK'];
}

/** The time in force actually sent: the chosen one when the type allows it, else the type's first. */
export function effectiveTif(t: OrderType, chosen: TimeInForce): TimeInForce {
  const allowed = tifChoices(t);
  return allowed.includes(chosen) ? chosen : allowed[0];
}

function checkPrice(text: string, label: string, tick: Dec, tickText: string): { value?: Dec; error?: string } {
  if (text.trim() === '') return { error: `${label} is required` };
  const v = parseDec(text);
  if (!v) return { error: `${label} must be a decimal number` };
  if (!isPositive(v)) return { error: `${label} must be positive` };
  if (!isMultipleOf(v, tick)) return { error: `${label} must be a multiple of the tick size ${tickText}` };
  return { value: v };
}

export function validateOrder(
  form: OrderForm,
  sym: SymbolInfo,
  clientOrderId: string,
): { ok: true; order: NewOrder } | { ok: false; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const tick = parseDec(sym.tick_size);
  const lot = parseDec(sym.lot_size);
  if (!tick || !lot) return { ok: false, errors: { form: `symbol ${sym.symbol} has an invalid grid` } };

  let price: Dec | undefined;
  if (needsPrice(form.type)) {
    const r = checkPrice(form.price, 'Price', tick, sym.tick_size);
    if (r.error) errors.price = r.error;
    price = r.value;
  }
  if (needsStop(form.type)) {
    const r = checkPrice(form.stopPrice, 'Stop price', tick, sym.tick_size);
    if (r.error) errors.stop_price = r.error;
  }

  const qText = form.quantity.trim();
  const q = parseDec(qText);
  if (qText === '') errors.quantity = 'Quantity is required';
  else if (!q) errors.quantity = 'Quantity must be a decimal number';
  else if (!isPositive(q)) errors.quantity = 'Quantity must be positive';
  else if (!isMultipleOf(q, lot)) errors.quantity = `Quantity must be a multiple of the lot size ${sym.lot_size}`;
  else {
    const min = parseDec(sym.min_quantity);
    const max = parseDec(sym.max_quantity);
    if (min && cmp(q, min) < 0) errors.quantity = `Minimum quantity is ${sym.min_quantity}`;
    else if (max && cmp(q, max) > 0) errors.quantity = `Maximum quantity is ${sym.max_quantity}`;
    else if (price) {
      const minNotional = parseDec(sym.min_notional);
      if (minNotional && cmp(mul(price, q), minNotional) < 0)
        errors.quantity = `Order value must be at least ${sym.min_notional} ${sym.quote_asset}`;
    }
  }

  const tif = effectiveTif(form.type, form.timeInForce);
  if (form.postOnly && form.type !== 'LIMIT') errors.form = 'Post-only applies to limit orders only';
  if (form.postOnly && form.type === 'LIMIT' && tif !== 'GTC') errors.time_in_force = 'Post-only orders must be GTC';

  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    order: {
      symbol: sym.symbol,
      side: form.side,
      type: form.type,
      quantity: qText,
      price: needsPrice(form.type) ? form.price.trim() : null,
      stop_price: needsStop(form.type) ? form.stopPrice.trim() : null,
      time_in_force: tif,
      post_only: form.type === 'LIMIT' && form.postOnly,
      client_order_id: clientOrderId,
    },
  };
}

const FIELD_BY_CODE: Record<string, OrderField> = {
  OFF_TICK: 'price',
  PRICE_OUT_OF_BAND: 'price',
  POST_ONLY_WOULD_TAKE: 'price',
  OFF_LOT: 'quantity',
  QUANTITY_TOO_SMALL: 'quantity',
  QUANTITY_TOO_LARGE: 'quantity',
  NOTIONAL_TOO_SMALL: 'quantity',
  INSUFFICIENT_FUNDS: 'quantity',
  RISK_MAX_POSITION: 'quantity',
  RISK_MAX_NOTIONAL: 'quantity',
  MARKET_ORDER_TIF: 'time_in_force',
};

/** Which input a server error belongs next to: its `field` when it names one of ours, else by code. */
export function fieldForError(code: string, field: string | null): OrderField {
  if (field === 'price' || field === 'quantity' || field === 'stop_price' || field === 'time_in_force') return field;
  return FIELD_BY_CODE[code] ?? 'form';
}
