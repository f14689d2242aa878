/**
 * The entity store applies a burst of socket events as one change: every
 * item merged in order (the later event of the same case wins), subscribers
 * told once, so the board sorts and renders once per batch.
 */
import { describe, expect, it } from 'vitest';
import { EntityStore } from '../src/store/entities';

describe('EntityStore.upsertMany', () => {
  it('should merge every item in order and notify once', () => {
    const s = new EntityStore<{ id: string; status: string; note?: string }>();
    s.setAll([{ id: 'a', status: 'reported', note: 'kept' }]);
    let calls = 0;
    s.subscribe(() => calls++);
    const v = s.version;
    s.upsertMany([{ id: 'a', status: 'registered' }, { id: 'b', status: 'reported' }, { id: 'a', status: 'dispatched' }]);
    expect(calls).toBe(1);
    expect(s.version).toBe(v + 1);
    expect(s.get('a')).toEqual({ id: 'a', status: 'dispatched', note: 'kept' });
    expect(s.list().map((x) => x.id).sort()).toEqual(['a', 'b']);
    s.upsertMany([]);
    expect(calls).toBe(1);
  });
});
