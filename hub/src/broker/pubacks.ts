/**
 * The hub's own PUBACKs (authorize-publish.ts writes them after the commit),
 * gathered per connection and written as one buffer at the end of the
 * current tick, in the order they were released [MQTT-4.6.0-2].
 *
 * A commit releases hundreds of messages over many connections at once.
 * mqtt-packet's writeToStream corked the socket, made two writes a PUBACK
 * and scheduled an uncork for each (3.6 % of the hub's busy time generating,
 * 7 % uncorking, docs/benchmarks.md); here a connection gets one write a
 * tick. A PUBACK is four bytes: 0x40, remaining length 2, packet id.
 */
import type { Client } from 'aedes';

export class Pubacks {
  private pending = new Map<Client, number[]>();
  private scheduled = false;
  private readonly flushBound = () => this.flush();

  /** Queues a PUBACK for `messageId` on the client's connection. */
  add(client: Client, messageId: number): void {
    let ids = this.pending.get(client);
    if (!ids) this.pending.set(client, (ids = []));
    ids.push(messageId);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushBound);
    }
  }

  /** Writes what is queued. A connection closed since is skipped: its device re-sends, and the copy is stored once. */
  flush(): void {
    this.scheduled = false;
    const pending = this.pending;
    this.pending = new Map();
    for (const [client, ids] of pending) {
      if (client.closed || client.conn.destroyed) continue;
      const b = Buffer.allocUnsafe(4 * ids.length);
      for (let i = 0, o = 0; i < ids.length; i++, o += 4) {
        b[o] = 0x40;
        b[o + 1] = 0x02;
        b.writeUInt16BE(ids[i]!, o + 2);
      }
      client.conn.write(b);
    }
  }
}
