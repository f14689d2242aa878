/**
 * One-dimensional arrays in PostgreSQL's binary wire format (array_send /
 * array_recv), for the batch writer's `unnest($n::float8[], …)` parameters on
 * PostgreSQL. node-postgres sends a Buffer parameter as binary, so the hub no
 * longer escapes every element into an array literal and the server no longer
 * parses one: about 1.2 µs of the hub's CPU a row (docs/benchmarks.md).
 *
 * Layout: ndim, has-nulls flag, element type OID, then per dimension its
 * length and lower bound (1), then per element a length (-1 for NULL) and the
 * element's own binary form (big-endian). The element OID must be the one the
 * statement casts to, or the server refuses the array.
 *
 * An encoder returns undefined when a value is not of its column's JS type
 * (a string in a float8 column, 1.5 in an int8 column): the caller then sends
 * that column as text, as before, and the server judges the value.
 */

export type BinaryElement = 'float8' | 'int8' | 'text' | 'bool';

const OID: Record<BinaryElement, number> = { float8: 701, int8: 20, text: 25, bool: 16 };
const HEADER = 20;

function header(oid: number, n: number, hasNull: boolean, size: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER + size);
  b.writeInt32BE(1, 0);
  b.writeInt32BE(hasNull ? 1 : 0, 4);
  b.writeUInt32BE(oid, 8);
  b.writeInt32BE(n, 12);
  b.writeInt32BE(1, 16);
  return b;
}

function fixed(values: readonly unknown[], oid: number, width: number, ok: (v: unknown) => boolean, put: (b: Buffer, v: unknown, o: number) => void): Buffer | undefined {
  let nulls = 0;
  for (const v of values) {
    if (v === null || v === undefined) nulls++;
    else if (!ok(v)) return undefined;
  }
  const b = header(oid, values.length, nulls > 0, values.length * 4 + (values.length - nulls) * width);
  let o = HEADER;
  for (const v of values) {
    if (v === null || v === undefined) {
      b.writeInt32BE(-1, o);
      o += 4;
    } else {
      b.writeInt32BE(width, o);
      put(b, v, o + 4);
      o += 4 + width;
    }
  }
  return b;
}

const isNumber = (v: unknown) => typeof v === 'number';
const isInt8 = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'bigint' && v >= -(2n ** 63n) && v < 2n ** 63n);
const isBool = (v: unknown) => typeof v === 'boolean';

function text(values: readonly unknown[]): Buffer | undefined {
  let nulls = 0;
  let size = 0;
  for (const v of values) {
    if (v === null || v === undefined) {
      nulls++;
      size += 4;
    } else if (typeof v !== 'string') return undefined;
    else size += 4 + Buffer.byteLength(v);
  }
  const b = header(OID.text, values.length, nulls > 0, size);
  let o = HEADER;
  for (const v of values) {
    if (v === null || v === undefined) {
      b.writeInt32BE(-1, o);
      o += 4;
    } else {
      const n = b.write(v as string, o + 4);
      b.writeInt32BE(n, o);
      o += 4 + n;
    }
  }
  return b;
}

/** The column's values as a binary array, or undefined when one of them must go as text. */
export function binaryArray(element: BinaryElement, values: readonly unknown[]): Buffer | undefined {
  switch (element) {
    case 'float8':
      return fixed(values, OID.float8, 8, isNumber, (b, v, o) => b.writeDoubleBE(v as number, o));
    case 'int8':
      return fixed(values, OID.int8, 8, isInt8, (b, v, o) => b.writeBigInt64BE(BigInt(v as number | bigint), o));
    case 'bool':
      return fixed(values, OID.bool, 1, isBool, (b, v, o) => b.writeUInt8(v ? 1 : 0, o));
    case 'text':
      return text(values);
  }
}
