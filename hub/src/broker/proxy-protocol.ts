/**
 * PROXY protocol (HAProxy's `send-proxy` / `send-proxy-v2`) on the MQTT TCP
 * port, when GRIDLINK_MQTT_PROXY_PROTOCOL is on: a balancer in TCP mode
 * writes one header with the client's address before the client's first
 * byte. The hub reads it before anything else, so the connection guard's
 * per-address limit and the logs see the device, not the balancer.
 *
 * Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 * - v1: `PROXY TCP4|TCP6|UNKNOWN <src> <dst> <sport> <dport>\r\n`, at most
 *   107 bytes;
 * - v2: the 12-byte signature, version/command, family/protocol, a 2-byte
 *   length, the addresses (TCP over IPv4: 12 bytes, IPv6: 36) and TLVs.
 *   Command LOCAL (a balancer's own health check) and unknown families keep
 *   the socket's address.
 *
 * The framing is a few lines and the addresses are fixed offsets, so there is
 * no parsing package here (proxy-protocol-js parses a complete header but
 * does not find its end in a stream, which is the part the hub needs).
 */
import net from 'node:net';

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
const V1_MAX = 107;
/** Addresses plus the TLVs a balancer adds (unique id, TLS details): bigger is not a header we accept. */
const V2_MAX_BODY = 4096;

export interface ProxyHeader {
  /** The client's address and port as the balancer saw them; null: keep the socket's (LOCAL, UNKNOWN). */
  source: { address: string; port: number } | null;
  /** Bytes the header took. */
  length: number;
}

/** 'more': not enough bytes yet; an Error: not a PROXY header. */
export function parseProxyHeader(buf: Buffer): ProxyHeader | 'more' | Error {
  const n = Math.min(buf.length, V2_SIGNATURE.length);
  if (n > 0 && buf.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))) return buf.length < 16 ? 'more' : parseV2(buf);
  const m = Math.min(buf.length, V1_PREFIX.length);
  if (m > 0 && buf.subarray(0, m).equals(V1_PREFIX.subarray(0, m))) return parseV1(buf);
  return new Error('no PROXY protocol header');
}

function parseV1(buf: Buffer): ProxyHeader | 'more' | Error {
  const end = buf.indexOf('\r\n');
  if (end < 0) return buf.length >= V1_MAX ? new Error('PROXY v1 header too long') : 'more';
  if (end + 2 > V1_MAX) return new Error('PROXY v1 header too long');
  const parts = buf.toString('latin1', 0, end).split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN') return { source: null, length };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return new Error('malformed PROXY v1 header');
  const [, family, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const want = family === 'TCP4' ? 4 : 6;
  if (net.isIP(src) !== want || net.isIP(dst) !== want || !isPort(sport) || !isPort(dport)) return new Error('malformed PROXY v1 header');
  return { source: { address: src, port: Number(sport) }, length };
}

const isPort = (s: string) => /^(0|[1-9][0-9]{0,4})$/.test(s) && Number(s) <= 65535;

function parseV2(buf: Buffer): ProxyHeader | 'more' | Error {
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return new Error('unsupported PROXY v2 version');
  const command = verCmd & 0x0f;
  if (command > 1) return new Error('unsupported PROXY v2 command');
  const body = buf.readUInt16BE(14);
  if (body > V2_MAX_BODY) return new Error('PROXY v2 header too long');
  const length = 16 + body;
  if (buf.length < length) return 'more';
  // LOCAL: the balancer's own connection (health check); the addresses, if any, mean nothing.
  if (command === 0) return { source: null, length };
  const famProto = buf[13]!;
  if (famProto === 0x11) {
    if (body < 12) return new Error('short PROXY v2 IPv4 addresses');
    const address = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
    return { source: { address, port: buf.readUInt16BE(24) }, length };
  }
  if (famProto === 0x21) {
    if (body < 36) return new Error('short PROXY v2 IPv6 addresses');
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(16 + 2 * i).toString(16));
    return { source: { address: compressIPv6(groups), port: buf.readUInt16BE(48) }, length };
  }
  // UNSPEC, UDP or UNIX: nothing the address limits can use.
  return { source: null, length };
}

/** RFC 5952 text of eight hex groups (IPv4-mapped addresses as ::ffff:a.b.c.d, as node prints them). */
function compressIPv6(g: string[]): string {
  if (g.slice(0, 5).every((x) => x === '0') && g[5] === 'ffff') {
    const a = Number.parseInt(g[6]!, 16);
    const b = Number.parseInt(g[7]!, 16);
    return `::ffff:${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

/**
 * Reads the PROXY header off `socket` and hands over the client's address
 * (the socket's own for LOCAL/UNKNOWN) with the bytes after the header put
 * back. A socket that sends something else, or nothing within `timeoutMs`,
 * is destroyed.
 */
export function readProxyHeader(socket: net.Socket, timeoutMs: number, onAddress: (address: string) => void, onRefused?: (reason: string) => void): void {
  let head: Buffer = Buffer.alloc(0);
  const fail = (reason: string) => {
    stop();
    onRefused?.(reason);
    socket.destroy();
  };
  const timer = setTimeout(() => fail('PROXY header timeout'), timeoutMs);
  const onError = () => fail('socket error');
  const stop = () => {
    clearTimeout(timer);
    socket.off('readable', onReadable);
    socket.off('error', onError);
    socket.off('close', stop);
  };
  function onReadable() {
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const h = parseProxyHeader(head);
      if (h === 'more') continue;
      if (h instanceof Error) return fail(h.message);
      stop();
      const rest = head.subarray(h.length);
      if (rest.length) socket.unshift(rest);
      return onAddress(h.source?.address ?? socket.remoteAddress ?? 'unknown');
    }
  }
  socket.on('error', onError);
  socket.on('close', stop);
  socket.on('readable', onReadable);
}
