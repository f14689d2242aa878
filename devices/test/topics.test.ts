import { describe, expect, it } from 'vitest';
import { CHANNELS, DEVICE_ID_RE, TOPIC_PREFIX, commandTopic, isDeviceId, parseTopic, uplinkTopic } from '../src/index.js';

describe('isDeviceId', () => {
  it('should accept ids matching the contract pattern', () => {
    for (const id of ['a', 'WL-0001', 'cam_12.north', '9', 'x'.repeat(64)]) expect(isDeviceId(id)).toBe(true);
  });

  it('should reject empty, too long, wildcard and separator ids', () => {
    for (const id of ['', '-a', '.a', 'x'.repeat(65), 'a/b', 'a+b', 'a#', 'a b', '网格01']) expect(isDeviceId(id)).toBe(false);
    expect(DEVICE_ID_RE.source).toBe('^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');
  });
});

describe('uplinkTopic / commandTopic', () => {
  it('should build the contract topics', () => {
    expect(TOPIC_PREFIX).toBe('gridlink/v1');
    expect(uplinkTopic('WL-0001', 'telemetry')).toBe('gridlink/v1/WL-0001/telemetry');
    expect(commandTopic('HH-07')).toBe('gridlink/v1/HH-07/cmd');
  });

  it('should throw on an id that would change the topic shape', () => {
    expect(() => uplinkTopic('a/b', 'event')).toThrow(RangeError);
    expect(() => commandTopic('#')).toThrow(RangeError);
    expect(() => uplinkTopic('ok', 'cmd' as never)).toThrow(RangeError);
  });
});

describe('parseTopic', () => {
  it('should round trip every uplink channel', () => {
    for (const channel of CHANNELS) {
      expect(parseTopic(uplinkTopic('dev.1', channel))).toEqual({ kind: 'uplink', deviceId: 'dev.1', channel });
    }
  });

  it('should round trip the command topic', () => {
    expect(parseTopic(commandTopic('HH-07'))).toEqual({ kind: 'command', deviceId: 'HH-07' });
  });

  it('should parse OwnTracks topics with any rest', () => {
    expect(parseTopic('owntracks/HH-07/phone')).toEqual({ kind: 'owntracks', deviceId: 'HH-07', rest: 'phone' });
    expect(parseTopic('owntracks/HH-07/phone/event')).toEqual({ kind: 'owntracks', deviceId: 'HH-07', rest: 'phone/event' });
  });

  it('should reject foreign prefixes', () => {
    for (const t of ['', 'gridlink/v2/a/telemetry', 'gridlink/v1', 'GRIDLINK/v1/a/event', '$SYS/broker', '/gridlink/v1/a/event']) {
      expect(parseTopic(t)).toEqual({ kind: 'invalid', reason: 'prefix' });
    }
  });

  it('should reject bad device ids', () => {
    for (const t of ['gridlink/v1//telemetry', 'gridlink/v1/+/telemetry', 'gridlink/v1/#', 'gridlink/v1/', 'owntracks/+/phone', 'owntracks//phone']) {
      expect(parseTopic(t)).toEqual({ kind: 'invalid', reason: 'device_id' });
    }
  });

  it('should reject unknown, missing or extra channel levels', () => {
    for (const t of [
      'gridlink/v1/a',
      'gridlink/v1/a/',
      'gridlink/v1/a/video',
      'gridlink/v1/a/telemetry/x',
      'gridlink/v1/a/Telemetry',
      'gridlink/v1/a/cmd/x',
      'owntracks/a',
      'owntracks/a/',
    ]) {
      expect(parseTopic(t)).toEqual({ kind: 'invalid', reason: 'channel' });
    }
  });
});
