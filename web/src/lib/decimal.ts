// Exact decimal arithmetic for prices, quantities and money.
//
// The API speaks decimal strings ("101.25") and rejects anything off the tick or lot grid,
// so the screen must never round through a binary float: 0.1 + 0.2 !== 0.3, and a
// float-based "is this a multiple of 0.01" check lies. A Dec is an integer count of
// 10^-scale units held in a BigInt. Floats appear only in `toNumber`, for chart drawing.

export interface Dec {
  /** The value times 10^scale. */
  readonly units: bigint;
  /** Number of digits after the decimal point. */
  readonly scale: number;
}

const DECIMAL_RE = /^([+-])?(\d*)(?:\.(\d*))?$/;

/** Parses "12.50", "-0.3", ".5", "7." exactly; returns null for anything else (exponents, blanks, junk). */
export function parseDec(text: string): Dec | null {
  const m = DECIMAL_RE.exec(text.trim());
  if (!m) return null;
  const [, sign, int = '', frac = ''] = m;
  if (int === '' && frac === '') return null;
  const digits = (int || '0') + frac;
  const units = BigInt(digits) * (sign === '-' ? -1n : 1n);
  return { units, scale: frac.length };
}

/** Like parseDec, for values the server sent: a malformed one is a contract breach, so throw. */
export function dec(text: string): Dec {
  const d = parseDec(text);
  if (!d) throw new Error(`not a decimal: ${JSON.stringify(text)}`);
  return d;
}

export const ZERO: Dec = { units: 0n, scale: 0 };

const pow10 = (n: number): bigint => 10n ** BigInt(n);

function rescale(a: Dec, scale: number): bigint {
  return a.units * pow10(scale - a.scale);
}

function aligned(a: Dec, b: Dec): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [rescale(a, scale), rescale(b, scale), scale];
}

export function add(a: Dec, b: Dec): Dec {
  const [x, y, scale] = aligned(a, b);
  return { units: x + y, scale };
}

export function sub(a: Dec, b: Dec): Dec {
  const [x, y, scale] = aligned(a, b);
  return { units: x - y, scale };
}

export function mul(a: Dec, b: Dec): Dec {
  return { units: a.units * b.units, scale: a.scale + b.scale };
}

export function neg(a: Dec): Dec {
  return { units: -a.units, scale: a.scale };
}

export function cmp(a: Dec, b: Dec): -1 | 0 | 1 {
  const [x, y] = aligned(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export const isZero = (a: Dec): boolean => a.units === 0n;
export const isNegative = (a: Dec): boolean => a.units < 0n;
export const isPositive = (a: Dec): boolean => a.units > 0n;

/** True when `a` lies exactly on the grid of `step` (a tick or lot size). */
export function isMultipleOf(a: Dec, step: Dec): boolean {
  const [x, y] = aligned(a, step);
  if (y === 0n) return false;
  return x % y === 0n;
}

/** The largest multiple of `step` that is <= a (for a >= 0): used to size orders from balances. */
export function floorToStep(a: Dec, step: Dec): Dec {
  const [x, y, scale] = aligned(a, step);
  if (y <= 0n) throw new Error('step must be positive');
  let q = x / y; // BigInt division truncates toward zero
  if (x < 0n && x % y !== 0n) q -= 1n;
  return normalize({ units: q * y, scale }, step.scale);
}

/**
 * a / b rounded toward zero to `places` digits. Used for sizing (quote balance / price)
 * and for ratios shown to the user; never for a value sent to the server unfloored.
 */
export function div(a: Dec, b: Dec, places: number): Dec {
  if (b.units === 0n) throw new Error('division by zero');
  // a/b = (a.units / 10^a.scale) / (b.units / 10^b.scale)
  const num = a.units * pow10(places + b.scale);
  const den = b.units * pow10(a.scale);
  return { units: num / den, scale: places };
}

/** Drops trailing zeros down to `minScale` digits. */
export function normalize(a: Dec, minScale = 0): Dec {
  let { units, scale } = a;
  while (scale > minScale && units % 10n === 0n) {
    units /= 10n;
    scale -= 1;
  }
  return { units, scale };
}

/** Canonical string: no exponent, no trailing zeros ("1.50" -> "1.5", "2.000" -> "2"). */
export function toString(a: Dec): string {
  return toFixedExact(normalize(a));
}

function toFixedExact(a: Dec): string {
  const negative = a.units < 0n;
  const digits = (negative ? -a.units : a.units).toString().padStart(a.scale + 1, '0');
  const int = digits.slice(0, digits.length - a.scale);
  const frac = digits.slice(digits.length - a.scale);
  return (negative ? '-' : '') + int + (a.scale > 0 ? '.' + frac : '');
}

/** Exactly `places` digits, rounding half away from zero (display only). */
export function toFixed(a: Dec, places: number): string {
  if (places >= a.scale) return toFixedExact({ units: rescale(a, places), scale: places });
  const factor = pow10(a.scale - places);
  const abs = a.units < 0n ? -a.units : a.units;
  let q = abs / factor;
  if ((abs % factor) * 2n >= factor) q += 1n;
  return toFixedExact({ units: a.units < 0n ? -q : q, scale: places });
}

/** Digits after the point of a grid step: "0.01" -> 2, "1" -> 0, "0.50" -> 1. */
export function stepPlaces(step: string): number {
  return normalize(dec(step)).scale;
}

/** For drawing only: a float approximation. */
export function toNumber(a: Dec): number {
  return Number(toFixedExact(a));
}

/** Formats with thousands separators and a fixed number of decimals, for tables. */
export function formatDec(value: string | Dec | null | undefined, places: number): string {
  if (value === null || value === undefined || value === '') return '—';
  const d = typeof value === 'string' ? parseDec(value) : value;
  if (!d) return String(value);
  const fixed = toFixed(d, places);
  const negative = fixed.startsWith('-');
  const body = negative ? fixed.slice(1) : fixed;
  const [int, frac] = body.split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (negative ? '-' : '') + grouped + (frac !== undefined ? '.' + frac : '');
}
