import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Order } from '../lib/types';
import { makeStore, type Call } from '../test/fakes';
import { renderWith } from '../test/render';
import { OpenOrders } from './OpenOrders';

const resting: Order = {
  order_id: '42', client_order_id: 'c', symbol: 'BTC-USD', side: 'BUY', type: 'LIMIT', status: 'ACCEPTED',
  price: '29000.00', stop_price: null, quantity: '0.5000', filled_quantity: '0', remaining_quantity: '0.5',
  average_price: null, time_in_force: 'GTC', post_only: false, reject_reason: null,
  created_at: '2026-11-25T10:00:00Z', updated_at: '2026-11-25T10:00:00Z',
};

async function setup(routes: Record<string, (c: Call) => { status?: number; body?: unknown } | undefined>) {
  localStorage.clear();
  const ctx = makeStore({ 'GET /api/orders': () => ({ body: { orders: [resting], next_cursor: null } }), ...routes });
  await ctx.store.start();
  await ctx.store.signIn('good-key');
  renderWith(ctx.store, <OpenOrders />);
  return { ...ctx, user: userEvent.setup() };
}

describe('OpenOrders', () => {
  it('cancels an order and removes its row', async () => {
    const { user, calls } = await setup({ 'DELETE /api/orders/42': () => ({ body: { ...resting, status: 'CANCELLED', updated_at: '2026-11-25T10:00:05Z' } }) });
    const row = screen.getByTestId('open-order-row');
    expect(row).toHaveTextContent('29,000.00');
    await user.click(screen.getByRole('button', { name: 'Cancel order 42' }));
    expect(await screen.findByTestId('open-orders-empty')).toBeInTheDocument();
    expect(calls.some((c) => c.method === 'DELETE' && c.path === '/api/orders/42')).toBe(true);
  });

  it('shows a refused cancel on the row', async () => {
    const { user } = await setup({ 'DELETE /api/orders/42': () => ({ status: 422, body: { error: { code: 'KILL_SWITCH', message: 'halted', field: null } } }) });
    await user.click(screen.getByRole('button', { name: 'Cancel order 42' }));
    expect(await within(screen.getByTestId('open-order-row')).findByRole('alert')).toHaveTextContent('halted');
  });

  it('amends only what changed and validates on the grid first', async () => {
    const { user, calls } = await setup({ 'PATCH /api/orders/42': (c) => ({ body: { ...resting, ...(c.body as object), updated_at: '2026-11-25T10:00:05Z' } }) });
    await user.click(screen.getByRole('button', { name: 'Amend order 42' }));
    const qty = screen.getByLabelText('New quantity');
    await user.clear(qty);
    await user.type(qty, '0.00005');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(screen.getByRole('alert')).toHaveTextContent('Not on the lot 0.0001');
    await user.clear(qty);
    await user.type(qty, '0.2');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(screen.getByTestId('open-order-row')).toHaveTextContent('0.2000'));
    const patch = calls.find((c) => c.method === 'PATCH');
    // The price did not change, so it is not sent: a shrink keeps time priority.
    expect(patch?.body).toEqual({ quantity: '0.2' });
  });
});
