import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/core/metrics.js';

describe('Tally', () => {
  it('should show every message counted since the last read, by label, and count each once', async () => {
    const metrics = createMetrics();
    metrics.messagesIn.add('telemetry');
    metrics.messagesIn.add('telemetry');
    metrics.messagesIn.add('location');
    metrics.messagesStored.add('telemetry', 5);
    let text = await metrics.registry.metrics();
    expect(text).toContain('gridlink_messages_in_total{channel="telemetry"} 2');
    expect(text).toContain('gridlink_messages_in_total{channel="location"} 1');
    expect(text).toContain('gridlink_messages_stored_total{channel="telemetry"} 5');
    metrics.messagesIn.add('telemetry');
    text = await metrics.registry.metrics();
    expect(text).toContain('gridlink_messages_in_total{channel="telemetry"} 3');
    expect(text).toContain('gridlink_messages_in_total{channel="location"} 1');
    expect((await metrics.messagesIn.counter.get()).values.find((v) => v.labels.channel === 'telemetry')?.value).toBe(3);
  });
});
