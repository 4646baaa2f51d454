import { describe, expect, it } from 'vitest';
import { codeOfAnswer, DroverError, ERRORS, type ErrorSpec } from './errors.ts';

describe('the error registry', () => {
  const entries = Object.entries(ERRORS) as [string, ErrorSpec][];

  it('gives every code the DROVER_ prefix, an HTTP status, a retryability and a message', () => {
    for (const [code, spec] of entries) {
      expect(code).toMatch(/^DROVER_[A-Z0-9]+(_[A-Z0-9]+)*$/);
      expect(Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599, code).toBe(true);
      expect(typeof spec.retryable, code).toBe('boolean');
      expect(spec.message.length, code).toBeGreaterThan(0);
    }
  });

  it('lists each code once, and at most one generic code per status', () => {
    const codes = entries.map(([code]) => code);
    expect(new Set(codes).size).toBe(codes.length);
    const generic = entries.filter(([, spec]) => spec.generic).map(([, spec]) => spec.status);
    expect(new Set(generic).size).toBe(generic.length);
  });

  it('takes retryability and message from the registry unless the construction says otherwise', () => {
    expect(new DroverError('DROVER_STORE_WRITE_FAILED').retryable).toBe(true);
    expect(new DroverError('DROVER_STORE_WRITE_FAILED', 'disk full', { retryable: false }).retryable).toBe(false);
    expect(new DroverError('DROVER_DATASET_NOT_FOUND').message).toBe(ERRORS.DROVER_DATASET_NOT_FOUND.message);
  });

  it('maps an error answer back to its code, or to the generic code of its status', () => {
    expect(codeOfAnswer(409, 'DROVER_LEASE_HELD')).toBe('DROVER_LEASE_HELD');
    expect(codeOfAnswer(404, 'FST_ERR_NOT_FOUND')).toBe('DROVER_NOT_FOUND');
    expect(codeOfAnswer(412, undefined)).toBe('DROVER_CONFIGURATION_CHANGED');
    expect(codeOfAnswer(502, undefined)).toBe('DROVER_CONTROL_ERROR');
    expect(codeOfAnswer(418, undefined)).toBe('DROVER_CONTROL_HTTP');
  });
});
