// Top bar: brand, symbol picker, the selected symbol's ticker, connection state, account.

import { useStore, useSymbolInfo, useTrading } from '../hooks/useStore';
import { parseDec, isNegative } from '../lib/decimal';
import { fmt, precisionOf } from '../lib/format';
import { ConnectionBadge } from './ConnectionBadge';

/** An explicit "+" on gains: a trader reads the sign before the digits. */
const signed = (text: string): string => (/^[0-9]/.test(text) && /[1-9]/.test(text) ? `+${text}` : text);

export function Header() {
  const store = useStore();
  const symbols = useTrading((s) => s.symbols);
  const symbol = useTrading((s) => s.symbol);
  const ticker = useTrading((s) => s.ticker);
  const apiKey = useTrading((s) => s.apiKey);
  const userId = useTrading((s) => s.userId);
  const sym = useSymbolInfo();
  const p = precisionOf(sym);
  const change = ticker?.change_24h ? parseDec(ticker.change_24h) : null;

  return (
    <header className="topbar">
      <div className="brand" aria-label="QuantTrader">
        <svg viewBox="0 0 16 16" width="20" height="20" aria-hidden="true">
          <path d="M2 12l3.5-4.5 3 2.5L14 3" stroke="currentColor" strokeWidth="2" fill="none" />
        </svg>
        <span>QuantTrader</span>
      </div>
      <label className="symbol-picker">
        <span className="sr-only">Symbol</span>
        <select
          aria-label="Symbol"
          data-testid="symbol-picker"
          value={symbol ?? ''}
          onChange={(e) => store.selectSymbol(e.target.value)}
          disabled={symbols.length === 0}
        >
          {symbols.length === 0 && <option value="">Loading…</option>}
          {symbols.map((s) => (
            <option key={s.symbol} value={s.symbol}>
              {s.symbol}
            </option>
          ))}
        </select>
      </label>
      <dl className="ticker" data-testid="ticker">
        <div>
          <dt>Last</dt>
          <dd className="mono strong" data-testid="last-price">{fmt(ticker?.last, p.price)}</dd>
        </div>
        <div>
          <dt>24h</dt>
          <dd className={`mono ${change ? (isNegative(change) ? 'down' : 'up') : ''}`} data-testid="change-24h">
            {signed(fmt(ticker?.change_24h, p.price))}
            {ticker?.change_24h_percent ? <span className="pct"> ({signed(fmt(ticker.change_24h_percent, 2))}%)</span> : null}
          </dd>
        </div>
        <div className="wide-only">
          <dt>High</dt>
          <dd className="mono">{fmt(ticker?.high_24h, p.price)}</dd>
        </div>
        <div className="wide-only">
          <dt>Low</dt>
          <dd className="mono">{fmt(ticker?.low_24h, p.price)}</dd>
        </div>
        <div className="wide-only">
          <dt>Volume</dt>
          <dd className="mono">{fmt(ticker?.volume_24h, p.qty)}</dd>
        </div>
      </dl>
      <div className="topbar-right">
        <ConnectionBadge />
        {apiKey && (
          <span className="account">
            <span className="muted" title="Signed in user" data-testid="user-id">
              {userId ? `user ${userId}` : 'signed in'}
            </span>
            <button type="button" className="btn-link" onClick={() => store.signOut()}>
              Sign out
            </button>
          </span>
        )}
      </div>
    </header>
  );
}
