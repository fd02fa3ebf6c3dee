import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuplicateCache } from '../../src/radius/dedupe.ts';
import { FakeClock } from '../../src/util/clock.ts';

describe('RADIUS duplicate cache', () => {
  it('keys on source address, port, Identifier and Request Authenticator', () => {
    const auth = Buffer.alloc(16, 7);
    assert.equal(DuplicateCache.key('127.0.0.1', 5000, 9, auth), `127.0.0.1|5000|9|${'07'.repeat(16)}`);
    assert.notEqual(DuplicateCache.key('127.0.0.1', 5001, 9, auth), DuplicateCache.key('127.0.0.1', 5000, 9, auth));
  });

  it('pending → cached reply → expired; abandoned requests are processed again', () => {
    const clock = new FakeClock();
    const cache = new DuplicateCache(clock, 30_000, 100);
    assert.equal(cache.begin('a'), 'new');
    assert.equal(cache.begin('a'), 'pending');
    cache.complete('a', Buffer.from('reply-a'));
    assert.deepEqual(cache.begin('a'), Buffer.from('reply-a'));
    clock.advance(30_000);
    assert.equal(cache.begin('a'), 'new');
    cache.abandon('a');
    assert.equal(cache.begin('a'), 'new');
  });

  it('stays bounded, evicting oldest replies first, but keeps requests in progress', () => {
    const clock = new FakeClock();
    const cache = new DuplicateCache(clock, 30_000, 10);
    assert.equal(cache.begin('in-progress'), 'new');
    for (let i = 0; i < 50; i++) {
      assert.equal(cache.begin(`k${i}`), 'new');
      cache.complete(`k${i}`, Buffer.from([i]));
    }
    assert.ok(cache.size <= 20);
    assert.equal(cache.begin('in-progress'), 'pending');
    assert.equal(cache.begin('k0'), 'new');
    assert.deepEqual(cache.begin('k49'), Buffer.from([49]));
  });
});
