/**
 * The ffmpeg binary and the command lines the gateway runs. System ffmpeg
 * first (distribution builds carry libx264 for the transcode fallback), else
 * @ffmpeg-installer/ffmpeg when it is installed (a static build shipped in
 * the npm package), else none: the video module then reports itself
 * unavailable and the hub runs on without it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

export interface FfmpegInfo {
  path: string;
  major: number;
  version: string;
}

export function findFfmpeg(configured?: string): FfmpegInfo | null {
  const candidates: string[] = [];
  if (configured) candidates.push(configured);
  candidates.push('ffmpeg');
  try {
    const req = createRequire(import.meta.url);
    // Optional dependency; absent on most machines that have a system ffmpeg.
    const mod = req('@ffmpeg-installer/ffmpeg') as { path?: string };
    if (mod.path) candidates.push(mod.path);
  } catch {
    /* not installed */
  }
  for (const p of candidates) {
    const r = spawnSync(p, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 5_000 });
    if (r.status !== 0 || !r.stdout) continue;
    const m = /ffmpeg version n?(\d+)\.(\d+)\S*/.exec(r.stdout);
    return { path: p, major: m ? Number(m[1]) : 0, version: m ? m[0].replace('ffmpeg version ', '') : 'unknown' };
  }
  return null;
}

export interface StreamArgsInput {
  rtspUrl: string;
  /** Directory of the HLS playlist and segments. */
  dir: string;
  segmentS: number;
  listSize: number;
  /** Segments kept on disk beyond the playlist (the evidence ring buffer). */
  keepSegments: number;
  transcode: boolean;
  ioTimeoutS: number;
}

/**
 * One process, two outputs: HLS short segments with PROGRAM-DATE-TIME on
 * disk, and fragmented MP4 (one fragment per frame) on stdout for the
 * WebSocket/MSE path. `-c copy` unless the camera is set to transcode.
 */
export function streamArgs(ff: FfmpegInfo, i: StreamArgsInput): string[] {
  // ffmpeg < 5 calls the RTSP socket timeout -stimeout (-timeout meant "listen").
  const timeout = ff.major >= 5 ? '-timeout' : '-stimeout';
  const input = [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-rtsp_transport', 'tcp', timeout, String(i.ioTimeoutS * 1_000_000),
    '-fflags', '+genpts+nobuffer', '-flags', 'low_delay', '-probesize', '500000', '-analyzeduration', '1000000',
    '-i', i.rtspUrl, '-map', '0:v:0', '-an',
  ];
  const hls = {
    hls_time: String(i.segmentS),
    hls_list_size: String(i.listSize),
    hls_delete_threshold: String(i.keepSegments),
    // Sequence numbers keep growing across restarts, so players never see them go back.
    hls_start_number_source: 'epoch',
    // temp_file makes playlist updates atomic for readers.
    hls_flags: 'delete_segments+program_date_time+independent_segments+temp_file+omit_endlist',
    hls_segment_filename: `${i.dir}/seg_%06d.ts`,
  };
  const fmp4Flags = 'empty_moov+default_base_moof+frag_every_frame';
  if (!i.transcode) {
    // Two outputs of one process, both stream copies: about 1% of a core.
    return [
      ...input,
      '-c:v', 'copy', '-f', 'hls', ...Object.entries(hls).flatMap(([k, v]) => [`-${k}`, v]), `${i.dir}/index.m3u8`,
      '-map', '0:v:0', '-an', '-c:v', 'copy', '-f', 'mp4', '-movflags', fmp4Flags, '-flush_packets', '1', 'pipe:1',
    ];
  }
  // Transcode (H.265 cameras): encode once, mux twice through tee. The MP4
  // slave needs global headers (avcC); the HLS slave gets SPS/PPS back in-band.
  const hlsOpts = Object.entries(hls).map(([k, v]) => `${k}=${v}`).join(':');
  return [
    ...input,
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-flags', '+global_header',
    '-force_key_frames', `expr:gte(t,n_forced*${i.segmentS})`, '-x264-params', 'sliced-threads=0',
    '-f', 'tee', `[f=hls:bsfs/v=dump_extra:${hlsOpts}]${i.dir}/index.m3u8|[f=mp4:movflags=${fmp4Flags}]pipe:1`,
  ];
}

export function run(ffmpeg: string, args: string[], timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(ffmpeg, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.once('exit', (code, sig) => {
      clearTimeout(t);
      if (code === 0) resolve();
      else reject(new Error(`ffmpeg exited ${code ?? sig}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/** Concatenates MPEG-TS segments into one MP4 without re-encoding (ffmpeg concat demuxer). */
export function concatArgs(listFile: string, out: string): string[] {
  return ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-f', 'concat', '-safe', '0', '-i', listFile, '-c', 'copy', '-movflags', '+faststart', out];
}

/** One JPEG frame at `offsetS` into a segment. */
export function frameArgs(segment: string, offsetS: number, out: string): string[] {
  return ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-ss', offsetS.toFixed(3), '-i', segment, '-frames:v', '1', '-q:v', '3', out];
}
