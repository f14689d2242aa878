import type { DecodeContext, DecodeResult } from '../decode.js';

/**
 * A foreign payload format. decode is a small pure function that maps the format onto
 * the GridLink contract and then validates through decodeValue, so every codec gets the
 * same ranges, ts rules and reject reasons as native payloads. It never throws.
 */
export interface Codec {
  readonly name: string;
  decode(payload: Uint8Array | string, ctx: DecodeContext): DecodeResult;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
