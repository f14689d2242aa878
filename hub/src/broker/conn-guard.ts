/**
 * Connection admission for every MQTT transport (TCP, TLS, WebSocket):
 * - one total for all of them, so MQTT over WebSocket counts against
 *   GRIDLINK_MAX_CONNECTIONS like TCP does;
 * - at most `maxPendingPerAddress` connections per client address that have
 *   not sent their CONNECT yet, so one host opening silent sockets cannot
 *   hold the slots for the CONNECT timeout (devices behind one carrier NAT
 *   that do log in are not limited by it).
 */
import type { Duplex } from 'node:stream';

export interface ConnGuardOptions {
  maxConnections: number;
  maxPendingPerAddress: number;
  onRefused?(reason: 'max_connections' | 'pending_per_address', address: string): void;
}

export class ConnGuard {
  private total = 0;
  private readonly pending = new Map<string, number>();
  private readonly pendingOf = new WeakMap<object, string>();

  constructor(private readonly o: ConnGuardOptions) {}

  get connections(): number {
    return this.total;
  }

  pendingFor(address: string): number {
    return this.pending.get(address) ?? 0;
  }

  /** Counts `conn` until it closes; false (and the connection destroyed) when it may not come in. */
  admit(conn: Duplex, address: string): boolean {
    if (this.total >= this.o.maxConnections) return this.refuse(conn, 'max_connections', address);
    if (this.pendingFor(address) >= this.o.maxPendingPerAddress) return this.refuse(conn, 'pending_per_address', address);
    this.total += 1;
    this.pending.set(address, this.pendingFor(address) + 1);
    this.pendingOf.set(conn, address);
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      this.total -= 1;
      this.connected(conn);
    };
    conn.once('close', done);
    conn.once('error', done);
    return true;
  }

  /** The connection completed CONNECT (or closed): it no longer counts as pending for its address. */
  connected(conn: object): void {
    const address = this.pendingOf.get(conn);
    if (address === undefined) return;
    this.pendingOf.delete(conn);
    const n = this.pendingFor(address) - 1;
    if (n > 0) this.pending.set(address, n);
    else this.pending.delete(address);
  }

  private refuse(conn: Duplex, reason: 'max_connections' | 'pending_per_address', address: string): false {
    this.o.onRefused?.(reason, address);
    conn.destroy();
    return false;
  }
}
