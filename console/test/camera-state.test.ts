/**
 * A camera's state on the list and the map, read from the camera as the hub
 * answers it (the contract's Camera) and kept current by `camera.state`.
 */
import type { Camera } from '@gridlink/devices/contract';
import { describe, expect, it } from 'vitest';
import { applyCameraState, cameraState, cameras } from '../src/store/data';

const cam = (over: Partial<Camera> = {}): Camera => ({
  id: 'cam-1', name: '北门', rtspUrl: 'rtsp://10.0.0.5/s', lat: 30.67, lon: 104.06, heading: null, fov: null, rangeM: null, gridId: null, gb28181Id: null,
  vendor: null, codec: 'h264', transcode: false, createdAt: 1, online: true, stream: { state: 'idle', viewers: 0 }, buffer: true, buffering: false,
  health: { state: 'unknown', reason: 'not probed yet', since: 1, lastProbeAt: null }, ...over,
});

describe('cameraState', () => {
  it('should show a live stream first, then the probes\' verdict, then the device connection before any probe', () => {
    expect(cameraState(cam({ stream: { state: 'live', viewers: 1 }, health: { state: 'degraded', reason: 'slow', since: 2, lastProbeAt: 2 } }))).toBe('live');
    expect(cameraState(cam({ online: true, health: { state: 'offline', reason: 'refused', since: 2, lastProbeAt: 2 } }))).toBe('offline');
    expect(cameraState(cam({ online: false, health: { state: 'degraded', reason: 'slow', since: 2, lastProbeAt: 2 } }))).toBe('degraded');
    expect(cameraState(cam({ online: true }))).toBe('online');
    expect(cameraState(cam({ online: false }))).toBe('offline');
  });

  it('should take a camera.state event into the stored camera and keep what the event does not carry', () => {
    cameras.setAll([cam({ stream: { state: 'idle', viewers: 3 }, health: { state: 'online', reason: 'ok', since: 1, lastProbeAt: 5 } })]);
    applyCameraState({ cameraId: 'cam-1', state: 'offline', reason: 'connection refused', since: 9, stream: 'stalled', buffering: false });
    const c = cameras.get('cam-1')!;
    expect(c.health).toEqual({ state: 'offline', reason: 'connection refused', since: 9, lastProbeAt: 5 });
    expect(c.stream).toEqual({ state: 'stalled', viewers: 3 });
    expect(cameraState(c)).toBe('offline');
    applyCameraState({ cameraId: 'cam-2', state: 'online', reason: 'ok', since: 9, stream: 'idle', buffering: false });
    expect(cameras.get('cam-2')).toBeUndefined();
  });
});
