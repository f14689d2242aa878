/**
 * H.264 for RTSP: an Annex-B byte stream (ffmpeg `-f h264` with access unit
 * delimiters) split into access units, and access units packetised into RTP
 * per RFC 6184 (single NAL unit packets, FU-A for NAL units over the MTU).
 */

/** One encoded picture with the parameter sets it needs. */
export interface AccessUnit {
  nals: Buffer[];
  key: boolean;
}

const AUD = 9;
const SPS = 7;
const PPS = 8;
const IDR = 5;

export const nalType = (nal: Buffer): number => nal[0]! & 0x1f;

/**
 * Splits Annex-B input into NAL units (start code 00 00 01 or 00 00 00 01)
 * and groups them into access units at each access unit delimiter, so an AU is
 * emitted as soon as the next one starts (one frame of delay at most, and
 * none with the AUD flag the encoder sets).
 */
export class AnnexBSplitter {
  private buf: Buffer = Buffer.alloc(0);
  private au: Buffer[] = [];
  sps: Buffer | null = null;
  pps: Buffer | null = null;

  constructor(private readonly onAu: (au: AccessUnit) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let start = findStart(this.buf, 0);
    if (start < 0) return;
    for (;;) {
      const hdr = this.buf[start + 2] === 1 ? 3 : 4;
      const next = findStart(this.buf, start + hdr);
      if (next < 0) break;
      this.nal(this.buf.subarray(start + hdr, trimZeros(this.buf, start + hdr, next)));
      start = next;
    }
    this.buf = Buffer.from(this.buf.subarray(start));
  }

  /** Emits what is buffered (end of stream). */
  flush(): void {
    const start = findStart(this.buf, 0);
    if (start >= 0) {
      const hdr = this.buf[start + 2] === 1 ? 3 : 4;
      this.nal(this.buf.subarray(start + hdr));
    }
    this.buf = Buffer.alloc(0);
    this.emit();
  }

  private nal(nal: Buffer): void {
    if (!nal.length) return;
    const t = nalType(nal);
    if (t === AUD) {
      this.emit();
      return;
    }
    const copy = Buffer.from(nal);
    if (t === SPS) this.sps = copy;
    else if (t === PPS) this.pps = copy;
    this.au.push(copy);
  }

  private emit(): void {
    if (!this.au.length) return;
    const nals = this.au;
    this.au = [];
    this.onAu({ nals, key: nals.some((n) => nalType(n) === IDR) });
  }
}

function findStart(b: Buffer, from: number): number {
  for (let i = from; i + 2 < b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0) {
      if (b[i + 2] === 1) return i;
      if (b[i + 2] === 0 && i + 3 < b.length && b[i + 3] === 1) return i;
    }
  }
  return -1;
}

/** Trailing zero bytes before the next start code belong to it (trailing_zero_8bits). */
function trimZeros(b: Buffer, from: number, to: number): number {
  while (to > from && b[to - 1] === 0) to--;
  return to;
}

/** The fmtp line of the SDP (RFC 6184 section 8.1). */
export function h264Fmtp(sps: Buffer, pps: Buffer, pt = 96): string {
  const profileLevelId = sps.subarray(1, 4).toString('hex');
  return `a=fmtp:${pt} packetization-mode=1;profile-level-id=${profileLevelId};sprop-parameter-sets=${sps.toString('base64')},${pps.toString('base64')}`;
}

/** Packetises access units into RTP packets for one SSRC (RFC 3550 header + RFC 6184 payloads). */
export class RtpPacketiser {
  private seq: number;

  constructor(
    readonly ssrc: number,
    private readonly mtu = 1400,
    readonly pt = 96,
    seq = Math.floor(Math.random() * 0xffff),
  ) {
    this.seq = seq & 0xffff;
  }

  get nextSeq(): number {
    return this.seq;
  }

  packets(au: AccessUnit, ts90k: number): Buffer[] {
    const out: Buffer[] = [];
    const nals = au.nals;
    for (let n = 0; n < nals.length; n++) {
      const nal = nals[n]!;
      const last = n === nals.length - 1;
      if (nal.length <= this.mtu) {
        out.push(this.packet(nal, ts90k, last));
        continue;
      }
      // FU-A (RFC 6184 5.8): FU indicator keeps F and NRI, type 28; FU header S/E bits and the NAL type.
      const indicator = (nal[0]! & 0xe0) | 28;
      const type = nal[0]! & 0x1f;
      let off = 1;
      while (off < nal.length) {
        const size = Math.min(this.mtu - 2, nal.length - off);
        const end = off + size >= nal.length;
        const header = (off === 1 ? 0x80 : 0) | (end ? 0x40 : 0) | type;
        out.push(this.packet(Buffer.concat([Buffer.from([indicator, header]), nal.subarray(off, off + size)]), ts90k, last && end));
        off += size;
      }
    }
    return out;
  }

  private packet(payload: Buffer, ts90k: number, marker: boolean): Buffer {
    const p = Buffer.allocUnsafe(12 + payload.length);
    p[0] = 0x80; // V=2
    p[1] = (marker ? 0x80 : 0) | this.pt;
    p.writeUInt16BE(this.seq, 2);
    this.seq = (this.seq + 1) & 0xffff;
    p.writeUInt32BE(ts90k >>> 0, 4);
    p.writeUInt32BE(this.ssrc >>> 0, 8);
    payload.copy(p, 12);
    return p;
  }
}
