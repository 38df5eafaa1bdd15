import { BTC } from '../test/fakes';
import { effectiveTif, fieldForError, tifChoices, validateOrder, type OrderForm } from './validate';

const form = (patch: Partial<OrderForm> = {}): OrderForm => ({
  side: 'BUY',
  type: 'LIMIT',
  price: '30000.00',
  stopPrice: '',
  quantity: '0.5',
  timeInForce: 'GTC',
  postOnly: false,
  ...patch,
});

describe('validateOrder', () => {
  it('builds the exact body for a valid limit order, values as typed', () => {
    const r = validateOrder(form({ price: ' 30000.10 ', quantity: '0.5000' }), BTC, 'c1');
    expect(r).toEqual({
      ok: true,
      order: { symbol: 'BTC-USD', side: 'BUY', type: 'LIMIT', quantity: '0.5000', price: '30000.10', stop_price: null, time_in_force: 'GTC', post_only: false, client_order_id: 'c1' },
    });
  });

  it('rejects prices off the tick and quantities off the lot', () => {
    const r = validateOrder(form({ price: '30000.001', quantity: '0.00015' }), BTC, 'c');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.price).toMatch(/tick size 0.01/);
    expect(r.errors.quantity).toMatch(/lot size 0.0001/);
  });

  it('enforces min/max quantity and min notional', () => {
    const small = validateOrder(form({ price: '1.00', quantity: '0.0001' }), BTC, 'c');
    expect(!small.ok && small.errors.quantity).toMatch(/at least 1.00 USD/);
    const big = validateOrder(form({ quantity: '100.0001' }), BTC, 'c');
    expect(!big.ok && big.errors.quantity).toMatch(/Maximum quantity is 100/);
  });

  it('requires what each type needs and nothing else', () => {
    const m = validateOrder(form({ type: 'MARKET', price: 'garbage', timeInForce: 'GTC' }), BTC, 'c');
    expect(m.ok && m.order).toMatchObject({ price: null, stop_price: null, time_in_force: 'IOC', post_only: false });
    const stop = validateOrder(form({ type: 'STOP', stopPrice: '' }), BTC, 'c');
    expect(!stop.ok && stop.errors.stop_price).toMatch(/required/);
    const sl = validateOrder(form({ type: 'STOP_LIMIT', stopPrice: '29000.00', price: '28999.50' }), BTC, 'c');
    expect(sl.ok && sl.order).toMatchObject({ price: '28999.50', stop_price: '29000.00' });
  });

  it('rejects junk, zero and negatives', () => {
    for (const q of ['abc', '0', '-1', '1e-3', '']) {
      const r = validateOrder(form({ quantity: q }), BTC, 'c');
      expect(r.ok).toBe(false);
    }
  });

  it('allows post-only only on GTC limit orders', () => {
    expect(validateOrder(form({ postOnly: true }), BTC, 'c').ok).toBe(true);
    const ioc = validateOrder(form({ postOnly: true, timeInForce: 'IOC' }), BTC, 'c');
    expect(!ioc.ok && ioc.errors.time_in_force).toMatch(/GTC/);
  });

  it('never sends GTC for market or stop(-market) orders, keeps an allowed choice', () => {
    expect(tifChoices('MARKET')).toEqual(['IOC', 'FOK']);
    expect(tifChoices('STOP')).toEqual(['IOC', 'FOK']);
    expect(tifChoices('STOP_LIMIT')).toEqual(['GTC', 'IOC', 'FOK']);
    expect(effectiveTif('STOP', 'GTC')).toBe('IOC');
    expect(effectiveTif('MARKET', 'FOK')).toBe('FOK');
    const stop = validateOrder(form({ type: 'STOP', stopPrice: '31000.00', timeInForce: 'GTC' }), BTC, 'c');
    expect(stop.ok && stop.order).toMatchObject({ type: 'STOP', price: null, stop_price: '31000.00', time_in_force: 'IOC' });
    const fok = validateOrder(form({ type: 'MARKET', timeInForce: 'FOK' }), BTC, 'c');
    expect(fok.ok && fok.order.time_in_force).toBe('FOK');
  });
});

describe('fieldForError', () => {
  it('prefers the server field, then the code', () => {
    expect(fieldForError('INVALID_FIELD', 'price')).toBe('price');
    expect(fieldForError('INSUFFICIENT_FUNDS', null)).toBe('quantity');
    expect(fieldForError('OFF_TICK', null)).toBe('price');
    expect(fieldForError('KILL_SWITCH', null)).toBe('form');
    expect(fieldForError('INVALID_FIELD', 'symbol')).toBe('form');
    expect(fieldForError('MARKET_ORDER_TIF', 'time_in_force')).toBe('time_in_force');
    expect(fieldForError('POST_ONLY_INVALID', 'post_only')).toBe('form');
  });
});
