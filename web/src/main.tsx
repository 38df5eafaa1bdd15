// Entry point: one TradingStore for the page, started before the first render.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { StoreContext } from './hooks/useStore';
import { TradingStore } from './lib/store';
import './styles.css';

const store = new TradingStore();
void store.start();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <StoreContext.Provider value={store}>
      <App />
    </StoreContext.Provider>
  </StrictMode>,
);
