import { BTC } from '../test/fakes';
import { fmtAtLeast, precisionOf } from './format';

describe('precisionOf', () => {
  it('derives places from the grid', () => {
    expect(precisionOf(BTC)).toEqual({ price: 2, qty: 4 });
  });

  it("takes the server's display places, never fewer than the grid needs", () => {
    expect(precisionOf({ ...BTC, price_decimals: 3, quantity_decimals: 6 })).toEqual({ price: 3, qty: 6 });
    expect(precisionOf({ ...BTC, price_decimals: 0, quantity_decimals: 1 })).toEqual({ price: 2, qty: 4 });
  });
});

describe('fmtAtLeast', () => {
  it('keeps the digits that are real money', () => {
    expect(fmtAtLeast('999993.48949438', 2)).toBe('999,993.48949438');
    expect(fmtAtLeast('100000.00', 2)).toBe('100,000.00');
    expect(fmtAtLeast('0.00325362', 2)).toBe('0.00325362');
  });
});
