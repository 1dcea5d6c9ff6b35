import { describe, expect, it } from 'vitest';
import { abortError, throwIfAborted } from '../../../src/provider.js';
import { TailBuffer } from '../../../providers/ssh/session.js';
import { CancelledError, SpecError, TimeoutError } from '../../../src/errors.js';
import { durationField } from '../../../src/util/duration.js';

describe('abort reasons', () => {
  it('map to TimeoutError for deadlines and CancelledError otherwise', () => {
    expect(abortError(AbortSignal.abort(new DOMException('t', 'TimeoutError')), 'x')).toBeInstanceOf(TimeoutError);
    expect(abortError(AbortSignal.abort(), 'x')).toBeInstanceOf(CancelledError);
    expect(abortError(AbortSignal.abort(new Error('superseded')), 'x')).toBeInstanceOf(CancelledError);
    const own = new TimeoutError('deadline of the op');
    expect(abortError(AbortSignal.abort(own), 'x')).toBe(own);
    const cancelled = new CancelledError('newer commit');
    expect(abortError(AbortSignal.abort(cancelled), 'x')).toBe(cancelled);
    expect(abortError(AbortSignal.abort(new DOMException('t', 'TimeoutError')), 'x').retryable).toBe(true);
    expect(() => throwIfAborted(new AbortController().signal, 'x')).not.toThrow();
  });
});

describe('TailBuffer', () => {
  it('keeps only the last bytes', () => {
    const t = new TailBuffer(10);
    for (let i = 0; i < 100; i++) t.push(Buffer.from(`${i % 10}`));
    expect(t.toString()).toBe('0123456789');
    const big = new TailBuffer(4);
    big.push(Buffer.from('abcdefgh'));
    expect(big.toString()).toBe('efgh');
  });
});

describe('durations', () => {
  it('parse like the schema says', () => {
    // A Target's duration fields (ssh, redfish, netconf) all go through durationField.
    const parseDuration = (text: string): number => durationField('web1', 'connectTimeout', text, 0);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('15s')).toBe(15_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(() => parseDuration('10')).toThrow(SpecError);
  });
});
