/**
 * Video when the hub is several nodes (docs/cluster.md, "Video across
 * nodes"): each camera is pulled by one node, its owner (cluster/cameras.ts).
 * A viewer whose requests land on another node (the balancer keeps a console
 * on one node) is proxied there: the HLS playlist and segments as HTTP, the
 * fMP4 WebSocket message by message. The stream token travels unchanged; the
 * owner checks it with the same shared video key.
 *
 * A proxied request carries `x-gridlink-proxied`: it is always served where
 * it lands, so two nodes that disagree for a moment about the owner (during
 * a hand-over) cannot bounce a request between them.
 */
import WebSocket from 'ws';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CameraOwner, CameraOwners } from '../cluster/index.js';
import { Errors } from '../core/errors.js';

export type { CameraOwners } from '../cluster/index.js';

const PROXIED = 'x-gridlink-proxied';

/** The owner of `cameraId` when it is another node and the request was not proxied already; null: serve here. */
export async function ownerOf(owners: CameraOwners | undefined, cameraId: string, req: FastifyRequest): Promise<CameraOwner | null> {
  if (!owners || req.headers[PROXIED]) return null;
  const o = await owners.owner(cameraId);
  return o.mine || !o.url ? null : o;
}

/** Forwards a GET to the owner and sends its answer back as it is. */
export async function proxyHttp(o: CameraOwner, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const r = await fetch(`${o.url}${req.url}`, { headers: { [PROXIED]: '1' }, signal: AbortSignal.timeout(30_000) }).catch(() => null);
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
export function proxyLive(o: CameraOwner, req: FastifyRequest, socket: ViewerSocket): void {
  const upstream = new WebSocket(`${o.url.replace(/^http/, 'ws')}${req.url}`, { headers: { [PROXIED]: '1' } });
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
