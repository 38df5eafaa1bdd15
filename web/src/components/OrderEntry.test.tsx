import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { makeStore, type Call } from '../test/fakes';
import { renderWith } from '../test/render';
import { OrderEntry } from './OrderEntry';

async function setup(place: (c: Call) => { status?: number; body?: unknown; headers?: Record<string, string> } | undefined) {
  localStorage.clear();
  const ctx = makeStore({ 'POST /api/orders': place });
  await ctx.store.start();
  await ctx.store.signIn('good-key');
  renderWith(ctx.store, <OrderEntry />);
  return { ...ctx, user: userEvent.setup() };
}

const orderCalls = (calls: Call[]) => calls.filter((c) => c.method === 'POST' && c.path === '/api/orders');

describe('OrderEntry', () => {
  it('shows grid errors next to the fields and sends nothing', async () => {
    const { user, calls } = await setup(() => undefined);
    await user.type(screen.getByLabelText('Price'), '30000.005');
    await user.type(screen.getByLabelText('Quantity'), '0.00001');
    await user.click(screen.getByRole('button', { name: 'Buy BTC' }));
    expect(screen.getByTestId('error-price')).toHaveTextContent('multiple of the tick size 0.01');
    expect(screen.getByTestId('error-quantity')).toHaveTextContent('multiple of the lot size 0.0001');
    expect(screen.getByLabelText('Price')).toHaveAttribute('aria-invalid', 'true');
    expect(orderCalls(calls)).toHaveLength(0);
    // Editing a field clears its own error only.
    await user.type(screen.getByLabelText('Quantity'), '0');
    expect(screen.queryByTestId('error-quantity')).toBeNull();
    expect(screen.getByTestId('error-price')).toBeInTheDocument();
  });

  it('sends the exact body with an idempotency key and reports the result', async () => {
    const { user, calls } = await setup((c) => ({
      status: 201,
      body: { ...(c.body as object), order_id: '42', status: 'ACCEPTED', filled_quantity: '0', remaining_quantity: '0.5', average_price: null, reject_reason: null, created_at: '2026-11-25T10:00:00Z', updated_at: '2026-11-25T10:00:00Z', fills: [] },
    }));
    await user.click(screen.getByRole('radio', { name: 'Sell' }));
    await user.type(screen.getByLabelText('Price'), '30000.10');
    await user.type(screen.getByLabelText('Quantity'), '0.5');
    await user.click(screen.getByRole('checkbox', { name: 'Post-only' }));
    await user.click(screen.getByRole('button', { name: 'Sell BTC' }));
    expect(await screen.findByTestId('order-result')).toHaveTextContent('Order 42 accepted');
    const [call] = orderCalls(calls);
    expect(call.body).toMatchObject({ symbol: 'BTC-USD', side: 'SELL', type: 'LIMIT', price: '30000.10', quantity: '0.5', stop_price: null, time_in_force: 'GTC', post_only: true });
    expect(call.headers['Idempotency-Key']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('puts a server error next to the field it names', async () => {
    const { user } = await setup(() => ({ status: 422, body: { error: { code: 'INSUFFICIENT_FUNDS', message: 'Not enough BTC: 2 available', field: null } } }));
    await user.click(screen.getByRole('radio', { name: 'Sell' }));
    await user.type(screen.getByLabelText('Price'), '30000.00');
    await user.type(screen.getByLabelText('Quantity'), '5');
    await user.click(screen.getByRole('button', { name: 'Sell BTC' }));
    expect(await screen.findByTestId('error-quantity')).toHaveTextContent('Not enough BTC: 2 available');
  });

  it('shows errors about no field above the button, with the code', async () => {
    const { user } = await setup(() => ({ status: 422, body: { error: { code: 'KILL_SWITCH', message: 'Trading is halted', field: null } } }));
    await user.type(screen.getByLabelText('Price'), '30000.00');
    await user.type(screen.getByLabelText('Quantity'), '0.1');
    await user.click(screen.getByRole('button', { name: 'Buy BTC' }));
    expect(await screen.findByTestId('error-form')).toHaveTextContent('Trading is halted (KILL_SWITCH)');
  });

  it('says when to try again after a rate limit', async () => {
    const { user } = await setup(() => ({ status: 429, headers: { 'Retry-After': '3' }, body: { error: { code: 'RATE_LIMITED', message: 'too many requests', field: null } } }));
    await user.type(screen.getByLabelText('Price'), '30000.00');
    await user.type(screen.getByLabelText('Quantity'), '0.1');
    await user.click(screen.getByRole('button', { name: 'Buy BTC' }));
    expect(await screen.findByTestId('error-form')).toHaveTextContent('too many requests (RATE_LIMITED) Try again in 3 s.');
  });

  it('retries a network failure with the same idempotency key', async () => {
    let n = 0;
    const { user, calls } = await setup((c) => {
      n += 1;
      if (n === 1) return { status: 503, body: { error: { code: 'UNAVAILABLE', message: 'try again', field: null } } };
      return { status: 201, body: { ...(c.body as object), order_id: '7', status: 'ACCEPTED', filled_quantity: '0', created_at: 'x', updated_at: 'x', fills: [] } };
    });
    await user.type(screen.getByLabelText('Price'), '30000.00');
    await user.type(screen.getByLabelText('Quantity'), '0.1');
    await user.click(screen.getByRole('button', { name: 'Buy BTC' }));
    await screen.findByTestId('error-form');
    await user.click(screen.getByRole('button', { name: 'Buy BTC' }));
    await screen.findByTestId('order-result');
    const [a, b] = orderCalls(calls);
    expect(b.headers['Idempotency-Key']).toBe(a.headers['Idempotency-Key']);
    expect((b.body as { client_order_id: string }).client_order_id).toBe((a.body as { client_order_id: string }).client_order_id);
  });

  it('market orders need no price and go as IOC; stop orders ask for a stop price', async () => {
    const { user, calls } = await setup((c) => ({ status: 201, body: { ...(c.body as object), order_id: '9', status: 'FILLED', created_at: 'x', updated_at: 'x', fills: [] } }));
    await user.selectOptions(screen.getByLabelText('Type'), 'STOP_LIMIT');
    expect(screen.getByLabelText('Stop price')).toBeInTheDocument();
    expect(screen.getByLabelText('Limit price')).toBeInTheDocument();
    await user.selectOptions(screen.getByLabelText('Type'), 'MARKET');
    expect(screen.queryByLabelText('Price')).toBeNull();
    // Only the immediate choices are offered, IOC first.
    expect(screen.getByLabelText('Time in force')).toHaveValue('IOC');
    expect(Array.from((screen.getByLabelText('Time in force') as HTMLSelectElement).options, (o) => o.value)).toEqual(['IOC', 'FOK']);
    await user.type(screen.getByLabelText('Quantity'), '0.1');
    await user.click(screen.getByRole('button', { name: 'Buy BTC' }));
    await waitFor(() => expect(orderCalls(calls)).toHaveLength(1));
    expect(orderCalls(calls)[0].body).toMatchObject({ type: 'MARKET', price: null, time_in_force: 'IOC' });
    expect(await screen.findByTestId('order-result')).toHaveTextContent('Order 9 filled');
  });

  it('a stop(-market) order goes as IOC or FOK, never GTC; a time-in-force error sits under that field', async () => {
    let n = 0;
    const { user, calls } = await setup((c) => {
      n += 1;
      if (n === 1) return { status: 400, body: { error: { code: 'MARKET_ORDER_TIF', message: 'market orders must be immediate (IOC or FOK)', field: 'time_in_force' } } };
      return { status: 201, body: { ...(c.body as object), order_id: '11', status: 'ACCEPTED', triggered: false, created_at: 'x', updated_at: 'x', fills: [] } };
    });
    await user.selectOptions(screen.getByLabelText('Type'), 'STOP');
    await user.selectOptions(screen.getByLabelText('Time in force'), 'FOK');
    await user.type(screen.getByLabelText('Stop price'), '31000.00');
    await user.type(screen.getByLabelText('Quantity'), '0.1');
    await user.click(screen.getByRole('button', { name: 'Buy BTC' }));
    expect(await screen.findByTestId('error-time_in_force')).toHaveTextContent('IOC or FOK');
    expect(orderCalls(calls)[0].body).toMatchObject({ type: 'STOP', price: null, stop_price: '31000.00', time_in_force: 'FOK' });
    await user.selectOptions(screen.getByLabelText('Time in force'), 'IOC');
    expect(screen.queryByTestId('error-time_in_force')).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Buy BTC' }));
    expect(await screen.findByTestId('order-result')).toHaveTextContent('Order 11 accepted');
    expect(orderCalls(calls)[1].body).toMatchObject({ time_in_force: 'IOC' });
  });
});
