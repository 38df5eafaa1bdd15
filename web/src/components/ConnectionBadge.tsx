// The connection state a trader must always see: live, reconnecting (with countdown),
// or resyncing the book after a gap. Colour is never the only signal: the text says it.

import { useEffect, useState } from 'react';
import { useTrading } from '../hooks/useStore';

export function ConnectionBadge() {
  const connection = useTrading((s) => s.connection);
  const retryInMs = useTrading((s) => s.retryInMs);
  const attempt = useTrading((s) => s.attempt);
  const bookStatus = useTrading((s) => s.bookStatus);
  const gaps = useTrading((s) => s.gaps);
  const [now, setNow] = useState(() => Date.now());
  const [deadline, setDeadline] = useState<number | null>(null);

  useEffect(() => {
    setDeadline(retryInMs === null ? null : Date.now() + retryInMs);
  }, [retryInMs, attempt]);
  useEffect(() => {
    if (deadline === null) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [deadline]);

  let kind: 'live' | 'warn' | 'down';
  let label: string;
  if (connection === 'open') {
    if (bookStatus === 'resyncing') {
      kind = 'warn';
      label = 'Resyncing';
    } else {
      kind = 'live';
      label = 'Live';
    }
  } else if (connection === 'connecting') {
    kind = 'warn';
    label = 'Connecting';
  } else if (connection === 'reconnecting') {
    kind = 'down';
    const secs = deadline === null ? null : Math.max(0, Math.ceil((deadline - now) / 1000));
    label = secs === null || secs === 0 ? 'Reconnecting…' : `Reconnecting in ${secs}s`;
  } else {
    kind = 'down';
    label = 'Offline';
  }
  const title = `WebSocket ${connection}${attempt ? `, attempt ${attempt}` : ''}; book gaps recovered: ${gaps}`;
  return (
    <span className={`conn conn-${kind}`} data-testid="connection" data-state={connection} title={title} role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" />
      {label}
    </span>
  );
}
