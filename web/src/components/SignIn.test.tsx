import { act, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { KEY_STORAGE } from '../lib/store';
import { FakeWebSocket, makeStore } from '../test/fakes';
import { renderWith } from '../test/render';
import { ConnectionBadge } from './ConnectionBadge';
import { SignIn } from './SignIn';

describe('SignIn', () => {
  beforeEach(() => {
    sessionStorage.clear();
    localStorage.clear();
  });

  it('shows a refused key next to the input and accepts a good one', async () => {
    const { store } = makeStore();
    await store.start();
    renderWith(store, <SignIn />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('API key'), 'wrong');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('This API key was not accepted');
    expect(screen.getByLabelText('API key')).toHaveAttribute('aria-invalid', 'true');
    await user.clear(screen.getByLabelText('API key'));
    await user.type(screen.getByLabelText('API key'), 'good-key');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    await vi.waitFor(() => expect(store.getState().apiKey).toBe('good-key'));
    expect(sessionStorage.getItem(KEY_STORAGE)).toBe('good-key');
  });

  it('restores the session from sessionStorage on start', async () => {
    sessionStorage.setItem(KEY_STORAGE, 'good-key');
    const { store } = makeStore();
    await store.start();
    await vi.waitFor(() => expect(store.getState().apiKey).toBe('good-key'));
  });
});

describe('ConnectionBadge', () => {
  it('says what the connection is doing', async () => {
    vi.useFakeTimers();
    try {
      const { store } = makeStore();
      void store.start();
      renderWith(store, <ConnectionBadge />);
      expect(screen.getByTestId('connection')).toHaveTextContent('Connecting');
      act(() => FakeWebSocket.last().open());
      expect(screen.getByTestId('connection')).toHaveTextContent('Live');
      act(() => FakeWebSocket.last().drop());
      expect(screen.getByTestId('connection')).toHaveTextContent(/Reconnecting/);
      expect(screen.getByTestId('connection')).toHaveAttribute('data-state', 'reconnecting');
    } finally {
      vi.useRealTimers();
    }
  });
});
