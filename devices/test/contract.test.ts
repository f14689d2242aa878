import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import {
  Actor, CASE_ACTIONS, CASE_STATUSES, Camera, CameraSnapshotBody, CaseActionBody, CaseSummary, CreateCategoryBody, CreateDepartmentBody, LinkageEvent, LinkedCamera, OPEN_STATUSES, StreamUrls,
  UpdateCategoryBody, UpdateDepartmentBody, WORKFLOW, WorkingCalendar, actionsFrom, roleMayTake, AlarmAckBody, HotlineOrderBody, MobilePositionsBody, Open311Request,
  CreateUserBody, CreateWorkerBody, RegisterDeviceBody,
} from '../src/contract/index.js';
import { DEFAULT_CALENDAR } from '../src/calendar.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/contract');
const importsOf = (file: string) => [...readFileSync(path.join(dir, file), 'utf8').matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)].map((m) => m[1]!);

describe('contract entry', () => {
  it('should import nothing that compiles a schema or needs Node (the console loads it under a CSP without unsafe-eval)', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      for (const spec of importsOf(f)) {
        expect(spec, `${f} imports ${spec}`).not.toMatch(/typebox\/compiler|^node:|schemas\.js|decode\.js|codecs/);
        if (!spec.startsWith('.')) expect(spec, `${f} imports ${spec}`).toBe('@sinclair/typebox');
      }
    }
  });

  it('should keep the workflow entry plain data (no TypeBox in a bundle that imports it)', () => {
    for (const f of ['workflow.ts', 'values.ts']) expect(importsOf(f).every((s) => s.startsWith('./'))).toBe(true);
    expect(importsOf('workflow.ts')).toEqual(['./values.js', './values.js']);
  });

  it('should list every case status once, open ones first, and every action in the table', () => {
    expect(CASE_STATUSES).toEqual([...OPEN_STATUSES, 'closed', 'rejected']);
    expect(new Set(CASE_ACTIONS).size).toBe(CASE_ACTIONS.length);
    expect(Object.keys(WORKFLOW)).toEqual([...CASE_ACTIONS]);
    for (const a of CASE_ACTIONS) for (const s of WORKFLOW[a].from) expect(CASE_STATUSES).toContain(s);
  });

  it('should answer who may take an action from the table alone', () => {
    expect(roleMayTake('officer', 'register')).toBe(true);
    expect(roleMayTake('dispatcher', 'register')).toBe(false);
    expect(roleMayTake('admin', 'verify')).toBe(true);
    expect(roleMayTake('integrator', 'cancel')).toBe(false);
    expect(actionsFrom('resolved')).toEqual(['verify', 'rework', 'cancel', 'supervise']);
    expect(actionsFrom('rejected')).toEqual([]);
  });

  it('should accept a case summary as the hub sends it and refuse one with an unknown status', () => {
    const c = {
      id: 'c1', code: 'GL-20260101-000001', title: '积水', status: 'registered', category: { code: 'E0402', name: '积水' }, severity: 'major',
      lat: 31.2, lon: 121.4, gridId: 'g1', source: 'rule', workerId: null, deadline: 1, overdue: false, createdAt: 1, updatedAt: 1,
    };
    expect(Value.Check(CaseSummary, c)).toBe(true);
    expect(Value.Check(CaseSummary, { ...c, status: 'done' })).toBe(false);
    expect(Value.Check(CaseSummary, { ...c, source: 'robot' })).toBe(false);
  });

  it('should tell actors apart by kind', () => {
    expect(Value.Check(Actor, { kind: 'user', id: 'u', name: 'n', role: 'officer', regionId: null })).toBe(true);
    expect(Value.Check(Actor, { kind: 'user', id: 'u', name: 'n', role: 'root', regionId: null })).toBe(false);
    expect(Value.Check(Actor, { kind: 'worker', id: 'w', name: 'n' })).toBe(false);
  });

  it('should refuse an action body with a field it does not know or an action outside the workflow', () => {
    expect(Value.Check(CaseActionBody, { action: 'dispatch', workerId: 'w1' })).toBe(true);
    expect(Value.Check(CaseActionBody, { action: 'dispatch', status: 'closed' })).toBe(false);
    expect(Value.Check(CaseActionBody, { action: 'delete' })).toBe(false);
  });

  it('should type a linkage event without a case as invalid (the hub sends linkage only for cases)', () => {
    const cam = { id: 'cam1', name: 'c', distanceM: 12, covers: null, stream: '/api/v1/cameras/cam1/stream' };
    expect(Value.Check(LinkageEvent, { caseId: 'c1', cameras: [cam] })).toBe(true);
    expect(Value.Check(LinkageEvent, { caseId: null, cameras: [cam] })).toBe(false);
  });

  it('should hold one linked camera for REST linkage and the linkage event, with its view always stated', () => {
    const cam = { id: 'cam1', name: 'c', distanceM: 12, covers: false, stream: '/api/v1/cameras/cam1/stream' };
    expect(Value.Check(LinkedCamera, cam)).toBe(true);
    const { covers: _c, ...noView } = cam;
    expect(Value.Check(LinkedCamera, noView)).toBe(false);
    expect(Value.Check(LinkageEvent, { caseId: 'c1', cameras: [noView] })).toBe(false);
  });

  it('should accept a camera and its stream as the hub answers them and refuse a health state the probes never give', () => {
    const cam = {
      id: 'cam1', name: 'c', rtspUrl: 'rtsp://host/s', lat: 31.2, lon: 121.4, heading: null, fov: null, rangeM: null, gridId: null, gb28181Id: null, vendor: null,
      codec: 'h264', transcode: false, createdAt: 1, online: true, stream: { state: 'idle', viewers: 0 }, buffer: true, buffering: false,
      health: { state: 'online', reason: 'OPTIONS+DESCRIBE ok', since: 1, lastProbeAt: 2 },
    };
    expect(Value.Check(Camera, cam)).toBe(true);
    expect(Value.Check(Camera, { ...cam, health: { ...cam.health, state: 'fine' } })).toBe(false);
    const urls = { cameraId: 'cam1', hls: '/video/cam1/index.m3u8?token=t', live: '/video/cam1/live?token=t', expiresAt: 1, state: 'starting' };
    expect(Value.Check(StreamUrls, urls)).toBe(true);
    expect(Value.Check(StreamUrls, { ...urls, health: { state: 'offline', reason: 'connection refused' } })).toBe(true);
    expect(Value.Check(StreamUrls, { ...urls, health: { state: 'down', reason: 'x' } })).toBe(false);
  });

  it('should refuse a snapshot body that names anything but the case', () => {
    expect(Value.Check(CameraSnapshotBody, { caseId: 'c1' })).toBe(true);
    expect(Value.Check(CameraSnapshotBody, { caseId: 'c1', deviceId: 'other' })).toBe(false);
    expect(Value.Check(CameraSnapshotBody, { caseId: '' })).toBe(false);
  });

  it('should refuse a category body whose code is not kind letter + 4 digits, or that carries a field the hub computes', () => {
    const c = { kind: 'event', majorCode: '04', minorCode: '09', name: '井盖缺失', nameEn: 'Missing cover', timeLimitMin: 120, defaultSeverity: 'major' };
    expect(Value.Check(CreateCategoryBody, c)).toBe(true);
    expect(Value.Check(CreateCategoryBody, { ...c, code: 'E0409' })).toBe(true);
    expect(Value.Check(CreateCategoryBody, { ...c, code: 'X0409' })).toBe(false);
    expect(Value.Check(CreateCategoryBody, { ...c, majorName: '市容', createdAt: 1 })).toBe(false);
    expect(Value.Check(UpdateCategoryBody, {})).toBe(false);
    expect(Value.Check(UpdateCategoryBody, { limitUnit: 'calendar' })).toBe(true);
    expect(Value.Check(UpdateCategoryBody, { limitUnit: 'lunar' })).toBe(false);
  });

  it('should refuse a department body with an id the hub cannot route to or a field it does not know', () => {
    expect(Value.Check(CreateDepartmentBody, { id: 'water', name: '水务', categories: ['E0402'], regionId: null })).toBe(true);
    expect(Value.Check(CreateDepartmentBody, { id: 'Water Dept', name: '水务' })).toBe(false);
    expect(Value.Check(CreateDepartmentBody, { id: 'water', name: '水务', categories: ['fire'] })).toBe(false);
    expect(Value.Check(UpdateDepartmentBody, {})).toBe(false);
    expect(Value.Check(UpdateDepartmentBody, { enabled: false, suggested: true })).toBe(false);
  });

  it('should accept the default working calendar and refuse hours that are no HH:MM pair', () => {
    expect(Value.Check(WorkingCalendar, DEFAULT_CALENDAR)).toBe(true);
    expect(Value.Check(WorkingCalendar, { ...DEFAULT_CALENDAR, hours: [['9:00', '12:00']] })).toBe(false);
    expect(Value.Check(WorkingCalendar, { ...DEFAULT_CALENDAR, hours: [['09:00']] })).toBe(false);
  });

  it('should take an alarm acknowledgement with a comment, an empty body or none, and refuse a comment too long to store', () => {
    expect(Value.Check(AlarmAckBody, { comment: '已到场' })).toBe(true);
    expect(Value.Check(AlarmAckBody, {})).toBe(true);
    expect(Value.Check(AlarmAckBody, null)).toBe(true);
    expect(Value.Check(AlarmAckBody, { comment: 'x'.repeat(2001) })).toBe(false);
  });

  it('should refuse a hotline order or a batch of fixes carrying a field the hub must not accept', () => {
    const order = { orderNo: 'H-1', category: 'E0402', content: '积水', lat: 31.2, lon: 121.4 };
    expect(Value.Check(HotlineOrderBody, order)).toBe(true);
    expect(Value.Check(HotlineOrderBody, { ...order, source: 'officer' })).toBe(false);
    expect(Value.Check(HotlineOrderBody, { ...order, orderNo: 'a b' })).toBe(false);
    expect(Value.Check(MobilePositionsBody, { items: [{ ts: 1, lat: 31.2, lon: 121.4 }] })).toBe(true);
    expect(Value.Check(MobilePositionsBody, { items: [] })).toBe(false);
    expect(Value.Check(MobilePositionsBody, { items: [{ ts: 1, lat: 31.2, lon: 121.4 }], deviceId: 'other' })).toBe(false);
  });

  it('should type an Open311 request with the workflow status as its extension', () => {
    const r = {
      service_request_id: 'GL-20260101-000001', status: 'open', status_notes: null, service_name: '积水', service_code: 'E0402', description: null, agency_responsible: null,
      service_notice: null, requested_datetime: '2026-01-01T00:00:00.000Z', updated_datetime: '2026-01-01T00:00:00.000Z', expected_datetime: null, address: null,
      lat: 31.2, long: 121.4, media_url: null, gridlink_status: 'registered', gridlink_rating: null, gridlink_can_rate: false,
    };
    expect(Value.Check(Open311Request, r)).toBe(true);
    expect(Value.Check(Open311Request, { ...r, gridlink_status: 'done' })).toBe(false);
  });

  it('should state that REST bodies refuse a field they do not name, as the hub does (a secret, an id or a status set by the caller)', () => {
    expect(Value.Check(CreateUserBody, { username: 'li', password: 'correct horse', role: 'officer' })).toBe(true);
    expect(Value.Check(CreateUserBody, { username: 'li', password: 'correct horse', role: 'officer', id: 'u-admin' })).toBe(false);
    expect(Value.Check(RegisterDeviceBody, { type: 'sensor.smoke' })).toBe(true);
    expect(Value.Check(RegisterDeviceBody, { type: 'sensor.smoke', secret: 'chosen' })).toBe(false);
    expect(Value.Check(RegisterDeviceBody, { type: 'sensor.smoke', meta: { floor: 3 } })).toBe(true);
    expect(Value.Check(CreateWorkerBody, { name: '张三', deviceId: 'hh-1' })).toBe(true);
    expect(Value.Check(CreateWorkerBody, { name: '张三', deviceId: 'hh-1', status: 'available' })).toBe(false);
  });
});
