/**
 * Video secrets: one 256-bit key kept in dataDir (like the JWT key) from
 * which two sub-keys are derived, so neither use can be turned against the
 * other:
 *   - AES-256-GCM for RTSP URLs at rest (their credentials never leave the hub);
 *   - HMAC-SHA256 for short-lived stream tokens carried in URLs (hls.js and
 *     WebSockets cannot send an Authorization header easily);
 *   - HMAC-SHA256 for requests between the hub nodes of a cluster (a viewer
 *     proxied to the camera's node, a clip asked of it), so a client cannot
 *     pass for a node.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { loadKeyFile } from '../core/secrets.js';

/**
 * The video master key: GRIDLINK_VIDEO_KEY (64 hex digits) when set; in
 * cluster mode (GRIDLINK_REDIS_URL) otherwise derived from the JWT secret
 * every node shares, so a camera's sealed RTSP URL opens and a stream token
 * verifies on every node; else `dataDir/video.key`.
 */
export function loadVideoKey(opts: { dataDir: string; persistent: boolean }, env: Record<string, string | undefined> = process.env): Buffer {
  const hex = env.GRIDLINK_VIDEO_KEY;
  if (hex) {
    if (!VIDEO_KEY.test(hex)) throw new Error('GRIDLINK_VIDEO_KEY: must be 64 hex digits');
    return Buffer.from(hex, 'hex');
  }
  if (env.GRIDLINK_REDIS_URL && env.GRIDLINK_JWT_SECRET) return createHmac('sha256', env.GRIDLINK_JWT_SECRET).update('gridlink/video/master').digest();
  return loadKeyFile(opts.dataDir, 'video.key', opts.persistent);
}

export const VIDEO_KEY = /^[0-9a-fA-F]{64}$/;

/** Lifetime of a node-to-node request signature (node clocks may differ by this much at most). */
export const NODE_REQUEST_TTL_S = 60;

export interface StreamToken {
  token: string;
  /** epoch ms */
  expiresAt: number;
  /** Unique per issued token: one HLS viewer lease. */
  nonce: string;
}

export class VideoKeys {
  private readonly encKey: Buffer;
  private readonly macKey: Buffer;
  private readonly nodeKey: Buffer;

  constructor(master: Buffer) {
    this.encKey = createHmac('sha256', master).update('gridlink/video/rtsp-credentials').digest();
    this.macKey = createHmac('sha256', master).update('gridlink/video/stream-token').digest();
    this.nodeKey = createHmac('sha256', master).update('gridlink/video/node-request').digest();
  }

  private nodeMac(method: string, url: string, exp: number, body: string): string {
    const digest = createHash('sha256').update(body).digest('base64url');
    return createHmac('sha256', this.nodeKey).update(`${method.toUpperCase()}\n${url}\n${exp}\n${digest}`).digest('base64url');
  }

  /**
   * `<expSeconds>.<mac>` over the method, the path with its query and the
   * body: a request from one hub node to another (the `x-gridlink-proxied`
   * header). Only nodes hold the key; it is valid for NODE_REQUEST_TTL_S.
   */
  signNode(method: string, url: string, now: number, body = ''): string {
    const exp = Math.floor(now / 1000) + NODE_REQUEST_TTL_S;
    return `${exp}.${this.nodeMac(method, url, exp, body)}`;
  }

  /** True when `header` is a node signature of this request, not expired. */
  verifyNode(header: unknown, method: string, url: string, now: number, body = ''): boolean {
    if (typeof header !== 'string' || header.length > 128) return false;
    const parts = header.split('.');
    if (parts.length !== 2) return false;
    const [expS, mac] = parts;
    if (!expS || !mac || !/^\d{1,12}$/.test(expS)) return false;
    const exp = Number(expS);
    if (exp * 1000 <= now || exp * 1000 > now + 2 * NODE_REQUEST_TTL_S * 1000) return false;
    const want = Buffer.from(this.nodeMac(method, url, exp, body));
    const got = Buffer.from(mac);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  /** `v1.<iv>.<tag>.<ciphertext>` (base64url); the camera id is bound in as AAD. */
  encrypt(plain: string, cameraId: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.encKey, iv);
    c.setAAD(Buffer.from(cameraId));
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  decrypt(sealed: string, cameraId: string): string {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('unknown sealed format');
    const d = createDecipheriv('aes-256-gcm', this.encKey, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(cameraId));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }

  private mac(cameraId: string, exp: number, nonce: string): string {
    return createHmac('sha256', this.macKey).update(`${cameraId}\n${exp}\n${nonce}`).digest('base64url').slice(0, 32);
  }

  /** `<expSeconds>.<nonce>.<mac>`: valid for this camera only, until exp. */
  sign(cameraId: string, ttlS: number, now: number): StreamToken {
    const exp = Math.floor(now / 1000) + ttlS;
    const nonce = randomBytes(6).toString('base64url');
    return { token: `${exp}.${nonce}.${this.mac(cameraId, exp, nonce)}`, expiresAt: exp * 1000, nonce };
  }

  /** The token's nonce when valid for this camera at `now`, else null. */
  verify(cameraId: string, token: unknown, now: number): string | null {
    if (typeof token !== 'string' || token.length > 128) return null;
    const parts = token.split('.');
    // Exactly three segments: a token with anything appended is not this token.
    if (parts.length !== 3) return null;
    const [expS, nonce, mac] = parts;
    if (!expS || !nonce || !mac || !/^\d{1,12}$/.test(expS)) return null;
    const exp = Number(expS);
    const want = Buffer.from(this.mac(cameraId, exp, nonce));
    const got = Buffer.from(mac);
    if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
    return exp * 1000 > now ? nonce : null;
  }
}

/**
 * The URL with any credentials removed: userinfo and query parameters that
 * look like secrets (some cameras take `?user=..&password=..`).
 */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    const had = u.username || u.password;
    u.username = '';
    u.password = '';
    for (const k of [...u.searchParams.keys()]) {
      if (/pass|pwd|user|token|auth|key|secret/i.test(k)) u.searchParams.set(k, '***');
    }
    const s = u.toString();
    return had ? s.replace('://', '://***:***@') : s;
  } catch {
    return 'rtsp://***';
  }
}
