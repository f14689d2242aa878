/**
 * A small RTSP server (RFC 2326) for simulated cameras, written here so the
 * demo needs nothing beyond `npm install`: OPTIONS, DESCRIBE, SETUP, PLAY,
 * TEARDOWN, GET_PARAMETER; RTP over the RTSP TCP connection (interleaved,
 * RFC 2326 10.12), H.264 per RFC 6184. UDP transport is answered 461 so
 * clients fall back to TCP. Optional Basic and Digest authentication (RFC
 * 2617) so credential handling can be exercised against it.
 *
 * A live source keeps the access units since the last keyframe, so a client
 * that PLAYs gets a decodable picture at once instead of waiting a GOP. A
 * client whose socket backs up skips to the next keyframe.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { h264Fmtp, RtpPacketiser, type AccessUnit } from './h264.js';

const MAX_SOCKET_BUFFER = 2 * 1024 * 1024;
const MAX_REQUEST = 16 * 1024;

interface Subscriber {
  socket: Socket;
  channel: number;
  rtp: RtpPacketiser;
  needKey: boolean;
}

/** One live H.264 feed that any number of RTSP sessions play. */
export class H264Source {
  sps: Buffer | null = null;
  pps: Buffer | null = null;
  private gop: Array<{ au: AccessUnit; ts: number }> = [];
  private readonly subs = new Set<Subscriber>();
  private readonly waiting: Array<() => void> = [];
  frames = 0;
  private firstTs: number | null = null;

  /** `fps`: the encoder's frame rate; RTP timestamps then advance one frame per access unit. */
  constructor(private readonly fps?: number) {}

  get clients(): number {
    return this.subs.size;
  }

  push(au: AccessUnit, sps: Buffer | null, pps: Buffer | null): void {
    if (sps) this.sps = sps;
    if (pps) this.pps = pps;
    if (this.sps && this.pps) for (const w of this.waiting.splice(0)) w();
    // 90 kHz media clock (RFC 6184 5.1): frame n is n frame durations after the first, so timestamps grow
    // evenly even when the encoder's pipe hands over several pictures at once.
    this.firstTs ??= Math.floor(Date.now() * 90);
    const ts = (this.fps ? this.firstTs + Math.round((this.frames * 90_000) / this.fps) : Math.max(Math.floor(Date.now() * 90), this.firstTs + this.frames)) % 0x100000000;
    this.frames++;
    if (au.key) this.gop = [{ au, ts }];
    else if (this.gop.length && this.gop.length < 300) this.gop.push({ au, ts });
    for (const s of this.subs) this.send(s, au, ts);
  }

  /** Resolves once the parameter sets are known (needed for the SDP). */
  ready(timeoutMs: number): Promise<boolean> {
    if (this.sps && this.pps) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.waiting.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** RTP timestamp of the first packet a new session gets (RTP-Info rtptime). */
  nextTs(): number {
    return this.gop[0]?.ts ?? Math.floor(Date.now() * 90) % 0x100000000;
  }

  subscribe(s: Subscriber): () => void {
    this.subs.add(s);
    for (const f of this.gop) this.send(s, f.au, f.ts);
    return () => this.subs.delete(s);
  }

  private send(s: Subscriber, au: AccessUnit, ts: number): void {
    if (s.socket.destroyed) {
      this.subs.delete(s);
      return;
    }
    if (s.needKey && !au.key) return;
    if (s.socket.writableLength > MAX_SOCKET_BUFFER) {
      s.needKey = true;
      return;
    }
    s.needKey = false;
    const pkts = s.rtp.packets(au, ts);
    const frames: Buffer[] = [];
    for (const p of pkts) {
      const h = Buffer.allocUnsafe(4);
      h[0] = 0x24; // '$'
      h[1] = s.channel;
      h.writeUInt16BE(p.length, 2);
      frames.push(h, p);
    }
    s.socket.write(Buffer.concat(frames));
  }

  sdp(host: string): string {
    if (!this.sps || !this.pps) throw new Error('no parameter sets yet');
    return [
      'v=0',
      `o=- ${Date.now()} 1 IN IP4 ${host}`,
      's=GridLink simulated camera',
      'c=IN IP4 0.0.0.0',
      't=0 0',
      'a=control:*',
      'a=range:npt=now-',
      'm=video 0 RTP/AVP 96',
      'a=rtpmap:96 H264/90000',
      h264Fmtp(this.sps, this.pps),
      'a=control:trackID=0',
      '',
    ].join('\r\n');
  }
}

export interface RtspServerOptions {
  host?: string;
  port?: number;
  /** Require these credentials (Basic or Digest). */
  auth?: { username: string; password: string };
}

interface Request {
  method: string;
  uri: string;
  headers: Map<string, string>;
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

export class RtspServer {
  private readonly mounts = new Map<string, H264Source>();
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  private readonly realm = 'GridLink simulated camera';
  private readonly nonce = randomBytes(16).toString('hex');
  /** Requests answered (probes and players alike); tests read it. */
  requests = 0;
  port = 0;

  constructor(private readonly opts: RtspServerOptions = {}) {}

  mount(path: string, source: H264Source): void {
    this.mounts.set(path.startsWith('/') ? path : `/${path}`, source);
  }

  listen(): Promise<number> {
    const server = createServer((socket) => this.connection(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        this.port = (server.address() as { port: number }).port;
        resolve(this.port);
      });
    });
  }

  /** Stops listening and drops every session: to a client the camera is gone. */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  private connection(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    const session = randomBytes(6).toString('hex');
    const setups = new Map<string, number>();
    let unsubscribe: (() => void) | null = null;
    let busy: Promise<unknown> = Promise.resolve();
    const end = () => {
      unsubscribe?.();
      unsubscribe = null;
      this.sockets.delete(socket);
    };
    socket.on('close', end);
    socket.on('error', () => socket.destroy());
    socket.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        if (buf.length && buf[0] === 0x24) {
          // Interleaved RTCP from the client (receiver reports): skip.
          if (buf.length < 4) return;
          const len = buf.readUInt16BE(2);
          if (buf.length < 4 + len) return;
          buf = buf.subarray(4 + len);
          continue;
        }
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd < 0) {
          if (buf.length > MAX_REQUEST) socket.destroy();
          return;
        }
        const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
        const [method = '', uri = ''] = lines[0]!.split(' ');
        const headers = new Map<string, string>();
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
        }
        const bodyLen = Number(headers.get('content-length') ?? 0);
        if (buf.length < headEnd + 4 + bodyLen) return;
        buf = buf.subarray(headEnd + 4 + bodyLen);
        const req: Request = { method, uri, headers };
        // Answer in order even when DESCRIBE waits for the encoder's first keyframe.
        busy = busy.then(() => this.handle(socket, req, session, setups, (u) => (unsubscribe = u))).catch(() => socket.destroy());
      }
    });
  }

  private reply(socket: Socket, req: Request, status: string, headers: Record<string, string | number> = {}, body = ''): void {
    this.requests++;
    const lines = [`RTSP/1.0 ${status}`, `CSeq: ${req.headers.get('cseq') ?? '0'}`, 'Server: GridLink-sim'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    if (!socket.destroyed) socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  }

  private authorized(req: Request): boolean {
    const a = this.opts.auth;
    if (!a) return true;
    const h = req.headers.get('authorization') ?? '';
    if (h.startsWith('Basic ')) return Buffer.from(h.slice(6), 'base64').toString() === `${a.username}:${a.password}`;
    if (h.startsWith('Digest ')) {
      const p = new Map<string, string>();
      for (const m of h.slice(7).matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) p.set(m[1]!, m[2] ?? m[3] ?? '');
      if (p.get('username') !== a.username || p.get('nonce') !== this.nonce) return false;
      const ha1 = md5(`${a.username}:${this.realm}:${a.password}`);
      const ha2 = md5(`${req.method}:${p.get('uri') ?? ''}`);
      return p.get('response') === md5(`${ha1}:${this.nonce}:${ha2}`);
    }
    return false;
  }

  private source(uri: string): { path: string; src: H264Source } | null {
    let p: string;
    try {
      p = new URL(uri).pathname;
    } catch {
      p = uri;
    }
    for (const [m, src] of this.mounts) if (p === m || p.startsWith(`${m}/`)) return { path: m, src };
    return null;
  }

  private async handle(socket: Socket, req: Request, session: string, setups: Map<string, number>, onPlay: (u: () => void) => void): Promise<void> {
    if (req.method === 'OPTIONS') {
      this.reply(socket, req, '200 OK', { Public: 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER' });
      return;
    }
    if (!this.authorized(req)) {
      this.reply(socket, req, '401 Unauthorized', { 'WWW-Authenticate': `Digest realm="${this.realm}", nonce="${this.nonce}"` });
      return;
    }
    const found = this.source(req.uri);
    switch (req.method) {
      case 'DESCRIBE': {
        if (!found) return this.reply(socket, req, '404 Not Found');
        if (!(await found.src.ready(10_000))) return this.reply(socket, req, '503 Service Unavailable');
        const base = req.uri.replace(/\/+$/, '');
        return this.reply(socket, req, '200 OK', { 'Content-Type': 'application/sdp', 'Content-Base': `${base}/` }, found.src.sdp(socket.localAddress ?? '127.0.0.1'));
      }
      case 'SETUP': {
        if (!found) return this.reply(socket, req, '404 Not Found');
        const transport = req.headers.get('transport') ?? '';
        const m = /interleaved=(\d+)(?:-(\d+))?/.exec(transport);
        if (!transport.includes('RTP/AVP/TCP') || !m) return this.reply(socket, req, '461 Unsupported Transport');
        setups.set(found.path, Number(m[1]));
        return this.reply(socket, req, '200 OK', { Session: `${session};timeout=60`, Transport: `RTP/AVP/TCP;unicast;interleaved=${m[1]}-${m[2] ?? Number(m[1]) + 1}` });
      }
      case 'PLAY': {
        const path = found?.path ?? [...setups.keys()][0];
        const src = path ? this.mounts.get(path) : undefined;
        const channel = path ? setups.get(path) : undefined;
        if (!src || channel === undefined) return this.reply(socket, req, '455 Method Not Valid in This State');
        const rtp = new RtpPacketiser(randomBytes(4).readUInt32BE(0));
        const rtptime = src.nextTs();
        this.reply(socket, req, '200 OK', { Session: session, Range: 'npt=now-', 'RTP-Info': `url=${req.uri.replace(/\/+$/, '')}/trackID=0;seq=${rtp.nextSeq};rtptime=${rtptime}` });
        onPlay(src.subscribe({ socket, channel, rtp, needKey: true }));
        return;
      }
      case 'TEARDOWN':
        this.reply(socket, req, '200 OK', { Session: session });
        socket.end();
        return;
      case 'GET_PARAMETER':
      case 'SET_PARAMETER':
        return this.reply(socket, req, '200 OK', { Session: session });
      default:
        return this.reply(socket, req, '501 Not Implemented');
    }
  }
}
