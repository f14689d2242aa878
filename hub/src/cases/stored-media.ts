/**
 * Media bytes kept in the database, for a hub of several nodes
 * (docs/cluster.md, "Evidence and clips across nodes"): a file is cut into
 * parts of PART_BYTES, one row each, so a range is read from the parts it
 * covers and a whole clip goes out part by part, never held in memory as
 * one buffer. The single process keeps its files on disk and never writes
 * here (the embedded database does not grow with media).
 *
 * Used by the evidence store (`evidence_parts`) and the clip recorder
 * (`video_clip_parts`); each table's parts go with their row (on delete
 * cascade).
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { Queryable } from '../store/index.js';

/** Bytes per stored part. */
export const PART_BYTES = 1024 * 1024;

export interface StoredMedia {
  size: number;
  /** Bytes `start`..`end` (inclusive), read from the database part by part. */
  stream(start: number, end: number): Readable;
}

/** Cuts `source` into parts of exactly PART_BYTES (the last one shorter). */
async function* cut(source: Uint8Array | AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  if (source instanceof Uint8Array) {
    const all = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    for (let i = 0; i < all.length; i += PART_BYTES) yield all.subarray(i, i + PART_BYTES);
    return;
  }
  let pending = Buffer.alloc(0);
  for await (const chunk of source) {
    pending = pending.length ? Buffer.concat([pending, Buffer.from(chunk)]) : Buffer.from(chunk);
    while (pending.length >= PART_BYTES) {
      yield pending.subarray(0, PART_BYTES);
      pending = pending.subarray(PART_BYTES);
    }
  }
  if (pending.length) yield pending;
}

export class MediaParts {
  private readonly match: string;
  private readonly insert: string;

  /** `keys`: the key columns of `table` (besides `part` and `data`). */
  constructor(private readonly db: Queryable, private readonly table: string, private readonly keys: readonly string[]) {
    this.match = keys.map((k, i) => `${k} = $${i + 1}`).join(' and ');
    const cols = [...keys, 'part', 'data'];
    this.insert = `insert into ${table} (${cols.join(', ')}) values (${cols.map((_, i) => `$${i + 1}`).join(', ')})`;
  }

  /** Replaces the bytes under `key` with `source` (run it in the transaction that writes the owning row). Returns the bytes written. */
  async write(q: Queryable, key: readonly unknown[], source: Uint8Array | AsyncIterable<Uint8Array>): Promise<number> {
    await q.query(`delete from ${this.table} where ${this.match}`, [...key]);
    let part = 0;
    let total = 0;
    for await (const chunk of cut(source)) {
      await q.query(this.insert, [...key, part++, chunk]);
      total += chunk.length;
    }
    return total;
  }

  /** The bytes under `key`, or null when none are stored. */
  async open(key: readonly unknown[]): Promise<StoredMedia | null> {
    const r = (await this.db.query<{ n: number; bytes: string | number }>(
      `select count(*)::int as n, coalesce(sum(octet_length(data)), 0)::int8 as bytes from ${this.table} where ${this.match}`, [...key]))[0];
    if (!r?.n) return null;
    const size = Number(r.bytes);
    return { size, stream: (start, end) => Readable.from(this.range(key, start, end)) };
  }

  /** Every byte under `key` as one buffer (photos and snapshots; clips go out with stream()). */
  async read(key: readonly unknown[]): Promise<Buffer | null> {
    const m = await this.open(key);
    if (!m) return null;
    const chunks: Buffer[] = [];
    for await (const c of m.stream(0, m.size - 1)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async *range(key: readonly unknown[], start: number, end: number): AsyncGenerator<Buffer> {
    const n = key.length;
    for (let p = Math.floor(start / PART_BYTES); p <= Math.floor(end / PART_BYTES); p++) {
      const base = p * PART_BYTES;
      const from = Math.max(start, base) - base;
      const len = Math.min(end, base + PART_BYTES - 1) - base - from + 1;
      // substring() on an uncompressed (storage external) bytea reads only the chunks it needs.
      const row = (await this.db.query<{ data: Uint8Array | null }>(
        `select substring(data from $${n + 2} for $${n + 3}) as data from ${this.table} where ${this.match} and part = $${n + 1}`, [...key, p, from + 1, len]))[0];
      if (!row?.data) throw new Error(`${this.table}: part ${p} is missing`);
      yield Buffer.from(row.data);
    }
  }
}

/** Sends stored bytes as a file would be sent: `accept-ranges`, one `bytes=` range (206) or all of it, 416 outside. */
export function sendMedia(reply: FastifyReply, range: string | undefined, media: StoredMedia, type: string): FastifyReply {
  const size = media.size;
  reply.header('accept-ranges', 'bytes').type(type);
  const m = range ? /^bytes=(\d*)-(\d*)$/.exec(range) : null;
  if (m && (m[1] || m[2])) {
    const start = m[1] ? Number(m[1]) : Math.max(0, size - Number(m[2]));
    const end = m[1] && m[2] ? Math.min(size - 1, Number(m[2])) : size - 1;
    if (start >= size || start > end) return reply.status(416).header('content-range', `bytes */${size}`).send();
    reply.status(206).header('content-range', `bytes ${start}-${end}/${size}`).header('content-length', end - start + 1);
    return reply.send(media.stream(start, end));
  }
  reply.header('content-length', size);
  return reply.send(media.stream(0, size - 1));
}
