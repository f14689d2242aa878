/**
 * OwnTracks JSON (https://owntracks.org/booklet/tech/json/), published by a handheld to
 * owntracks/{deviceId}/{anything}. Only `_type: "location"` carries a position; the other
 * types (transition, lwt, waypoint, card, cmd, encrypted ...) decode to no messages.
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { decodeValue, readJson, type DecodeContext, type DecodeResult } from '../decode.js';
import type { LocationItem } from '../schemas.js';
import type { Codec } from './codec.js';

const Envelope = TypeCompiler.Compile(Type.Object({ _type: Type.String() }));
const Location = TypeCompiler.Compile(
  Type.Object({
    _type: Type.Literal('location'),
    lat: Type.Number(),
    lon: Type.Number(),
    tst: Type.Number({ description: 'epoch seconds' }),
    acc: Type.Optional(Type.Number()),
    alt: Type.Optional(Type.Number()),
    batt: Type.Optional(Type.Number()),
    vel: Type.Optional(Type.Number({ description: 'km/h' })),
    cog: Type.Optional(Type.Number({ description: 'degrees' })),
  }),
);

function firstError(check: typeof Envelope | typeof Location, value: unknown): string {
  const e = check.Errors(value).First();
  return e ? `${e.path || '/'}: ${e.message}` : '/: invalid';
}

function decode(payload: Uint8Array | string, ctx: DecodeContext): DecodeResult {
  const parsed = readJson(payload);
  if (!parsed.ok) return parsed;
  const v = parsed.value;
  if (!Envelope.Check(v)) return { ok: false, reason: 'schema', detail: `owntracks ${firstError(Envelope, v)}` };
  if (v._type !== 'location') return { ok: true, messages: [] };
  if (!Location.Check(v)) return { ok: false, reason: 'schema', detail: `owntracks ${firstError(Location, v)}` };
  const item: LocationItem = { ts: v.tst * 1000, lat: v.lat, lon: v.lon };
  if (v.acc !== undefined) item.acc = v.acc;
  if (v.alt !== undefined) item.alt = v.alt;
  if (v.batt !== undefined) item.batt = v.batt;
  if (v.vel !== undefined) item.spd = v.vel / 3.6;
  // OwnTracks iOS sends cog -1 when the course is unknown.
  if (v.cog !== undefined && v.cog >= 0) item.hdg = v.cog;
  return decodeValue('location', item, ctx);
}

export const owntracks: Codec = { name: 'owntracks', decode };
