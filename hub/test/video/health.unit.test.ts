/**
 * Cameras watched all the time, against the real simulated RTSP server:
 * the probe's verdicts (online / degraded with the reason / offline), the
 * schedule with backoff on an injected clock, the offline alarm after the
 * configured time and its clearing, one log line per state change; the
 * camera URL rules (parsed URL for ffmpeg, allow-list, redaction) and the
 * RFC 6184 packetiser.
 */
import { describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { CameraHealth, probeRtsp, type HealthChange, type ProbeResult } from '../../src/video/health.js';
import { ffmpegUrl, NetAllowList, parseRtspUrl, redactText, resolveCamera, urlSecrets } from '../../src/video/url.js';
import { H264Source, RtpPacketiser, RtspServer } from '@gridlink/simulators/camera';
import type { Logger } from '../../src/core/logger.js';

/** A source with parameter sets (a real SPS/PPS pair of a 16x16 baseline stream) so DESCRIBE answers at once. */
function source(): H264Source {
  const s = new H264Source();
  const sps = Buffer.from('6742c00bd90113ec04400000030040000007a3c50a92', 'hex');
  const pps = Buffer.from('68cb8cb2', 'hex');
  s.push({ nals: [sps, pps, Buffer.from([0x65, 0x88, 0x84, 0x00])], key: true }, sps, pps);
  return s;
}

function memoryLogger(lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }>): Logger {
  const mk = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg });
  const l = { info: mk('info'), warn: mk('warn'), error: mk('error'), debug: mk('debug'), child: () => l } as unknown as Logger;
  return l;
}

describe('probeRtsp', () => {
  it('should report online for a served stream, degraded with the reason for refused credentials or a wrong path, offline when nothing listens', async () => {
    const server = new RtspServer({ auth: { username: 'op', password: 'pa:ss@1' } });
    server.mount('/cam-1', source());
    const port = await server.listen();
    try {
      const good = await probeRtsp(new URL(`rtsp://op:${encodeURIComponent('pa:ss@1')}@127.0.0.1:${port}/cam-1`), '127.0.0.1', 5_000);
      expect(good.state).toBe('online');
      const badPw = await probeRtsp(new URL(`rtsp://op:wrong@127.0.0.1:${port}/cam-1`), '127.0.0.1', 5_000);
      expect(badPw).toMatchObject({ state: 'degraded', reason: 'credentials refused (401)' });
      const noCreds = await probeRtsp(new URL(`rtsp://127.0.0.1:${port}/cam-1`), '127.0.0.1', 5_000);
      expect(noCreds).toMatchObject({ state: 'degraded', reason: 'camera requires credentials' });
      const wrongPath = await probeRtsp(new URL(`rtsp://op:${encodeURIComponent('pa:ss@1')}@127.0.0.1:${port}/nope`), '127.0.0.1', 5_000);
      expect(wrongPath).toMatchObject({ state: 'degraded', reason: 'stream not found (404)' });
    } finally {
      await server.close();
    }
    const down = await probeRtsp(new URL(`rtsp://op:pw@127.0.0.1:${port}/cam-1`), '127.0.0.1', 5_000);
    expect(down).toMatchObject({ state: 'offline', reason: 'connection refused' });
  });

  it('should call a silent server offline after the timeout', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const r = await probeRtsp(new URL(`rtsp://127.0.0.1:${port}/x`), '127.0.0.1', 200);
      expect(r).toMatchObject({ state: 'offline', reason: 'no RTSP answer within 0 s' });
    } finally {
      silent.close();
    }
  });
});

describe('CameraHealth', () => {
  it('should back off while a camera is down, raise the offline alarm after the configured time, clear it on return, and log once per change', async () => {
    let now = 1_000_000;
    let answer: ProbeResult = { state: 'online', reason: 'DESCRIBE ok', ms: 1 };
    const probedAt: number[] = [];
    const changes: HealthChange[] = [];
    const alarms: Array<[boolean, string]> = [];
    const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
    const h = new CameraHealth({
      settings: { intervalS: 30, retryMinS: 5, retryMaxS: 60, timeoutS: 5, alarmAfterS: 120, concurrency: 4 },
      logger: memoryLogger(lines),
      target: async () => ({ url: new URL('rtsp://127.0.0.1:1/x'), address: '127.0.0.1' }),
      live: () => false,
      ids: () => ['cam-a'],
      onChange: (c) => changes.push(c),
      onAlarm: (_id, raised, reason) => alarms.push([raised, reason]),
      probe: async () => {
        probedAt.push(now);
        return answer;
      },
      now: () => now,
      random: () => 0.5,
    });
    const step = async (ms: number) => {
      now += ms;
      h.tick();
      await new Promise((r) => setImmediate(r));
    };
    await step(1_000);
    await step(1_000);
    expect(h.get('cam-a').state).toBe('online');
    answer = { state: 'offline', reason: 'connection refused', ms: 1 };
    for (let i = 0; i < 600; i++) await step(1_000); // ten minutes down
    expect(h.get('cam-a')).toMatchObject({ state: 'offline', reason: 'connection refused', alarmed: true });
    // Backoff: the gaps between probes grow (5, 10, 20, 40 s ... capped at 60 s, with jitter 75%).
    const gaps = probedAt.slice(1).map((t, i) => t - probedAt[i]!);
    expect(gaps.slice(1, 5)).toEqual([4_000, 8_000, 15_000, 30_000]);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(60_000);
    expect(alarms).toEqual([[true, 'connection refused']]);
    answer = { state: 'online', reason: 'DESCRIBE ok', ms: 1 };
    for (let i = 0; i < 60; i++) await step(1_000);
    expect(h.get('cam-a').state).toBe('online');
    expect(alarms).toEqual([[true, 'connection refused'], [false, 'DESCRIBE ok']]);
    expect(changes.map((c) => c.state)).toEqual(['online', 'offline', 'online']);
    // Ten minutes of failed probes: one line when it went down, one when it came back.
    const about = lines.filter((l) => l.obj.cameraId === 'cam-a' && l.level !== 'debug');
    expect(about.map((l) => l.msg)).toEqual(['camera online', 'camera offline', 'camera online']);
  });

  it('should report a live stream online without probing it', async () => {
    let probes = 0;
    const h = new CameraHealth({
      settings: { intervalS: 30, retryMinS: 5, retryMaxS: 60, timeoutS: 5, alarmAfterS: 120, concurrency: 4 },
      logger: memoryLogger([]),
      target: async () => ({ url: new URL('rtsp://127.0.0.1:1/x'), address: '127.0.0.1' }),
      live: () => true,
      ids: () => ['cam-b'],
      onChange: () => undefined,
      onAlarm: () => undefined,
      probe: async () => {
        probes++;
        return { state: 'offline', reason: 'x', ms: 0 };
      },
    });
    h.tick();
    expect(h.get('cam-b')).toMatchObject({ state: 'online', reason: 'streaming' });
    expect(probes).toBe(0);
  });
});

describe('camera URLs', () => {
  it('should refuse URLs with spaces, control characters, other schemes or fragments, and rebuild the URL from its parts for ffmpeg', () => {
    for (const bad of [' rtsp://h/x', 'rtsp://h/x ', 'rtsp://h/a\nb', 'file:///etc/passwd', 'http://h/x', 'rtsp://h/x#f', 'rtsp:///x', '-i rtsp://h/x']) {
      expect(() => parseRtspUrl(bad), bad).toThrow();
    }
    const u = parseRtspUrl('rtsp://admin:p%40ss@cam.example:8554/live/ch1?subtype=0');
    expect(ffmpegUrl(u, '10.1.2.3')).toBe('rtsp://admin:p%40ss@10.1.2.3:8554/live/ch1?subtype=0');
    expect(ffmpegUrl(parseRtspUrl('rtsp://h/x'), '::1')).toBe('rtsp://[::1]/x');
    expect(urlSecrets(u)).toEqual(expect.arrayContaining(['admin', 'p%40ss', 'p@ss']));
  });

  it('should allow only the configured camera networks, IPv4-mapped addresses included, and refuse names that resolve outside', async () => {
    const allow = NetAllowList.parse('10.20.0.0/16, 127.0.0.1, fd00::/8');
    expect(allow.allows('10.20.3.4')).toBe(true);
    expect(allow.allows('10.21.0.1')).toBe(false);
    expect(allow.allows('::ffff:10.20.0.9')).toBe(true);
    expect(allow.allows('169.254.169.254')).toBe(false);
    expect(allow.allows('fd12::1')).toBe(true);
    expect(NetAllowList.parse('').allows('8.8.8.8')).toBe(true);
    expect(() => NetAllowList.parse('10.0.0.0/33')).toThrow();
    expect(() => NetAllowList.parse('camera-net')).toThrow();
    await expect(resolveCamera(new URL('rtsp://localhost/x'), NetAllowList.parse('10.0.0.0/8'))).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(resolveCamera(new URL('rtsp://127.0.0.1/x'), allow)).resolves.toBe('127.0.0.1');
    await expect(resolveCamera(new URL('rtsp://no-such-host.invalid/x'), allow)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('should redact credentials from ffmpeg output', () => {
    const u = parseRtspUrl('rtsp://admin:Zx9-secret@10.0.0.5/ch1');
    const text = "[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized\nrtsp://admin:Zx9-secret@10.0.0.5/ch1: Server returned 401\nAuthorization: Basic YWRtaW46Wng5LXNlY3JldA==\nuser Zx9-secret";
    const r = redactText(text, urlSecrets(u));
    expect(r).not.toContain('Zx9-secret');
    expect(r).not.toContain('YWRtaW46');
    expect(r).toContain('rtsp://***:***@10.0.0.5/ch1');
  });
});

describe('RtpPacketiser (RFC 6184)', () => {
  it('should send small NAL units whole and split large ones into FU-A fragments with S/E bits, marker on the last packet of the picture', () => {
    const p = new RtpPacketiser(0x11223344, 100, 96, 65_534);
    const big = Buffer.alloc(250, 7);
    big[0] = 0x65; // IDR, NRI 3
    const pkts = p.packets({ nals: [Buffer.from([0x67, 1, 2]), big], key: true }, 0xabcdef01);
    expect(pkts).toHaveLength(4);
    expect(pkts.map((x) => x.readUInt16BE(2))).toEqual([65_534, 65_535, 0, 1]); // sequence wraps
    expect(pkts.map((x) => x[1]! >> 7)).toEqual([0, 0, 0, 1]);
    expect(pkts[0]!.subarray(12)).toEqual(Buffer.from([0x67, 1, 2]));
    const fu = pkts.slice(1).map((x) => [x[12]!, x[13]!]);
    expect(fu).toEqual([[0x7c, 0x85], [0x7c, 0x05], [0x7c, 0x45]]);
    const body = Buffer.concat(pkts.slice(1).map((x) => x.subarray(14)));
    expect(body).toEqual(big.subarray(1));
    expect(pkts.every((x) => x.readUInt32BE(4) === 0xabcdef01 && x.readUInt32BE(8) === 0x11223344)).toBe(true);
  });
});
