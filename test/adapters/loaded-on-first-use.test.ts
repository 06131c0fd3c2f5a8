import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadedOnFirstUse } from '../../functions/adapters/loaded-on-first-use';

interface Greeter {
  greet(name: string): Promise<string>;
  count(): Promise<number>;
}

describe('loadedOnFirstUse', () => {
  it('loads nothing until the first call, then loads once and forwards every call', async () => {
    let loads = 0;
    let calls = 0;
    const greeter = loadedOnFirstUse<Greeter>(async () => {
      loads += 1;
      return { greet: async (name) => `hello ${name}`, count: async () => (calls += 1) };
    });
    assert.equal(loads, 0);
    assert.deepEqual(await Promise.all([greeter.greet('a'), greeter.greet('b'), greeter.count()]), ['hello a', 'hello b', 1]);
    assert.equal(await greeter.count(), 2);
    assert.equal(loads, 1);
  });

  it('passes a failed load to the caller and tries again on the next call', async () => {
    let attempts = 0;
    const greeter = loadedOnFirstUse<Greeter>(async () => {
      attempts += 1;
      if (attempts === 1) throw new Error('module not ready');
      return { greet: async (name) => `hello ${name}`, count: async () => 0 };
    });
    await assert.rejects(greeter.greet('a'), /module not ready/);
    assert.equal(await greeter.greet('a'), 'hello a');
    assert.equal(attempts, 2);
  });
});
