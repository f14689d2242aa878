/**
 * Every body, query string, path parameter and answer of a documented route
 * is one of the contract's schemas (docs/contract.md section 7), so an
 * integrator reading `@gridlink/devices/contract` reads what the hub
 * validates and serialises. A schema built inside a hub route (a new field
 * the contract does not carry) fails here. Hidden routes (`hide: true`: the
 * signed media URLs) and the shared error reference are exempt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as contract from '@gridlink/devices/contract';
import { createHub, type Hub } from '../../src/hub.js';
import { testConfig } from '../../src/core/config.js';
import { sealSchema } from '../../src/http/app.js';

const json = (s: unknown) => JSON.stringify(s);
/** The contract's schemas as JSON, bare and as the hub validates a body (sealed: unknown fields refused), and as list pages. */
function contractSchemas(): Set<string> {
  const known = new Set<string>();
  for (const v of Object.values(contract)) {
    if (!v || typeof v !== 'object' || Array.isArray(v) || !('type' in v || 'anyOf' in v || 'allOf' in v)) continue;
    const sealed = structuredClone(v);
    sealSchema(sealed);
    for (const s of [v, sealed]) {
      known.add(json(s));
      known.add(json(contract.Page(s as never)));
    }
  }
  return known;
}
const exempt = (s: unknown) => json(s) === json({ $ref: 'Error' }) || json(s) === json({ type: 'null' });

interface Seen { route: string; part: string; schema: unknown }

describe('route schemas', () => {
  let hub: Hub;
  const seen: Seen[] = [];
  beforeAll(async () => {
    hub = await createHub(testConfig({ databaseUrl: 'memory://' }));
    hub.ctx.app.addHook('onRoute', (r) => {
      const s = r.schema as Record<string, unknown> | undefined;
      if (!s || s.hide) return;
      const route = `${String(r.method)} ${r.url}`;
      for (const part of ['body', 'querystring', 'params'] as const) if (s[part] !== undefined) seen.push({ route, part, schema: s[part] });
      for (const [code, schema] of Object.entries((s.response ?? {}) as Record<string, unknown>)) seen.push({ route, part: `response ${code}`, schema });
    });
    await hub.start();
  }, 60_000);
  afterAll(async () => {
    await hub?.stop();
  });

  it('should take every documented body, query, parameter and answer from the contract', () => {
    expect(seen.filter((s) => s.part === 'body').length).toBeGreaterThan(30);
    const known = contractSchemas();
    const own = seen.filter((s) => !exempt(s.schema) && !known.has(json(s.schema))).map((s) => `${s.route} ${s.part}`);
    expect(own).toEqual([]);
  });
});
