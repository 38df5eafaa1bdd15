// Display helpers: decimal strings shown at the symbol's own precision, times in local time.

import { formatDec, stepPlaces } from './decimal';
import type { SymbolInfo } from './types';

export interface Precision {
  price: number;
  qty: number;
}

export function precisionOf(sym: SymbolInfo | null | undefined): Precision {
  if (!sym) return { price: 2, qty: 4 };
  return { price: stepPlaces(sym.tick_size), qty: stepPlaces(sym.lot_size) };
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

/** Places for an asset's balance: the quote asset at 2, others at 8 but trimmed by formatDec's input scale. */
export function assetPlaces(asset: string, symbols: SymbolInfo[]): number {
  for (const s of symbols) {
    if (s.base_asset === asset) return stepPlaces(s.lot_size);
  }
  return 2;
}
