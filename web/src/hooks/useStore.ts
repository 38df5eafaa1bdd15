// React access to the TradingStore: one store per app, provided by context, read with
// useSyncExternalStore so components re-render only when the slice they select changes.

import { createContext, useContext, useSyncExternalStore } from 'react';
import type { State, TradingStore } from '../lib/store';
import type { SymbolInfo } from '../lib/types';

export const StoreContext = createContext<TradingStore | null>(null);

export function useStore(): TradingStore {
  const store = useContext(StoreContext);
  if (!store) throw new Error('useStore outside StoreContext');
  return store;
}

/** Selects a slice of state; the selector must return a value from state (or a primitive), not a fresh object. */
export function useTrading<T>(select: (s: State) => T): T {
  const store = useStore();
  return useSyncExternalStore(store.subscribe, () => select(store.getState()));
}

export function useSymbolInfo(): SymbolInfo | null {
  const symbols = useTrading((s) => s.symbols);
  const symbol = useTrading((s) => s.symbol);
  return symbols.find((x) => x.symbol === symbol) ?? null;
}
