/**
 * Camera URLs as the hub uses them: parsed and checked once, rebuilt from
 * their parts for ffmpeg (never the raw string: `" rtsp://…"` or a URL with
 * control characters would otherwise reach ffmpeg's own URL parser, which
 * opens local files for anything that is not a URL), limited to the camera
 * networks the operator allows (SSRF), and redacted wherever text about them
 * could reach a log or an error body.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { Errors } from '../core/errors.js';

/** Parses and validates an RTSP URL; throws VALIDATION_FAILED with a message that never echoes the URL. */
export function parseRtspUrl(raw: string): URL {
  // eslint-disable-next-line no-control-regex
  if (typeof raw !== 'string' || raw !== raw.trim() || /[\s\u0000-\u001f\u007f]/.test(raw)) throw Errors.validation('rtspUrl has spaces or control characters');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw Errors.validation('rtspUrl is not a URL');
  }
  if (!/^rtsps?:$/.test(u.protocol)) throw Errors.validation('rtspUrl must be rtsp:// or rtsps://');
  if (!u.hostname) throw Errors.validation('rtspUrl has no host');
  if (u.hash) throw Errors.validation('rtspUrl may not have a fragment');
  return u;
}

/** The URL string ffmpeg gets: rebuilt from the parsed parts, with the host replaced by the address it was checked at. */
export function ffmpegUrl(u: URL, address?: string): string {
  const host = address ? (isIP(address) === 6 ? `[${address}]` : address) : u.hostname;
  const auth = u.username || u.password ? `${u.username}${u.password ? `:${u.password}` : ''}@` : '';
  return `${u.protocol}//${auth}${host}${u.port ? `:${u.port}` : ''}${u.pathname}${u.search}`;
}

/** A list of networks (CIDR or single addresses); empty allows every address. */
export class NetAllowList {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(readonly entries: string[]) {
    for (const e of entries) {
      const [addr = '', bits] = e.split('/');
      const type = isIP(addr) === 6 ? 'ipv6' : isIP(addr) === 4 ? 'ipv4' : null;
      if (!type) throw new Error(`not a network: ${e}`);
      const prefix = bits === undefined ? (type === 'ipv4' ? 32 : 128) : Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (type === 'ipv4' ? 32 : 128)) throw new Error(`bad prefix length: ${e}`);
      this.list.addSubnet(addr, prefix, type);
    }
    this.size = entries.length;
  }

  static parse(text: string | undefined): NetAllowList {
    return new NetAllowList((text ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  }

  allows(address: string): boolean {
    if (!this.size) return true;
    const v = isIP(address);
    if (!v) return false;
    // IPv4-mapped IPv6 addresses are checked as IPv4.
    const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (m) return this.list.check(m[1]!, 'ipv4');
    return this.list.check(address, v === 6 ? 'ipv6' : 'ipv4');
  }
}

/**
 * Resolves the camera host and checks every address against the allow-list.
 * Returns the first address: connecting to the address that was checked
 * (not resolving again) leaves no window for DNS rebinding.
 */
export async function resolveCamera(u: URL, allow: NetAllowList): Promise<string> {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  let addrs: string[];
  try {
    addrs = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch {
    throw Errors.validation('camera host does not resolve');
  }
  if (!addrs.length) throw Errors.validation('camera host does not resolve');
  const bad = addrs.find((a) => !allow.allows(a));
  if (bad !== undefined) throw Errors.validation('camera host is outside the allowed camera networks (GRIDLINK_VIDEO_ALLOW_NETS)');
  return addrs[0]!;
}

/**
 * Removes credentials from free text (ffmpeg stderr, error messages): the
 * userinfo of any URL, Authorization headers, and the known secrets given.
 */
export function redactText(text: string, secrets: ReadonlyArray<string> = []): string {
  let s = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@'"]*@/gi, '$1***:***@').replace(/(authorization:\s*)(basic|digest)\s+[^\r\n]*/gi, '$1$2 ***');
  for (const secret of secrets) if (secret && secret.length >= 3) s = s.split(secret).join('***');
  return s;
}

/** The secrets of a URL (userinfo, raw and decoded), for redactText. */
export function urlSecrets(u: URL): string[] {
  const out = new Set<string>();
  for (const v of [u.username, u.password]) {
    if (!v) continue;
    out.add(v);
    try {
      out.add(decodeURIComponent(v));
    } catch {
      /* keep the raw form */
    }
  }
  return [...out];
}
