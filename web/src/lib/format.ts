// Display helpers: decimal strings shown at the symbol's own precision, times in local time.

import { formatDec, normalize, parseDec, stepPlaces } from './decimal';
import type { SymbolInfo } from './types';

export interface Precision {
  price: number;
  qty: number;
}

export function precisionOf(sym: SymbolInfo | null | undefined): Precision {
  if (!sym) return { price: 2, qty: 4 };
  // The server's own display places win; they can never be fewer than the grid needs.
  const grid = { price: stepPlaces(sym.tick_size), qty: stepPlaces(sym.lot_size) };
  return {
    price: Math.max(grid.price, sym.price_decimals ?? 0),
    qty: Math.max(grid.qty, sym.quantity_decimals ?? 0),
  };
}

export const fmt = formatDec;

export function fmtTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleTimeString(undefined, { hour12: false });
}

export function fmtDateTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${d.toLocaleTimeString(undefined, { hour12: false })}`;
}

/** Display places for an asset: a base asset at its lot precision, anything else (quote, fees) at 2. */
export function assetPlaces(asset: string, symbols: SymbolInfo[]): number {
  for (const s of symbols) {
    if (s.base_asset === asset) return stepPlaces(s.lot_size);
  }
  return 2;
}

/**
 * At least `minPlaces` decimals, more when the value has them: for balances and fees, where
 * rounding would hide real money (a 0.003 USD fee is not "0.00").
 */
export function fmtAtLeast(value: string | null | undefined, minPlaces: number): string {
  const d = value ? parseDec(value) : null;
  if (!d) return formatDec(value, minPlaces);
  return formatDec(d, Math.max(minPlaces, normalize(d).scale));
}
