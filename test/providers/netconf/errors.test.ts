import { describe, expect, it } from 'vitest';
import { checkReply, parseRpcErrors, RpcError } from '../../../providers/netconf/client/errors.js';
import { NC_NS, parseXml } from '../../../providers/netconf/client/xml.js';
import { ProviderError } from '../../../src/errors.js';

const reply = (errors: string): ReturnType<typeof parseXml> => parseXml(`<rpc-reply xmlns="${NC_NS}" message-id="1">${errors}</rpc-reply>`);

describe('rpc-error', () => {
  it('parses every field, error-info children included', () => {
    const r = reply(`<rpc-error><error-type>protocol</error-type><error-tag>lock-denied</error-tag><error-severity>error</error-severity><error-app-tag>x-app</error-app-tag><error-path xmlns:if="urn:if">/if:interfaces</error-path><error-message xml:lang="en">Lock failed, lock already held</error-message><error-info><session-id>454</session-id></error-info></rpc-error>`);
    expect(parseRpcErrors(r)).toEqual([{ type: 'protocol', tag: 'lock-denied', severity: 'error', appTag: 'x-app', path: '/if:interfaces', message: 'Lock failed, lock already held', info: expect.objectContaining({ 'session-id': '454' }) }]);
    const err = (() => {
      try {
        checkReply('sw1', 'lock running', r);
      } catch (e) {
        return e as RpcError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.code).toBe('PLUMB_PROVIDER');
    expect([err.tag, err.type, err.severity, err.appTag, err.path, err.errorMessage, err.info['session-id']]).toEqual(['lock-denied', 'protocol', 'error', 'x-app', '/if:interfaces', 'Lock failed, lock already held', '454']);
    expect(err.message).toBe('netconf sw1: lock running failed: lock-denied (protocol): Lock failed, lock already held: at /if:interfaces: app-tag x-app: [session-id=454]');
  });

  it('retryable only for in-use, lock-denied, resource-denied', () => {
    const tags = ['in-use', 'lock-denied', 'resource-denied', 'invalid-value', 'too-big', 'access-denied', 'operation-failed', 'data-missing', 'malformed-message', 'rollback-failed'];
    const retryable = tags.filter((tag) => new RpcError('t', 'x', [{ type: 'rpc', tag, severity: 'error', info: Object.create(null) as Record<string, string> }]).retryable);
    expect(retryable).toEqual(['in-use', 'lock-denied', 'resource-denied']);
  });

  it('warnings alone are not errors; several errors are all reported', () => {
    expect(() => checkReply('t', 'commit', reply('<rpc-error><error-type>application</error-type><error-tag>operation-failed</error-tag><error-severity>warning</error-severity></rpc-error><ok/>'))).not.toThrow();
    const two = reply('<rpc-error><error-type>application</error-type><error-tag>invalid-value</error-tag><error-severity>error</error-severity><error-path>/a</error-path></rpc-error><rpc-error><error-type>application</error-type><error-tag>missing-element</error-tag><error-severity>error</error-severity><error-info><bad-element>name</bad-element></error-info></rpc-error>');
    expect(() => checkReply('t', 'edit-config', two)).toThrow(/invalid-value \(application\): at \/a; missing-element \(application\): \[bad-element=name\]/);
  });

  it('an rpc-error with missing fields still makes a terminal error; long texts are clipped', () => {
    const err = new RpcError('t', 'x', parseRpcErrors(reply(`<rpc-error><error-message>${'m'.repeat(1000)}</error-message></rpc-error>`)));
    expect(err.tag).toBe('operation-failed');
    expect(err.retryable).toBe(false);
    expect(err.message.length).toBeLessThan(400);
  });
});
