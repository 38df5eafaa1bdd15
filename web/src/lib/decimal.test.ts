import { add, cmp, dec, div, floorToStep, formatDec, isMultipleOf, parseDec, stepPlaces, sub, toFixed, toString } from './decimal';

describe('decimal', () => {
  it('parses exactly and rejects what is not a plain decimal', () => {
    expect(parseDec('101.25')).toEqual({ units: 10125n, scale: 2 });
    expect(parseDec(' -0.5 ')).toEqual({ units: -5n, scale: 1 });
    expect(parseDec('.5')).toEqual({ units: 5n, scale: 1 });
    for (const bad of ['', '.', '1e3', '1,000', 'abc', '1.2.3', '--1', 'NaN', 'Infinity']) expect(parseDec(bad)).toBeNull();
  });

  it('adds without float drift', () => {
    expect(toString(add(dec('0.1'), dec('0.2')))).toBe('0.3');
    expect(toString(sub(dec('30000.00'), dec('29999.99')))).toBe('0.01');
  });

  it('checks grid membership exactly', () => {
    expect(isMultipleOf(dec('30000.01'), dec('0.01'))).toBe(true);
    expect(isMultipleOf(dec('30000.015'), dec('0.01'))).toBe(false);
    expect(isMultipleOf(dec('0.0003'), dec('0.0001'))).toBe(true);
    // 0.3 / 0.1 is 2.9999999999999996 in floats; exact here.
    expect(isMultipleOf(dec('0.3'), dec('0.1'))).toBe(true);
    expect(isMultipleOf(dec('1.5'), dec('0.5'))).toBe(true);
    expect(isMultipleOf(dec('1.25'), dec('0.5'))).toBe(false);
    expect(isMultipleOf(dec('1'), dec('0'))).toBe(false);
  });

  it('compares across scales', () => {
    expect(cmp(dec('1.50'), dec('1.5'))).toBe(0);
    expect(cmp(dec('-2'), dec('1'))).toBe(-1);
    expect(cmp(dec('10'), dec('9.999'))).toBe(1);
  });

  it('floors to a step and divides toward zero', () => {
    expect(toString(floorToStep(dec('1.23456'), dec('0.0001')))).toBe('1.2345');
    expect(toString(floorToStep(dec('-1.5'), dec('1')))).toBe('-2');
    expect(toString(div(dec('1000'), dec('30000'), 6))).toBe('0.033333');
    expect(() => div(dec('1'), dec('0'), 2)).toThrow();
  });

  it('formats for display, rounding half away from zero', () => {
    expect(toFixed(dec('1.005'), 2)).toBe('1.01');
    expect(toFixed(dec('-1.005'), 2)).toBe('-1.01');
    expect(toFixed(dec('2'), 3)).toBe('2.000');
    expect(formatDec('1234567.891', 2)).toBe('1,234,567.89');
    expect(formatDec('-1234.5', 1)).toBe('-1,234.5');
    expect(formatDec(null, 2)).toBe('—');
    expect(stepPlaces('0.0100')).toBe(2);
    expect(stepPlaces('1')).toBe(0);
  });
});
