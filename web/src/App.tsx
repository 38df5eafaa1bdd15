// Layout of the trading screen. Market data is public and shown at once; the order ticket,
// balances and the account tabs need a signed-in API key.

import { useCallback, useState } from 'react';
import { AccountPanel } from './components/AccountPanel';
import { Balances } from './components/AccountTables';
import { DepthChart } from './components/DepthChart';
import { Header } from './components/Header';
import { OrderBookPanel } from './components/OrderBook';
import { OrderEntry } from './components/OrderEntry';
import { PriceChart } from './components/PriceChart';
import { SignIn } from './components/SignIn';
import { Tape } from './components/Tape';
import { useTrading } from './hooks/useStore';

export function App() {
  const apiKey = useTrading((s) => s.apiKey);
  const symbolsError = useTrading((s) => s.symbolsError);
  const privateError = useTrading((s) => s.privateError);
  const [picked, setPicked] = useState<{ price: string; n: number } | null>(null);
  const pick = useCallback((price: string) => setPicked((p) => ({ price, n: (p?.n ?? 0) + 1 })), []);

  return (
    <div className="app">
      <Header />
      {(symbolsError || privateError) && (
        <div className="banner" role="alert">
          {symbolsError ?? privateError}
        </div>
      )}
      <main className="layout">
        <div className="area-chart">
          <PriceChart />
        </div>
        <div className="area-book">
          <OrderBookPanel onPickPrice={pick} />
        </div>
        <div className="area-entry">
          {apiKey ? (
            <>
              <OrderEntry picked={picked} />
              <section className="panel balances" aria-labelledby="balances-title">
                <h2 id="balances-title">Balances</h2>
                <Balances />
              </section>
            </>
          ) : (
            <SignIn />
          )}
        </div>
        <div className="area-depth">
          <DepthChart />
        </div>
        <div className="area-tape">
          <Tape />
        </div>
        <div className="area-account">{apiKey && <AccountPanel />}</div>
      </main>
    </div>
  );
}
