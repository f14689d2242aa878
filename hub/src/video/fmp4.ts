/**
 * Splits ffmpeg's fragmented MP4 (`-movflags empty_moov+default_base_moof+
 * frag_every_frame`) into the init segment (ftyp+moov) and media fragments
 * (moof+mdat), and tells keyframe fragments apart, so a viewer joining late
 * gets init + the fragments since the last keyframe and can decode at once.
 */

export interface Fragment {
  data: Buffer;
  key: boolean;
}

const SAMPLE_IS_NON_SYNC = 0x0001_0000;

function boxes(buf: Buffer, start: number, end: number): Array<{ type: string; start: number; end: number }> {
  const out: Array<{ type: string; start: number; end: number }> = [];
  let o = start;
  while (o + 8 <= end) {
    let size = buf.readUInt32BE(o);
    const type = buf.toString('latin1', o + 4, o + 8);
    let header = 8;
    if (size === 1) {
      size = Number(buf.readBigUInt64BE(o + 8));
      header = 16;
    } else if (size === 0) size = end - o;
    if (size < header || o + size > end) break;
    out.push({ type, start: o + header, end: o + size });
    o += size;
  }
  return out;
}

/** Whether the first sample of a moof is a sync sample (trun first-sample flags, trun sample flags, tfhd defaults). */
export function moofIsKey(buf: Buffer, moofStart = 8, moofEnd = buf.length): boolean {
  for (const traf of boxes(buf, moofStart, moofEnd).filter((b) => b.type === 'traf')) {
    let defaultFlags: number | null = null;
    for (const b of boxes(buf, traf.start, traf.end)) {
      if (b.type === 'tfhd') {
        const flags = buf.readUInt32BE(b.start) & 0xffffff;
        let o = b.start + 8; // version/flags + track_ID
        if (flags & 0x01) o += 8;
        if (flags & 0x02) o += 4;
        if (flags & 0x08) o += 4;
        if (flags & 0x10) o += 4;
        if (flags & 0x20) defaultFlags = buf.readUInt32BE(o);
      } else if (b.type === 'trun') {
        const flags = buf.readUInt32BE(b.start) & 0xffffff;
        let o = b.start + 8; // version/flags + sample_count
        if (flags & 0x001) o += 4;
        if (flags & 0x004) return (buf.readUInt32BE(o) & SAMPLE_IS_NON_SYNC) === 0;
        if (flags & 0x400) {
          if (flags & 0x100) o += 4;
          if (flags & 0x200) o += 4;
          return (buf.readUInt32BE(o) & SAMPLE_IS_NON_SYNC) === 0;
        }
        if (defaultFlags !== null) return (defaultFlags & SAMPLE_IS_NON_SYNC) === 0;
      }
    }
  }
  return false;
}

/** RFC 6381 codec string from the init segment (`avc1.PPCCLL`), for MediaSource.isTypeSupported. */
export function codecOf(init: Buffer): string {
  const i = init.indexOf('avcC', 0, 'latin1');
  if (i >= 0 && i + 8 <= init.length) return `avc1.${init.subarray(i + 5, i + 8).toString('hex')}`;
  if (init.indexOf('hvcC', 0, 'latin1') >= 0) return 'hvc1';
  return 'avc1.42e01e';
}

/** Incremental splitter over a byte stream. */
export class Fmp4Splitter {
  private buf: Buffer = Buffer.alloc(0);
  private initParts: Buffer[] = [];
  private pendingMoof: Buffer | null = null;
  init: Buffer | null = null;

  constructor(
    private readonly onInit: (init: Buffer) => void,
    private readonly onFragment: (f: Fragment) => void,
  ) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let o = 0;
    while (this.buf.length - o >= 8) {
      let size = this.buf.readUInt32BE(o);
      if (size === 1) {
        if (this.buf.length - o < 16) break;
        size = Number(this.buf.readBigUInt64BE(o + 8));
      }
      if (size < 8) {
        // Not MP4 framing: drop what we have rather than spin.
        this.buf = Buffer.alloc(0);
        return;
      }
      if (this.buf.length - o < size) break;
      const type = this.buf.toString('latin1', o + 4, o + 8);
      this.box(type, this.buf.subarray(o, o + size));
      o += size;
    }
    this.buf = o === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(o));
  }

  private box(type: string, data: Buffer): void {
    if (this.init === null) {
      if (type === 'moov') {
        this.init = Buffer.concat([...this.initParts, data]);
        this.initParts = [];
        this.onInit(this.init);
      } else if (type !== 'moof') this.initParts.push(Buffer.from(data));
      return;
    }
    if (type === 'moof') this.pendingMoof = Buffer.from(data);
    else if (type === 'mdat' && this.pendingMoof) {
      const moof = this.pendingMoof;
      this.pendingMoof = null;
      this.onFragment({ data: Buffer.concat([moof, data]), key: moofIsKey(moof) });
    }
  }
}
