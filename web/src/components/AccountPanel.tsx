// Tabs under the market: open orders, trade history, positions. Tabs follow the WAI-ARIA
// pattern (role=tab, aria-selected) so keyboard and screen-reader users get them too.

import { useState } from 'react';
import { useTrading } from '../hooks/useStore';
import { Positions, TradeHistory } from './AccountTables';
import { OpenOrders } from './OpenOrders';

type Tab = 'orders' | 'history' | 'positions';

export function AccountPanel() {
  const [tab, setTab] = useState<Tab>('orders');
  const openCount = useTrading((s) => s.openOrders.length);
  const tabs: { id: Tab; label: string }[] = [
    { id: 'orders', label: `Open orders (${openCount})` },
    { id: 'history', label: 'Trade history' },
    { id: 'positions', label: 'Positions' },
  ];
  return (
    <section className="panel account-panel">
      <div role="tablist" aria-label="Account" className="tabs">
        {tabs.map((t) => (
          <button
            key={t.id}
            role="tab"
            type="button"
            id={`tab-${t.id}`}
            aria-selected={tab === t.id}
            aria-controls={`tabpanel-${t.id}`}
            className={tab === t.id ? 'on' : ''}
            onClick={() => setTab(t.id)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`tabpanel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === 'orders' ? <OpenOrders /> : tab === 'history' ? <TradeHistory /> : <Positions />}
      </div>
    </section>
  );
}
