/**
 * Video when the hub is several nodes (docs/cluster.md, "Video across
 * nodes"): each camera is pulled by one node, its owner (cluster/cameras.ts).
 * A viewer whose requests land on another node (the balancer keeps a console
 * on one node) is proxied there: the HLS playlist and segments as HTTP, the
 * fMP4 WebSocket message by message. The stream token travels unchanged; the
 * owner checks it with the same shared video key.
 *
 * A proxied request carries `x-gridlink-proxied` with a node signature (an
 * HMAC over the method, path and body with a key derived from the shared
 * video key, valid 60 s; keys.ts): it is always served where it lands, so
 * two nodes that disagree for a moment about the owner (during a hand-over)
 * cannot bounce a request between them. A client that sends the header
 * itself, without a valid signature, is routed like any other viewer: it
 * cannot make a node that does not own the camera pull it.
 */
import WebSocket from 'ws';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CameraOwner, CameraOwners } from '../cluster/index.js';
import { Errors } from '../core/errors.js';
import type { VideoKeys } from './keys.js';

export type { CameraOwners } from '../cluster/index.js';

export const PROXIED = 'x-gridlink-proxied';

/** Signs and checks requests between nodes. */
export interface NodeAuth {
  keys: VideoKeys;
  now: () => number;
}

/** True when the request came from another hub node (a valid node signature of this very request). */
export function fromNode(auth: NodeAuth, req: FastifyRequest, body = ''): boolean {
  return auth.keys.verifyNode(req.headers[PROXIED], req.method, req.url, auth.now(), body);
}

/** The owner of `cameraId` when it is another node and the request was not proxied by a node already; null: serve here. */
export async function ownerOf(owners: CameraOwners | undefined, auth: NodeAuth, cameraId: string, req: FastifyRequest): Promise<CameraOwner | null> {
  if (!owners?.shared || fromNode(auth, req)) return null;
  const o = await owners.owner(cameraId);
  return o.mine || !o.url ? null : o;
}

/** Forwards a GET to the owner and sends its answer back as it is. */
export async function proxyHttp(o: CameraOwner, auth: NodeAuth, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const r = await fetch(`${o.url}${req.url}`, { headers: { [PROXIED]: auth.keys.signNode('GET', req.url, auth.now()) }, signal: AbortSignal.timeout(30_000) }).catch(() => null);
  if (!r) throw Errors.unavailable('the hub node that pulls this camera is not reachable');
  const body = Buffer.from(await r.arrayBuffer());
  for (const h of ['content-type', 'cache-control', 'access-control-allow-origin']) {
    const v = r.headers.get(h);
    if (v) reply.header(h, v);
  }
  return reply.code(r.status).send(body);
}

interface ViewerSocket {
  send(data: WebSocket.RawData, opts: { binary: boolean }): void;
  close(code?: number, reason?: string): void;
  on(event: 'close' | 'error' | 'message', f: (...args: unknown[]) => void): unknown;
}

/** Pipes the owner's fMP4 WebSocket to the viewer's; either side closing closes the other. */
export function proxyLive(o: CameraOwner, auth: NodeAuth, req: FastifyRequest, socket: ViewerSocket): void {
  const upstream = new WebSocket(`${o.url.replace(/^http/, 'ws')}${req.url}`, { headers: { [PROXIED]: auth.keys.signNode('GET', req.url, auth.now()) } });
  let open = true;
  const end = (code?: number, reason?: string) => {
    if (!open) return;
    open = false;
    upstream.close();
    socket.close(code, reason);
  };
  upstream.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  upstream.on('close', (code) => end(code === 1005 || code === 1006 ? 1011 : code));
  upstream.on('error', () => end(1011, 'camera node unreachable'));
  socket.on('close', () => end());
  socket.on('error', () => end());
  // Viewers send nothing; anything they do send is ignored.
  socket.on('message', () => undefined);
}

/**
 * A POST of JSON to another node's root path, signed as a node request.
 * Resolves with the answer's status and body; rejects when the node cannot
 * be reached.
 */
export async function postToNode<T>(url: string, path: string, body: unknown, auth: NodeAuth, timeoutMs = 30_000): Promise<{ status: number; body: T | null }> {
  const text = JSON.stringify(body);
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [PROXIED]: auth.keys.signNode('POST', path, auth.now(), text) },
    body: text,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const answer = await r.text();
  let parsed: T | null = null;
  try {
    parsed = answer ? (JSON.parse(answer) as T) : null;
  } catch {
    parsed = null;
  }
  return { status: r.status, body: parsed };
}

/**
 * A GET of another node's root path, signed as a node request; `headers`
 * go along (a Range). Resolves once the answer's headers are in (the body
 * is the caller's to read); rejects when the node cannot be reached or has
 * not answered within `timeoutMs`. The timeout covers the headers only: a
 * long body is not cut.
 */
export async function getFromNode(url: string, path: string, auth: NodeAuth, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<Response> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error(`no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
  try {
    return await fetch(`${url}${path}`, { headers: { ...headers, [PROXIED]: auth.keys.signNode('GET', path, auth.now()) }, signal: ctl.signal });
  } finally {
    clearTimeout(timer);
  }
}
