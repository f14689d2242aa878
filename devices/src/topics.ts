/**
 * MQTT topic map (CONTRACT section 3).
 *
 *   gridlink/v1/{deviceId}/{channel}   uplink, device -> hub
 *   gridlink/v1/{deviceId}/cmd         downlink, hub -> device (QoS 1)
 *   owntracks/{deviceId}/{anything}    OwnTracks compatibility (handhelds)
 */

export const TOPIC_PREFIX = 'gridlink/v1';

export type Channel = 'telemetry' | 'event' | 'alert' | 'location' | 'report' | 'case' | 'status';

export const CHANNELS: readonly Channel[] = Object.freeze([
  'telemetry',
  'event',
  'alert',
  'location',
  'report',
  'case',
  'status',
] as const);

/** CONTRACT section 2. Excludes '/', '+', '#' so an id can never widen a topic filter. */
export const DEVICE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const CHANNEL_SET: ReadonlySet<string> = new Set(CHANNELS);
const UPLINK_HEAD = `${TOPIC_PREFIX}/`;
const OWNTRACKS_HEAD = 'owntracks/';
const COMMAND_LEAF = 'cmd';

export function isDeviceId(s: string): boolean {
  return DEVICE_ID_RE.test(s);
}

export function isChannel(s: string): s is Channel {
  return CHANNEL_SET.has(s);
}

function assertDeviceId(deviceId: string): void {
  // Building a topic from a bad id would publish to someone else's (or a wildcard) topic.
  if (!DEVICE_ID_RE.test(deviceId)) throw new RangeError(`invalid device id: ${JSON.stringify(deviceId)}`);
}

/** `gridlink/v1/{deviceId}/{channel}`; throws RangeError on an invalid id or channel. */
export function uplinkTopic(deviceId: string, channel: Channel): string {
  assertDeviceId(deviceId);
  if (!CHANNEL_SET.has(channel)) throw new RangeError(`invalid channel: ${JSON.stringify(channel)}`);
  return UPLINK_HEAD + deviceId + '/' + channel;
}

/** `gridlink/v1/{deviceId}/cmd`; throws RangeError on an invalid id. */
export function commandTopic(deviceId: string): string {
  assertDeviceId(deviceId);
  return UPLINK_HEAD + deviceId + '/' + COMMAND_LEAF;
}

export type ParsedTopic =
  | { kind: 'uplink'; deviceId: string; channel: Channel }
  | { kind: 'command'; deviceId: string }
  | { kind: 'owntracks'; deviceId: string; rest: string }
  | { kind: 'invalid'; reason: 'prefix' | 'device_id' | 'channel' };

// Shared frozen results: parseTopic runs for every publish, invalid ones included.
const INVALID_PREFIX: ParsedTopic = Object.freeze({ kind: 'invalid', reason: 'prefix' });
const INVALID_DEVICE_ID: ParsedTopic = Object.freeze({ kind: 'invalid', reason: 'device_id' });
const INVALID_CHANNEL: ParsedTopic = Object.freeze({ kind: 'invalid', reason: 'channel' });

/**
 * Classifies a topic with plain string operations; the only regex is the device id check.
 * A trailing or extra level (`.../telemetry/x`) is an invalid channel, never a prefix match.
 */
export function parseTopic(topic: string): ParsedTopic {
  if (topic.startsWith(UPLINK_HEAD)) {
    const slash = topic.indexOf('/', UPLINK_HEAD.length);
    if (slash < 0) {
      return DEVICE_ID_RE.test(topic.slice(UPLINK_HEAD.length)) ? INVALID_CHANNEL : INVALID_DEVICE_ID;
    }
    const deviceId = topic.slice(UPLINK_HEAD.length, slash);
    if (!DEVICE_ID_RE.test(deviceId)) return INVALID_DEVICE_ID;
    const leaf = topic.slice(slash + 1);
    if (leaf === COMMAND_LEAF) return { kind: 'command', deviceId };
    if (CHANNEL_SET.has(leaf)) return { kind: 'uplink', deviceId, channel: leaf as Channel };
    return INVALID_CHANNEL;
  }
  if (topic.startsWith(OWNTRACKS_HEAD)) {
    // OwnTracks publishes to owntracks/{user}/{device}[/event|/info|...]; the MQTT user is our device id.
    const slash = topic.indexOf('/', OWNTRACKS_HEAD.length);
    const deviceId = slash < 0 ? topic.slice(OWNTRACKS_HEAD.length) : topic.slice(OWNTRACKS_HEAD.length, slash);
    if (!DEVICE_ID_RE.test(deviceId)) return INVALID_DEVICE_ID;
    if (slash < 0 || slash === topic.length - 1) return INVALID_CHANNEL;
    return { kind: 'owntracks', deviceId, rest: topic.slice(slash + 1) };
  }
  return INVALID_PREFIX;
}
