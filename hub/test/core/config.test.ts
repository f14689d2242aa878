import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../../src/core/config.js';

describe('loadConfig', () => {
  it('should give defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ host: '0.0.0.0', mqttPort: 1883, httpPort: 8080, dataDir: './data', maxPayload: 1024 * 1024 });
    expect(c.databaseUrl).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('should name every bad setting at once', () => {
    try {
      loadConfig({ GRIDLINK_MQTT_PORT: 'abc', GRIDLINK_HTTP_PORT: '70000', DATABASE_URL: 'mysql://x', GRIDLINK_LOG_LEVEL: 'loud', GRIDLINK_TLS_CERT: '/x.pem' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      for (const name of ['GRIDLINK_MQTT_PORT', 'GRIDLINK_HTTP_PORT', 'DATABASE_URL', 'GRIDLINK_LOG_LEVEL', 'GRIDLINK_TLS_KEY']) expect(problems).toContain(name);
      expect((err as ConfigError).problems).toHaveLength(5);
    }
  });

  it('should describe every field', () => {
    for (const f of describeConfig()) expect(f.description.length).toBeGreaterThan(5);
  });
});
