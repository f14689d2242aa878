/**
 * mqtt-packet's PUBLISH body parse, for the packet that lies whole in the
 * first buffer of the parser's list: nearly every one, since a socket read
 * carries many whole packets. mqtt-packet reads the topic length and the
 * packet id each through a BufferList method that makes a Buffer view to read
 * two bytes, and the topic through another view, with a debug call at each
 * step: 5.8 % of the hub's busy time under load (docs/benchmarks.md). Here the
 * same fields are read from the buffer directly.
 *
 * The result is the same packet: the topic decoded as UTF-8 as mqtt-packet
 * does, the packet id, and the payload as a view of the received bytes. Any
 * other case (a packet split across reads, MQTT 5 properties, a topic or
 * packet id that runs past the packet) takes mqtt-packet's own path, which
 * also raises its errors. hub/test/broker/fast-publish.test.ts feeds both
 * parsers the same streams, cut at every byte, and compares what they emit.
 */

interface PublishFields {
  cmd: string;
  length: number;
  qos: number;
  topic?: string | null;
  messageId?: number;
  payload?: Buffer | string;
}

/** The parts of mqtt-packet's Parser (and of its `bl` list) this relies on. */
export interface PublishParser {
  packet: PublishFields;
  settings: { protocolVersion?: number };
  _pos: number;
  _list: { _bufs: Buffer[] };
  _parsePublish(): unknown;
}

export function fastPublishParse(parser: PublishParser): void {
  const parsePublish = parser._parsePublish;
  parser._parsePublish = function (this: PublishParser) {
    const packet = this.packet;
    const buf = this._list._bufs[0];
    if (this._pos !== 0 || this.settings.protocolVersion === 5 || buf === undefined || buf.length < packet.length || packet.length < 2) {
      return parsePublish.call(this);
    }
    const topicEnd = 2 + ((buf[0]! << 8) | buf[1]!);
    const end = packet.qos > 0 ? topicEnd + 2 : topicEnd;
    if (end > packet.length) return parsePublish.call(this);
    packet.topic = buf.toString('utf8', 2, topicEnd);
    if (packet.qos > 0) packet.messageId = (buf[topicEnd]! << 8) | buf[topicEnd + 1]!;
    packet.payload = buf.subarray(end, packet.length);
    this._pos = end;
    return undefined;
  };
}
