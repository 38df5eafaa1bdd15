import { act, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { FakeWebSocket, makeStore } from '../test/fakes';
import { renderWith } from '../test/render';
import { DepthChart } from './DepthChart';
import { OrderBookPanel } from './OrderBook';

async function setup() {
  localStorage.clear();
  const ctx = makeStore();
  await ctx.store.start();
  const ws = FakeWebSocket.last();
  ws.open();
  return { ...ctx, ws };
}

describe('OrderBookPanel', () => {
  it('renders asks above bids, best prices next to the spread, and follows diffs', async () => {
    const { store, ws } = await setup();
    const onPick = vi.fn();
    renderWith(store, <><OrderBookPanel onPickPrice={onPick} /><DepthChart /></>);
    act(() => ws.receive({ type: 'book_snapshot', symbol: 'BTC-USD', sequence: 1, bids: [['29999.50', '1.2'], ['29999.00', '0.5']], asks: [['30001.00', '2'], ['30000.50', '0.25']] }));
    const asks = within(screen.getByTestId('asks')).getAllByRole('row');
    const bids = within(screen.getByTestId('bids')).getAllByRole('row');
    expect(asks.map((r) => r.firstChild?.textContent)).toEqual(['30,001.00', '30,000.50']);
    expect(bids.map((r) => r.firstChild?.textContent)).toEqual(['29,999.50', '29,999.00']);
    expect(screen.getByText('Spread 1.00')).toBeInTheDocument();
    // Cumulative totals, exact.
    expect(bids[1].lastChild).toHaveTextContent('1.7000');
    expect(screen.getByTestId('depth-bids').getAttribute('d')).toMatch(/^M/);

    act(() => ws.receive({ type: 'book_diff', symbol: 'BTC-USD', sequence: 2, bids: [['29999.50', '0']], asks: [] }));
    expect(within(screen.getByTestId('bids')).getAllByRole('row')).toHaveLength(1);
    expect(screen.getByTestId('order-book')).toHaveAttribute('data-sequence', '2');

    await userEvent.click(within(screen.getByTestId('asks')).getByText('30,000.50'));
    expect(onPick).toHaveBeenCalledWith('30000.50');
  });

  it('blanks the book while resyncing after a gap', async () => {
    const { store, ws } = await setup();
    renderWith(store, <OrderBookPanel />);
    act(() => ws.receive({ type: 'book_snapshot', symbol: 'BTC-USD', sequence: 1, bids: [['1.00', '1']], asks: [] }));
    act(() => ws.receive({ type: 'book_diff', symbol: 'BTC-USD', sequence: 3, bids: [], asks: [] }));
    expect(screen.getByTestId('order-book')).toHaveAttribute('data-status', 'resyncing');
    expect(screen.getByText('resyncing…')).toBeInTheDocument();
    expect(within(screen.getByTestId('bids')).queryAllByRole('row')).toHaveLength(0);
  });

  it('keeps the depth chart on the interesting part of the book', async () => {
    const { store, ws } = await setup();
    const { container } = renderWith(store, <DepthChart />);
    act(() => ws.receive({ type: 'book_snapshot', symbol: 'BTC-USD', sequence: 1, bids: [['100.00', '1'], ['99.00', '1'], ['50.00', '9']], asks: [['101.00', '1'], ['102.00', '2']] }));
    // Window = mid 100.50 +/- the nearer reach (asks: 1.50); the lone bid at 50 is clipped.
    expect(container.querySelector('.depth-axis')?.textContent).toBe('99.00100.00 / 101.00102.00');
  });
});
