/**
 * Device owners: in a cluster each device's rules are evaluated on one node,
 * its owner, so a "3 readings in a row" or a hysteresis band sees one
 * sequence whichever node the balancer sent each message to.
 *
 * The owner is a rendezvous (highest random weight) hash of the device id
 * over the live nodes (presence keys in Redis): every node computes the same
 * owner from the same peer list with no coordination, and when a node joins
 * or dies only the devices it gains or owned move. A node that ingests a
 * message for a device it does not own forwards the signal to the owner's
 * Redis channel; PUBLISH answers how many nodes received it, so a signal for
 * an owner that is gone (killed: its subscription closed with its
 * connection) is known at once and not lost: the sender drops that node
 * from its view and the signal goes to the next owner, often itself.
 *
 * The single process owns every device and never forwards.
 */

/** First byte of a leave notice on a node's channel (forwarded signals are v8-serialised: they start with 0xff). */
const LEAVE = 0x4c;
/** First byte of a join notice: a node that just wrote its presence key asks its peers to read the keys now. */
const JOIN = 0x4a;

/** 32-bit FNV-1a of `a \0 b`, finished with a murmur3 mix so close ids spread. */
function weight(node: string, deviceId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < node.length; i++) h = Math.imul(h ^ node.charCodeAt(i), 0x01000193);
  h = Math.imul(h, 0x01000193);
  for (let i = 0; i < deviceId.length; i++) h = Math.imul(h ^ deviceId.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The node among `nodes` that owns `deviceId` (null when there is none). Ties go to the smaller id. */
export function rendezvousOwner(deviceId: string, nodes: readonly string[]): string | null {
  let best: string | null = null;
  let bestW = -1;
  for (const n of nodes) {
    const w = weight(n, deviceId);
    if (w > bestW || (w === bestW && best !== null && n < best)) {
      best = n;
      bestW = w;
    }
  }
  return best;
}

/** A change of the live nodes: who owned a device before and who owns it now. */
export interface OwnershipChange {
  before(deviceId: string): string | null;
  after(deviceId: string): string | null;
  /** Nodes that were live before and are not now (died, stopped, or unreachable). */
  gone: ReadonlySet<string>;
}

export interface DeviceOwners {
  /** False on the single process: every device is evaluated where it is ingested. */
  readonly shared: boolean;
  readonly nodeId: string;
  /** The owner of a device now; null before this node knows its peers (evaluate here). */
  ownerOf(deviceId: string): string | null;
  /**
   * Sends a signal to the owner's channel. Resolves true when a node received
   * it, false when nobody did (the owner is gone: it is dropped from this
   * node's view, and ownerOf answers the next owner); rejects when Redis
   * is away.
   */
  forward(owner: string, payload: Buffer): Promise<boolean>;
  /** Signals other nodes forwarded to this one, in the order each sender sent them; resolves once this node receives them. */
  onSignal(fn: (payload: Buffer) => void): Promise<void>;
  /**
   * Called synchronously when the live nodes change, once ownerOf answers
   * with the new owners; the promise it may return is the hand-over work a
   * leaving node waits for.
   */
  onChange(fn: (change: OwnershipChange) => void | Promise<void>): void;
  /** The nodes devices are spread over, as this node sees them. */
  peers(): readonly string[];
  /**
   * Once this node's presence is written: tells the peers, so each adds it
   * to its view now rather than at its next presence round (the window in
   * which two nodes both own a device shrinks from a presence period to a
   * round trip).
   */
  join(): Promise<void>;
  /**
   * Stops receiving signals (a stopping rules module): forwards to this node
   * reach no one from now on, so their senders move its devices on.
   */
  close(): Promise<void>;
  /**
   * A clean stop, before anything else stops: this node leaves its own view
   * (its devices' signals go to their next owners), waits for the hand-over
   * (the rules module flushes what it owned), tells the other nodes it left
   * (they take its devices over at once, reading that state), then stops
   * receiving signals.
   */
  leave(): Promise<void>;
}

/** The single process: every device is its own. */
export function soleDeviceOwners(nodeId: string): DeviceOwners {
  return {
    shared: false, nodeId,
    ownerOf: () => nodeId,
    forward: async () => false,
    onSignal: async () => undefined,
    onChange() {},
    peers: () => [nodeId],
    join: async () => undefined,
    close: async () => undefined,
    leave: async () => undefined,
  };
}

/**
 * The cluster's view: live peers from presence, minus the nodes a forward
 * found gone (until their presence key expires or the node comes back as a
 * new process, with another start time).
 */
export class PartitionView implements DeviceOwners {
  readonly shared = true;
  private live: string[] = [];
  /**
   * `${id}@${startedAt}` of nodes a forward reached no one at, until when
   * (monotonic ms): a killed node's presence key lives on for up to its
   * expiry, a node whose subscription only blinked is counted again then.
   */
  private readonly gone = new Map<string, number>();
  private present: Array<{ id: string; startedAt: number }> = [];
  private readonly cache = new Map<string, string | null>();
  private readonly signalFns: Array<(payload: Buffer) => void> = [];
  private readonly changeFns: Array<(change: OwnershipChange) => void | Promise<void>> = [];
  /** The hand-over work of the last change. */
  private settled: Promise<unknown> = Promise.resolve();
  private leaving = false;

  private subscribed: Promise<void> | null = null;

  constructor(
    readonly nodeId: string,
    /** How long a node a forward found gone stays out of the view (a presence key's lifetime). */
    private readonly goneMs: number,
    private readonly channel: {
      /** PUBLISH to the node's channel: how many received it. */
      publish(node: string, payload: Buffer): Promise<number>;
      subscribe(deliver: (payload: Buffer) => void): Promise<void>;
      unsubscribe(): Promise<void>;
    },
    /** A peer announced itself: read the presence keys again now. */
    private readonly peerJoined: () => void = () => undefined,
  ) {}

  ownerOf(deviceId: string): string | null {
    let o = this.cache.get(deviceId);
    if (o === undefined) {
      o = rendezvousOwner(deviceId, this.live);
      if (this.cache.size > 200_000) this.cache.clear();
      this.cache.set(deviceId, o);
    }
    return o;
  }

  async forward(owner: string, payload: Buffer): Promise<boolean> {
    const received = await this.channel.publish(owner, payload);
    if (received > 0) return true;
    const p = this.present.find((x) => x.id === owner);
    if (p) this.gone.set(`${p.id}@${p.startedAt}`, performance.now() + this.goneMs);
    this.recompute();
    return false;
  }

  onSignal(fn: (payload: Buffer) => void): Promise<void> {
    this.signalFns.push(fn);
    this.subscribed ??= this.channel.subscribe((payload) => this.deliver(payload));
    return this.subscribed;
  }

  onChange(fn: (change: OwnershipChange) => void | Promise<void>): void {
    this.changeFns.push(fn);
  }

  peers(): readonly string[] {
    return this.live;
  }

  close(): Promise<void> {
    this.signalFns.length = 0;
    this.subscribed = null;
    return this.channel.unsubscribe();
  }

  /** A message arrived on this node's channel: forwarded signals, or another node's leave notice. */
  deliver(payload: Buffer): void {
    if (payload[0] === LEAVE) {
      const id = payload.subarray(1).toString();
      const p = this.present.find((x) => x.id === id);
      if (p) this.gone.set(`${p.id}@${p.startedAt}`, performance.now() + this.goneMs);
      this.recompute();
      return;
    }
    if (payload[0] === JOIN) {
      if (payload.subarray(1).toString() !== this.nodeId) this.peerJoined();
      return;
    }
    for (const fn of this.signalFns) fn(payload);
  }

  async join(): Promise<void> {
    const notice = Buffer.concat([Buffer.from([JOIN]), Buffer.from(this.nodeId)]);
    await Promise.all(this.present.filter((p) => p.id !== this.nodeId).map((p) => this.channel.publish(p.id, notice).catch(() => 0)));
  }

  async leave(): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    const peers = this.live.filter((id) => id !== this.nodeId);
    this.recompute();
    await this.settled;
    // Sent after every signal this node forwarded before, on the same connection: a peer takes over first.
    const notice = Buffer.concat([Buffer.from([LEAVE]), Buffer.from(this.nodeId)]);
    await Promise.all(peers.map((p) => this.channel.publish(p, notice).catch(() => 0)));
    await this.close();
  }

  /** Presence was renewed: the nodes whose keys are alive. */
  setPresent(peers: Array<{ id: string; startedAt: number }>): void {
    this.present = peers;
    const keys = new Set(peers.map((p) => `${p.id}@${p.startedAt}`));
    const now = performance.now();
    for (const [g, until] of this.gone) if (!keys.has(g) || until < now) this.gone.delete(g);
    this.recompute();
  }

  private recompute(): void {
    const next = this.present.filter((p) => !this.gone.has(`${p.id}@${p.startedAt}`) && !(this.leaving && p.id === this.nodeId)).map((p) => p.id).sort();
    if (next.length === this.live.length && next.every((id, i) => id === this.live[i])) return;
    const was = this.live;
    this.live = next;
    this.cache.clear();
    const change: OwnershipChange = { before: (d) => rendezvousOwner(d, was), after: (d) => this.ownerOf(d), gone: new Set(was.filter((id) => !next.includes(id))) };
    this.settled = Promise.allSettled(this.changeFns.map((fn) => fn(change)));
  }
}
