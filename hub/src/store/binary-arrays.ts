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

/**
 * Lays the values out: `size` gives an element's byte length, or -1 when it
 * cannot be sent in binary; `put` writes it at the offset.
 */
function layout(values: readonly unknown[], oid: number, size: (v: unknown) => number, put: (b: Buffer, v: unknown, o: number, n: number) => void): Buffer | undefined {
  let nulls = 0;
  let bytes = 0;
  const sizes = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      nulls++;
      sizes[i] = -1;
    } else if ((sizes[i] = size(v)) < 0) return undefined;
    else bytes += sizes[i]!;
  }
  const b = header(oid, values.length, nulls > 0, values.length * 4 + bytes);
  let o = HEADER;
  for (let i = 0; i < values.length; i++) {
    const n = sizes[i]!;
    b.writeInt32BE(n, o);
    o += 4;
    if (n >= 0) {
      put(b, values[i], o, n);
      o += n;
    }
  }
  return b;
}

const float8Size = (v: unknown) => (typeof v === 'number' ? 8 : -1);
const int8Size = (v: unknown) => ((typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'bigint' && v >= -(2n ** 63n) && v < 2n ** 63n) ? 8 : -1);
const boolSize = (v: unknown) => (typeof v === 'boolean' ? 1 : -1);
const textSize = (v: unknown) => (typeof v === 'string' ? Buffer.byteLength(v) : -1);
const putFloat8 = (b: Buffer, v: unknown, o: number) => b.writeDoubleBE(v as number, o);
const TWO_32 = 2 ** 32;
/** A safe integer as two 32-bit halves (no BigInt made per value); a bigint as it is. */
const putInt8 = (b: Buffer, v: unknown, o: number) => {
  if (typeof v === 'bigint') return void b.writeBigInt64BE(v, o);
  const hi = Math.floor((v as number) / TWO_32);
  b.writeInt32BE(hi, o);
  b.writeUInt32BE((v as number) - hi * TWO_32, o + 4);
};
const putBool = (b: Buffer, v: unknown, o: number) => b.writeUInt8(v ? 1 : 0, o);
/**
 * A string whose UTF-8 length equals its length is ASCII: short ones (device
 * ids, metric names) are copied by char code, which costs less than a call
 * into the native encoder for each value.
 */
const putText = (b: Buffer, v: unknown, o: number, n: number) => {
  const s = v as string;
  if (n !== s.length || n > 64) return void b.write(s, o, n);
  for (let i = 0; i < n; i++) b[o + i] = s.charCodeAt(i);
};

/** The column's values as a binary array, or undefined when one of them must go as text. */
export function binaryArray(element: BinaryElement, values: readonly unknown[]): Buffer | undefined {
  switch (element) {
    case 'float8':
      return layout(values, OID.float8, float8Size, putFloat8);
    case 'int8':
      return layout(values, OID.int8, int8Size, putInt8);
    case 'bool':
      return layout(values, OID.bool, boolSize, putBool);
    case 'text':
      return layout(values, OID.text, textSize, putText);
  }
}
