// Sign-in with an API key. The key is checked against the server before it is kept, and
// kept in sessionStorage only (see lib/store.ts), never in localStorage or a cookie.

import { useState, type FormEvent } from 'react';
import { useStore, useTrading } from '../hooks/useStore';

export function SignIn() {
  const store = useStore();
  const error = useTrading((s) => s.signInError);
  const busy = useTrading((s) => s.signingIn);
  const [key, setKey] = useState('');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (await store.signIn(key)) setKey('');
  };

  return (
    <section className="panel signin" aria-labelledby="signin-title">
      <h2 id="signin-title">Sign in to trade</h2>
      <form onSubmit={submit} noValidate>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="apiKey"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'api-key-error' : undefined}
          placeholder="qtk_…"
        />
        {error && (
          <p className="field-error" id="api-key-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="hint">Kept for this browser tab only. Market data is public.</p>
      </form>
    </section>
  );
}
