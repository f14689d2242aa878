/**
 * Uplink decoding: bytes on a channel -> normalised messages, or a coded rejection.
 *
 * Hot path (10k+ msg/s): one JSON.parse, one compiled TypeBox Check per item, no closures
 * per message. TypeBox `Errors()` runs only after a failed Check, to build the detail.
 */
import { ValueErrorType } from '@sinclair/typebox/errors';
import type { TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { catalogue, type DeviceType, type MetricDef } from './catalogue.js';
import { checkers, type AlertBody, type CaseAction, type CaseProgressBody, type EventBody, type LocationItem, type ReportBody, type Severity, type StatusBody, type TelemetryItem } from './schemas.js';
import { CHANNELS, type Channel } from './topics.js';

export type Normalised =
  | { channel: 'telemetry'; ts: number; seq?: number; values: Record<string, number | boolean | string> }
  | { channel: 'event'; ts: number; seq?: number; type: string; severity?: Severity; data?: Record<string, unknown> }
  | {
      channel: 'alert';
      ts: number;
      seq?: number;
      type: string;
      confidence?: number;
      /** decoded JPEG bytes */
      snapshot?: Uint8Array;
      snapshotUrl?: string;
      objects?: unknown[];
    }
  | {
      channel: 'location';
      ts: number;
      seq?: number;
      lat: number;
      lon: number;
      acc?: number;
      alt?: number;
      spd?: number;
      hdg?: number;
      batt?: number;
      duty?: boolean;
    }
  | { channel: 'report'; ts: number; reportId: string; category: string; description?: string; lat: number; lon: number; photos?: Uint8Array[] }
  | { channel: 'case'; ts: number; caseId: string; action: CaseAction; note?: string; photos?: Uint8Array[] }
  | { channel: 'status'; ts: number; online: boolean; duty?: boolean };

export type NormalisedOf<C extends Channel> = Extract<Normalised, { channel: C }>;

export type RejectReason =
  | 'not_json'
  | 'schema'
  | 'ts_invalid'
  | 'ts_future'
  | 'unknown_metric'
  | 'out_of_range'
  | 'bad_image'
  | 'channel_not_allowed'
  | 'empty'
  | 'bad_text';

export type DecodeFailure = { ok: false; reason: RejectReason; detail: string };
export type DecodeResult = { ok: true; messages: Normalised[] } | DecodeFailure;

export interface DecodeContext {
  deviceType: DeviceType;
  /** epoch ms at which the hub received the message; also the ts of messages without one */
  receivedAt: number;
  /** how far ahead of receivedAt a ts may be; default 24 h (device clocks drift, time zones get mixed up) */
  maxFutureMs?: number;
}

export const DEFAULT_MAX_FUTURE_MS = 24 * 60 * 60 * 1000;
/** Anything earlier is a clock that never synced, or epoch seconds sent as milliseconds. */
export const MIN_TS = Date.UTC(2000, 0, 1);
const MAX_TS = 8.64e15;

// ---- per device type lookups, built once ---------------------------------------------------

interface TypeRuntime {
  channels: ReadonlySet<string>;
  metrics: ReadonlyMap<string, MetricDef>;
}

const runtimes: ReadonlyMap<string, TypeRuntime> = new Map(
  Object.values(catalogue).map((def) => [
    def.type,
    { channels: new Set<string>(def.channels), metrics: new Map(def.metrics.map((metric) => [metric.name, metric])) },
  ]),
);
const CHANNEL_SET: ReadonlySet<string> = new Set(CHANNELS);

// ---- failures ------------------------------------------------------------------------------

function fail(reason: RejectReason, detail: string): DecodeFailure {
  return { ok: false, reason, detail };
}

const RANGE_ERRORS: ReadonlySet<ValueErrorType> = new Set([
  ValueErrorType.NumberMinimum,
  ValueErrorType.NumberMaximum,
  ValueErrorType.NumberExclusiveMinimum,
  ValueErrorType.NumberExclusiveMaximum,
  ValueErrorType.IntegerMinimum,
  ValueErrorType.IntegerMaximum,
  ValueErrorType.IntegerExclusiveMinimum,
  ValueErrorType.IntegerExclusiveMaximum,
]);

/** Only called after a failed Check: walks the errors once for the first one. */
function schemaFailure(checker: TypeCheck<TSchema>, value: unknown, path: string): DecodeFailure {
  const first = checker.Errors(value).First();
  if (!first) return fail('schema', `${path || '/'}: invalid`);
  const reason: RejectReason = RANGE_ERRORS.has(first.type) ? 'out_of_range' : 'schema';
  let message = first.message;
  // "Expected union value" alone does not help a device vendor; name the allowed literals.
  const options = (first.schema as { anyOf?: { const?: unknown }[] }).anyOf;
  if (options && options.every((o) => typeof o.const === 'string')) message += ` (one of ${options.map((o) => o.const).join(', ')})`;
  return fail(reason, `${path}${first.path || (path ? '' : '/')}: ${message}`);
}

// ---- timestamps ----------------------------------------------------------------------------

const ISO_EXTENDED =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)$/i;
// Basic format, as Huawei IoTDA sends it: 20151212T121212Z
const ISO_BASIC = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?(?:[.,](\d{1,9}))?(Z|[+-]\d{2}(?:\d{2})?)$/i;

function parseIso(s: string): number | null {
  const g = ISO_EXTENDED.exec(s) ?? ISO_BASIC.exec(s);
  if (!g) return null;
  const year = +g[1]!;
  const month = +g[2]!;
  const day = +g[3]!;
  const hour = +g[4]!;
  const minute = +g[5]!;
  const second = g[6] ? +g[6] : 0;
  const ms = g[7] ? Math.floor(+`0.${g[7]}` * 1000) : 0;
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return null;
  let offsetMin = 0;
  const zone = g[8]!;
  if (zone !== 'Z' && zone !== 'z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = +digits.slice(0, 2);
    const om = digits.length > 2 ? +digits.slice(2, 4) : 0;
    if (oh > 14 || om > 59) return null;
    offsetMin = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMin * 60_000;
}

/**
 * Resolves a payload `ts` to epoch ms: absent -> receivedAt; a number is epoch ms (from
 * 2000-01-01, fractions truncated); a string is ISO-8601 date-time with a zone (Z or
 * ±hh:mm; extended or basic format). A zone-less time is rejected rather than guessed:
 * a hub and a device in different zones would silently disagree by hours.
 */
export function parseTs(ts: unknown, receivedAt: number): number | null {
  let out: number | null;
  if (ts === undefined) return receivedAt;
  if (typeof ts === 'number') out = ts;
  else if (typeof ts === 'string') out = parseIso(ts);
  else return null;
  if (out === null || !Number.isFinite(out) || out < MIN_TS || out > MAX_TS) return null;
  return Math.floor(out);
}

function resolveTs(raw: unknown, ctx: DecodeContext, path: string): number | DecodeFailure {
  const ts = parseTs(raw, ctx.receivedAt);
  if (ts === null) {
    return fail('ts_invalid', `${path}/ts: ${JSON.stringify(raw)} is not epoch ms (>= 2000-01-01) or ISO-8601 with a zone`);
  }
  const maxFuture = ctx.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;
  if (ts > ctx.receivedAt + maxFuture) {
    return fail('ts_future', `${path}/ts: ${new Date(ts).toISOString()} is more than ${maxFuture} ms ahead of receipt`);
  }
  return ts;
}

// ---- images --------------------------------------------------------------------------------

type BufferLike = { from(s: string, enc: 'base64'): Uint8Array };
// Buffer when on Node (fast, native); atob elsewhere so the console can import this package.
const NodeBuffer = (globalThis as { Buffer?: BufferLike }).Buffer;

function base64ToBytes(s: string): Uint8Array | null {
  if (s.startsWith('data:')) {
    const comma = s.indexOf(',');
    if (comma < 0 || !s.slice(0, comma).endsWith(';base64')) return null;
    s = s.slice(comma + 1);
  }
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 61 /* = */) end--;
  if (end % 4 === 1 || s.length - end > 2) return null;
  const expected = Math.floor((end * 3) / 4);
  if (NodeBuffer) {
    // Buffer skips characters outside the alphabet; a short result means the input had some.
    const bytes = NodeBuffer.from(s, 'base64');
    return bytes.length === expected ? bytes : null;
  }
  try {
    const bin = atob(s);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

function isJpeg(b: Uint8Array): boolean {
  // SOI (FF D8) followed by the next marker's FF
  return b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

function isPng(b: Uint8Array): boolean {
  return (
    b.length >= 8 &&
    b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 &&
    b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a
  );
}

function decodeImage(s: string, allowPng: boolean, path: string): Uint8Array | DecodeFailure {
  const bytes = base64ToBytes(s);
  if (!bytes) return fail('bad_image', `${path}: not valid base64`);
  if (isJpeg(bytes) || (allowPng && isPng(bytes))) return bytes;
  return fail('bad_image', `${path}: not a ${allowPng ? 'JPEG or PNG' : 'JPEG'} image`);
}

function decodePhotos(photos: string[], path: string): Uint8Array[] | DecodeFailure {
  const out: Uint8Array[] = [];
  for (let i = 0; i < photos.length; i++) {
    const img = decodeImage(photos[i]!, true, `${path}/photos/${i}`);
    if (img instanceof Uint8Array) out.push(img);
    else return img;
  }
  return out;
}

function isFailure(x: unknown): x is DecodeFailure {
  return typeof x === 'object' && x !== null && (x as { ok?: unknown }).ok === false;
}

// ---- channels ------------------------------------------------------------------------------

function telemetryItem(raw: unknown, rt: TypeRuntime, ctx: DecodeContext, path: string, out: Normalised[]): DecodeFailure | undefined {
  if (!checkers.telemetry.Check(raw)) return schemaFailure(checkers.telemetry, raw, path);
  const item: TelemetryItem = raw;
  const ts = resolveTs(item.ts, ctx, path);
  if (typeof ts !== 'number') return ts;
  const values = item.values;
  let count = 0;
  for (const name in values) {
    count++;
    const v = values[name]!;
    const metric = rt.metrics.get(name);
    if (metric === undefined) return fail('unknown_metric', `${path}/values/${name}: not a metric of ${ctx.deviceType}`);
    if (typeof v !== metric.kind) return fail('schema', `${path}/values/${name}: expected ${metric.kind}, got ${typeof v}`);
    if (typeof v === 'number' && ((metric.min !== undefined && v < metric.min) || (metric.max !== undefined && v > metric.max))) {
      return fail('out_of_range', `${path}/values/${name}: ${v} ${metric.unit} is outside ${metric.min ?? '-∞'}..${metric.max ?? '∞'}`);
    }
  }
  if (count === 0) return fail('empty', `${path}/values: no metrics`);
  // values comes straight from JSON.parse: a fresh object nobody else holds, safe to hand on.
  out.push(item.seq === undefined ? { channel: 'telemetry', ts, values } : { channel: 'telemetry', ts, seq: item.seq, values });
  return undefined;
}

function locationItem(raw: unknown, ctx: DecodeContext, path: string, out: Normalised[]): DecodeFailure | undefined {
  if (!checkers.location.Check(raw)) return schemaFailure(checkers.location, raw, path);
  const item: LocationItem = raw;
  if (item.lat === 0 && item.lon === 0) return fail('out_of_range', `${path}: (0, 0) is a GPS without a fix, not a position`);
  const ts = resolveTs(item.ts, ctx, path);
  if (typeof ts !== 'number') return ts;
  const msg: NormalisedOf<'location'> = { channel: 'location', ts, lat: item.lat, lon: item.lon };
  if (item.seq !== undefined) msg.seq = item.seq;
  if (item.acc !== undefined) msg.acc = item.acc;
  if (item.alt !== undefined) msg.alt = item.alt;
  if (item.spd !== undefined) msg.spd = item.spd;
  if (item.hdg !== undefined) msg.hdg = item.hdg;
  if (item.batt !== undefined) msg.batt = item.batt;
  if (item.duty !== undefined) msg.duty = item.duty;
  out.push(msg);
  return undefined;
}

function eventBody(raw: unknown, ctx: DecodeContext): DecodeResult {
  if (!checkers.event.Check(raw)) return schemaFailure(checkers.event, raw, '');
  const body: EventBody = raw;
  const ts = resolveTs(body.ts, ctx, '');
  if (typeof ts !== 'number') return ts;
  const msg: NormalisedOf<'event'> = { channel: 'event', ts, type: body.type };
  if (body.seq !== undefined) msg.seq = body.seq;
  if (body.severity !== undefined) msg.severity = body.severity;
  if (body.data !== undefined) msg.data = body.data;
  return { ok: true, messages: [msg] };
}

function alertBody(raw: unknown, ctx: DecodeContext): DecodeResult {
  if (!checkers.alert.Check(raw)) return schemaFailure(checkers.alert, raw, '');
  const body: AlertBody = raw;
  const ts = resolveTs(body.ts, ctx, '');
  if (typeof ts !== 'number') return ts;
  const msg: NormalisedOf<'alert'> = { channel: 'alert', ts, type: body.type };
  if (body.seq !== undefined) msg.seq = body.seq;
  if (body.confidence !== undefined) msg.confidence = body.confidence;
  if (body.snapshot !== undefined) {
    const img = decodeImage(body.snapshot, false, '/snapshot');
    if (isFailure(img)) return img;
    msg.snapshot = img;
  }
  if (body.snapshotUrl !== undefined) msg.snapshotUrl = body.snapshotUrl;
  if (body.objects !== undefined) msg.objects = body.objects;
  return { ok: true, messages: [msg] };
}

function reportBody(raw: unknown, ctx: DecodeContext): DecodeResult {
  if (!checkers.report.Check(raw)) return schemaFailure(checkers.report, raw, '');
  const body: ReportBody = raw;
  if (body.lat === 0 && body.lon === 0) return fail('out_of_range', '/: (0, 0) is a GPS without a fix, not a position');
  const ts = resolveTs(body.ts, ctx, '');
  if (typeof ts !== 'number') return ts;
  const msg: NormalisedOf<'report'> = { channel: 'report', ts, reportId: body.reportId, category: body.category, lat: body.lat, lon: body.lon };
  if (body.description !== undefined) msg.description = body.description;
  return withPhotos(msg, body.photos);
}

function caseBody(raw: unknown, ctx: DecodeContext): DecodeResult {
  if (!checkers.case.Check(raw)) return schemaFailure(checkers.case, raw, '');
  const body: CaseProgressBody = raw;
  const ts = resolveTs(body.ts, ctx, '');
  if (typeof ts !== 'number') return ts;
  const msg: NormalisedOf<'case'> = { channel: 'case', ts, caseId: body.caseId, action: body.action };
  if (body.note !== undefined) msg.note = body.note;
  return withPhotos(msg, body.photos);
}

/** Reports and case progress carry the same optional base64 `photos`: decode them onto the message. */
function withPhotos(msg: NormalisedOf<'report'> | NormalisedOf<'case'>, photos: string[] | undefined): DecodeResult {
  if (photos !== undefined) {
    const decoded = decodePhotos(photos, '');
    if (isFailure(decoded)) return decoded;
    msg.photos = decoded;
  }
  return { ok: true, messages: [msg] };
}

function statusBody(raw: unknown, ctx: DecodeContext): DecodeResult {
  if (!checkers.status.Check(raw)) return schemaFailure(checkers.status, raw, '');
  const body: StatusBody = raw;
  const ts = resolveTs(body.ts, ctx, '');
  if (typeof ts !== 'number') return ts;
  const msg: NormalisedOf<'status'> = { channel: 'status', ts, online: body.online };
  if (body.duty !== undefined) msg.duty = body.duty;
  return { ok: true, messages: [msg] };
}

function decodeChannel(channel: Channel, value: unknown, rt: TypeRuntime, ctx: DecodeContext): DecodeResult {
  switch (channel) {
    case 'telemetry':
    case 'location': {
      const messages: Normalised[] = [];
      if (Array.isArray(value)) {
        if (value.length === 0) return fail('empty', '/: empty array');
        for (let i = 0; i < value.length; i++) {
          const err =
            channel === 'telemetry'
              ? telemetryItem(value[i], rt, ctx, `/${i}`, messages)
              : locationItem(value[i], ctx, `/${i}`, messages);
          if (err) return err;
        }
      } else {
        const err = channel === 'telemetry' ? telemetryItem(value, rt, ctx, '', messages) : locationItem(value, ctx, '', messages);
        if (err) return err;
      }
      return { ok: true, messages };
    }
    case 'event':
      return eventBody(value, ctx);
    case 'alert':
      return alertBody(value, ctx);
    case 'report':
      return reportBody(value, ctx);
    case 'case':
      return caseBody(value, ctx);
    case 'status':
      return statusBody(value, ctx);
  }
}

function allowed(channel: string, ctx: DecodeContext): TypeRuntime | DecodeFailure {
  const rt = runtimes.get(ctx.deviceType);
  if (rt === undefined) return fail('channel_not_allowed', `unknown device type ${JSON.stringify(ctx.deviceType)}`);
  if (!CHANNEL_SET.has(channel)) return fail('channel_not_allowed', `unknown channel ${JSON.stringify(channel)}`);
  if (!rt.channels.has(channel)) return fail('channel_not_allowed', `${ctx.deviceType} does not publish on ${channel}`);
  return rt;
}

// ---- text PostgreSQL cannot store -------------------------------------------------------

const SUSPECT_TEXT = /[\u0000\ud800-\udfff]/;

/**
 * PostgreSQL `text` and `jsonb` hold neither U+0000 nor a lone UTF-16 surrogate (both
 * reach a JSON string only as a `\u` escape). Such a message can never be committed, so
 * it is refused here, before it can share a batch with good ones.
 */
export function unstorableText(s: string): string | null {
  if (!SUSPECT_TEXT.test(s)) return null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) return 'U+0000';
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return 'a lone surrogate';
    }
    if (c >= 0xdc00 && c <= 0xdfff) return 'a lone surrogate';
  }
  return null;
}

/** Walks every string and key of a parsed value (iteratively: nesting depth is the sender's choice). */
function badTextIn(value: unknown): DecodeFailure | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const what = unstorableText(v);
      if (what) return fail('bad_text', `${path || '/'}: contains ${what}, which cannot be stored`);
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push([v[i], `${path}/${i}`]);
    } else if (v !== null && typeof v === 'object') {
      for (const key in v) {
        const what = unstorableText(key);
        if (what) return fail('bad_text', `${path}/${key.replace(/[^\x20-\x7e]/g, '?')}: key contains ${what}, which cannot be stored`);
        stack.push([(v as Record<string, unknown>)[key], `${path}/${key}`]);
      }
    }
  }
  return undefined;
}

// ---- entry points --------------------------------------------------------------------------

// fatal: invalid UTF-8 is a bad payload, not something to paper over with U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Payload bytes -> parsed JSON, or not_json / empty. Shared with the codecs. */
export function readJson(payload: Uint8Array | string): { ok: true; value: unknown } | DecodeFailure {
  if (payload.length === 0) return fail('empty', 'empty payload');
  let text: string;
  try {
    text = typeof payload === 'string' ? payload : utf8.decode(payload);
  } catch {
    return fail('not_json', 'payload is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    return fail('not_json', (err as Error).message);
  }
  // Bytes that are valid UTF-8 carry U+0000 or a surrogate only as a \u escape: skip
  // the walk for the usual payload without one. A JS string may carry them raw.
  if (typeof payload === 'string' || text.includes('\\u')) {
    const bad = badTextIn(value);
    if (bad) return bad;
  }
  return { ok: true, value };
}

/**
 * Decodes a value that is already parsed (an HTTP ingest body, a codec's mapped output)
 * exactly as decodeUplink would. Never throws.
 */
export function decodeValue(channel: Channel, value: unknown, ctx: DecodeContext): DecodeResult {
  try {
    const rt = allowed(channel, ctx);
    if (isFailure(rt)) return rt;
    const bad = badTextIn(value);
    if (bad) return bad;
    return decodeChannel(channel, value, rt, ctx);
  } catch (err) {
    return fail('schema', `decoder error: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** Decodes one uplink payload (CONTRACT section 3). Never throws. */
export function decodeUplink(channel: Channel, payload: Uint8Array | string, ctx: DecodeContext): DecodeResult {
  try {
    // Check the channel before paying for JSON.parse.
    const rt = allowed(channel, ctx);
    if (isFailure(rt)) return rt;
    const parsed = readJson(payload);
    if (!parsed.ok) return parsed;
    return decodeChannel(channel, parsed.value, rt, ctx);
  } catch (err) {
    return fail('schema', `decoder error: ${(err as Error)?.message ?? String(err)}`);
  }
}
