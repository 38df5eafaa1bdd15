// Renders a component inside a StoreContext wired to fakes (see fakes.ts).
import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import { StoreContext } from '../hooks/useStore';
import type { TradingStore } from '../lib/store';

export function renderWith(store: TradingStore, ui: ReactElement) {
  return render(<StoreContext.Provider value={store}>{ui}</StoreContext.Provider>);
}
