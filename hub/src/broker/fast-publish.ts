/**
 * The hub's own reading of PUBLISH packets, in front of mqtt-packet's parser.
 *
 * Nearly everything a device sends is a PUBLISH, and a socket read carries
 * many whole ones. mqtt-packet takes each through a state machine over a
 * BufferList: a debug call at each of its steps, and a Buffer view made for
 * every one- or two-byte read (the header, each length byte, the topic
 * length, the packet id) and every consumed part. That machinery was about
 * 18 % of the hub's busy time under bench:ingest (docs/benchmarks.md), while
 * the same fields are a few byte reads.
 *
 * So whole PUBLISH packets are read here, straight from the received bytes,
 * and emitted as the same mqtt-packet Packet with the same fields (the topic
 * decoded as UTF-8 as mqtt-packet does, the payload a view of the received
 * bytes). Every other packet is handed whole to mqtt-packet, so its state
 * machine always starts at a packet boundary and raises its own errors. A
 * packet cut across reads is kept until its last byte has come. The first
 * error, a body over `maxBody` (mqtt-packet's length check, wrapped by the
 * hub, refuses it before the body is buffered), a malformed length or an MQTT
 * 5 session hand the connection to mqtt-packet for good.
 *
 * hub/test/broker/fast-publish.test.ts feeds this and a stock parser the same
 * streams, whole, byte by byte and cut at random, and compares what they emit.
 */
/** The parts of mqtt-packet's Parser this relies on. */
export interface ParserLike {
  parse(buf: Buffer): number;
  emit(event: 'packet', packet: unknown): boolean;
  error: Error | null;
  /** The packet being parsed: an instance of mqtt-packet's Packet, whose class the packets read here share. */
  packet: object;
  settings: { protocolVersion?: number };
}

interface PublishPacket {
  cmd: string;
  retain: boolean;
  qos: number;
  dup: boolean;
  length: number;
  topic: string | null;
  payload: Buffer | null;
  messageId?: number;
}

const INCOMPLETE = -1;
const MALFORMED = -2;

/**
 * The bytes of the packet at `o` (fixed header and body), INCOMPLETE when its
 * length is not all there yet, MALFORMED when the length runs past 4 bytes.
 * `at[0]` gets where the body starts.
 */
function frameSize(data: Buffer, o: number, at: number[]): number {
  let i = o + 1;
  let length = 0;
  let mul = 1;
  for (;;) {
    if (i >= data.length) return INCOMPLETE;
    const b = data[i++]!;
    length += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    if (i - o - 1 >= 4) return MALFORMED;
    mul *= 0x80;
  }
  at[0] = i;
  return i - o + length;
}

export function fastPublishes(parser: ParserLike, maxBody: number): void {
  const parse = parser.parse;
  const Packet = parser.packet.constructor as new () => PublishPacket;
  /** Received bytes not yet parsed, in order (a packet cut across reads, and reads that came while parsing). */
  let chunks: Buffer[] = [];
  let have = 0;
  /** Bytes the first kept packet needs in all, once its length is known. */
  let need = INCOMPLETE;
  /** The first kept chunk starts with a packet cut across reads. */
  let cut = false;
  let slow = false;
  let running = false;
  const at = [0];

  /** Hands `rest` and whatever is still kept to mqtt-packet, which parses this connection from now on. */
  const toSlow = (rest: Buffer | null): void => {
    slow = true;
    const kept = rest ? [rest, ...chunks] : chunks;
    chunks = [];
    have = 0;
    // In one call, so mqtt-packet's list holds what follows as it would have (a malformed packet may read past its end).
    if (kept.length > 0) parse.call(parser, kept.length === 1 ? kept[0]! : Buffer.concat(kept));
  };

  /** Reads whole packets from `data`; returns the unread tail, or null when none is left or mqtt-packet took over. */
  const eat = (data: Buffer): Buffer | null => {
    let o = 0;
    while (o < data.length) {
      const size = frameSize(data, o, at);
      if (size === INCOMPLETE) break;
      const body = at[0]!;
      const length = size === MALFORMED ? 0 : size - (body - o);
      if (size === MALFORMED || length > maxBody || parser.settings.protocolVersion === 5) {
        toSlow(data.subarray(o));
        return null;
      }
      if (o + size > data.length) {
        need = size;
        break;
      }
      const h = data[o]!;
      const qos = (h >> 1) & 3;
      const topicEnd = body + 2 + (length >= 2 ? (data[body]! << 8) | data[body + 1]! : 0);
      const end = qos > 0 ? topicEnd + 2 : topicEnd;
      if (h >> 4 === 3 && qos !== 3 && length >= 2 && end <= body + length) {
        const packet = new Packet();
        packet.cmd = 'publish';
        packet.retain = (h & 1) !== 0;
        packet.qos = qos;
        packet.dup = (h & 8) !== 0;
        packet.length = length;
        packet.topic = data.toString('utf8', body + 2, topicEnd);
        if (qos > 0) packet.messageId = (data[topicEnd]! << 8) | data[topicEnd + 1]!;
        packet.payload = data.subarray(end, body + length);
        o += size;
        parser.emit('packet', packet);
      } else if (h >> 4 === 3) {
        // A PUBLISH whose topic or id runs past it (or QoS 3): mqtt-packet judges it and all that follows, as it would have.
        toSlow(data.subarray(o));
        return null;
      } else {
        // Any other packet: whole, so mqtt-packet starts and ends at a boundary.
        o += size;
        parse.call(parser, data.subarray(o - size, o));
        if (parser.error) {
          slow = true;
          chunks = [];
          have = 0;
          return null;
        }
      }
      if (slow) return null;
    }
    return o < data.length ? data.subarray(o) : null;
  };

  /**
   * The cut packet at the head of `chunks`, joined whole from as many bytes as
   * it needs (not the whole next read: copying every read made garbage enough
   * to double the hub's GC time); null until they have all come.
   */
  const joinCut = (): Buffer | null => {
    if (need === INCOMPLETE) {
      const head = Buffer.concat(chunks, Math.min(have, 5));
      const size = frameSize(head, 0, at);
      if (size === INCOMPLETE) return null;
      if (size === MALFORMED || size - at[0]! > maxBody) {
        toSlow(null);
        return null;
      }
      need = size;
    }
    if (have < need) return null;
    const whole = Buffer.concat(chunks, need);
    for (let n = need; n > 0; ) {
      const c = chunks[0]!;
      if (c.length <= n) {
        chunks.shift();
        n -= c.length;
      } else {
        chunks[0] = c.subarray(n);
        n = 0;
      }
    }
    have -= need;
    need = INCOMPLETE;
    return whole;
  };

  parser.parse = function (buf: Buffer): number {
    if (slow) return parse.call(parser, buf);
    chunks.push(buf);
    have += buf.length;
    // A packet handler that reads on synchronously lands here: the running loop takes its bytes in order.
    if (running) return have;
    running = true;
    try {
      while (!slow && have > 0) {
        let data: Buffer;
        if (cut) {
          const whole = joinCut();
          if (!whole) break;
          cut = false;
          data = whole;
        } else {
          data = chunks.shift()!;
          have -= data.length;
        }
        need = INCOMPLETE;
        const tail = eat(data);
        if (tail) {
          chunks.unshift(tail);
          have += tail.length;
          cut = true;
        }
      }
    } finally {
      running = false;
    }
    return have;
  };
}
