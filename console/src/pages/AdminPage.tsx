/** Admin for integrators and admins: devices, cameras, workers, grids, rules, users. */
import { useEffect, useState, type ReactNode } from 'react';
import { api, get, items, patch, post, put } from '../api/client';
import type { DeviceTypeDef } from '@gridlink/devices/catalogue';
import type {
  BacktestWindow, CreateUserBody, CreateWorkerBody, Device, DeviceSecret, DutyBody, GridsReplaced, PasswordBody, RegisterDeviceBody, RegisteredCamera, RegisteredDevice, Role, Rule, RuleBacktest,
  UpdateUserBody, User, Worker,
} from '../api/types';
import { useI18n } from '../i18n';
import type { DictKey } from '../i18n/dict';
import { cameraState, cameras, devices, grids, workers } from '../store/data';
import { useEntities, useValue } from '../store/entities';
import { ADMIN_TABS_BY_ROLE } from '../store/roles';
import { session } from '../store/session';
import { ago, errorText, gridLevel } from '../views/format';

type Tab = (typeof ADMIN_TABS_BY_ROLE)['admin'][number];

export default function AdminPage({ tab }: { tab?: string }) {
  const { t } = useI18n();
  const role = useValue(session)!.user.role;
  const tabs = ADMIN_TABS_BY_ROLE[role];
  const cur = (tabs.includes(tab as Tab) ? tab : tabs[0]) as Tab;
  return (
    <div className="page">
      <nav className="tabs">
        {tabs.map((x) => (
          <a key={x} href={`#/admin/${x}`} className={x === cur ? 'active' : ''} data-tab={x}>{t(`admin.${x}` as DictKey)}</a>
        ))}
      </nav>
      {cur === 'devices' && <DevicesTab />}
      {cur === 'cameras' && <CamerasTab />}
      {cur === 'workers' && <WorkersTab />}
      {cur === 'grids' && <GridsTab />}
      {cur === 'rules' && <RulesTab />}
      {cur === 'users' && <UsersTab />}
    </div>
  );
}

function useAction() {
  const { t } = useI18n();
  const [err, setErr] = useState<string | null>(null);
  const run = async (fn: () => Promise<unknown>) => {
    setErr(null);
    try {
      await fn();
      return true;
    } catch (e) {
      setErr(errorText(t, e));
      return false;
    }
  };
  return { err, run, el: err ? <p className="error">{err}</p> : null };
}

function Secret({ id, secret }: { id: string; secret: string }) {
  const { t } = useI18n();
  return (
    <div className="panel" style={{ padding: '0.75rem', marginBottom: '1rem' }} data-testid="secret-once">
      <p>{t('admin.secretOnce')}</p>
      <div className="secret">{id} : {secret}</div>
    </div>
  );
}

function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <label className="field">
      <span>{label}</span>
      {children}
    </label>
  );
}

/** Form state of text inputs and selects; `bind(key)` gives one control its value and onChange. */
function useForm<F extends Record<string, string>>(initial: F) {
  const [form, setForm] = useState(initial);
  const bind = (key: keyof F) => ({
    value: form[key],
    onChange: (e: { target: { value: string } }) => setForm((f) => ({ ...f, [key]: e.target.value })),
  });
  return { form, setForm, bind };
}

function Head({ cols }: { cols: string[] }) {
  return (
    <thead>
      <tr>{cols.map((c) => <th key={c}>{c}</th>)}</tr>
    </thead>
  );
}

// ------------------------------------------------------------------ devices

const DEVICE_TYPES = ['sensor.smoke', 'sensor.water_level', 'sensor.manhole_cover', 'sensor.gas', 'sensor.air_quality', 'camera', 'handheld'];

function DevicesTab() {
  const { t } = useI18n();
  const list = useEntities(devices);
  const [types, setTypes] = useState<Array<Pick<DeviceTypeDef, 'type' | 'label'>>>([]);
  const { lang } = useI18n();
  const { form, setForm, bind } = useForm({ id: '', type: 'sensor.smoke', name: '', lat: '', lon: '' });
  const [secret, setSecret] = useState<DeviceSecret | null>(null);
  const a = useAction();
  useEffect(() => {
    items<Pick<DeviceTypeDef, 'type' | 'label'>>('/device-types').then((r) => setTypes(r.items)).catch(() => undefined);
  }, []);
  const typeLabel = (ty: string) => types.find((x) => x.type === ty)?.label[lang] ?? ty;

  const register = () =>
    a.run(async () => {
      const body: RegisterDeviceBody = { type: form.type as RegisterDeviceBody['type'] };
      if (form.id) body.id = form.id;
      if (form.name) body.name = form.name;
      if (form.lat && form.lon) Object.assign(body, { lat: Number(form.lat), lon: Number(form.lon) } satisfies Partial<RegisterDeviceBody>);
      const d = await post<RegisteredDevice>('/devices', body);
      setSecret({ id: d.id, secret: d.secret });
      const { secret: _s, ...dev } = d;
      devices.upsert(dev);
      setForm({ ...form, id: '', name: '' });
    });

  return (
    <>
      <h3>{t('admin.register')}</h3>
      <div className="form-inline">
        <Field label={t('common.id')}><input {...bind('id')} data-testid="dev-id" /></Field>
        <Field label={t('common.type')}>
          <select {...bind('type')} data-testid="dev-type">
            {(types.length ? types.map((x) => x.type) : DEVICE_TYPES).map((ty) => (
              <option key={ty} value={ty}>{typeLabel(ty)}</option>
            ))}
          </select>
        </Field>
        <Field label={t('common.name')}><input {...bind('name')} /></Field>
        <Field label={t('common.lat')}><input {...bind('lat')} size={10} /></Field>
        <Field label={t('common.lon')}><input {...bind('lon')} size={10} /></Field>
        <button type="button" className="primary" onClick={() => void register()} data-testid="dev-register">{t('admin.register')}</button>
      </div>
      {a.el}
      {secret && <Secret {...secret} />}
      <table className="grid-table" data-testid="device-table">
        <Head cols={[t('common.id'), t('common.name'), t('common.type'), t('common.status'), t('device.lastSeen'), t('common.grid'), t('common.actions')]} />
        <tbody>
          {list.map((d) => (
            <tr key={d.id} data-device-id={d.id}>
              <td className="code">{d.id}</td>
              <td>{d.name}</td>
              <td>{typeLabel(d.type)}</td>
              <td>{!d.enabled ? t('common.disabled') : d.online ? t('device.online') : t('device.offline')}</td>
              <td>{ago(t, d.lastSeen)}</td>
              <td>{d.gridId ?? ''}</td>
              <td className="row">
                <button type="button" onClick={() => void a.run(async () => devices.upsert(await post<Device>(`/devices/${encodeURIComponent(d.id)}/${d.enabled ? 'disable' : 'enable'}`)))}>
                  {d.enabled ? t('admin.disable') : t('admin.enable')}
                </button>
                <button
                  type="button"
                  onClick={() => {
                    if (!confirm(t('admin.rotateConfirm'))) return;
                    void a.run(async () => setSecret(await post<DeviceSecret>(`/devices/${encodeURIComponent(d.id)}/rotate-secret`)));
                  }}
                >
                  {t('admin.rotate')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

// ------------------------------------------------------------------ cameras

function CamerasTab() {
  const { t } = useI18n();
  const list = useEntities(cameras);
  const { form, bind } = useForm({ id: '', name: '', rtspUrl: '', lat: '', lon: '' });
  const [secret, setSecret] = useState<{ id: string; secret: string } | null>(null);
  const a = useAction();
  const add = () =>
    a.run(async () => {
      // Empty fields are left out, not sent as Number('') = 0: the hub then answers
      // which field is missing instead of placing the camera at (0, 0).
      const body: Record<string, unknown> = { rtspUrl: form.rtspUrl };
      if (form.lat.trim()) body.lat = Number(form.lat);
      if (form.lon.trim()) body.lon = Number(form.lon);
      if (form.id) body.id = form.id;
      if (form.name) body.name = form.name;
      const c = await post<RegisteredCamera>('/cameras', body);
      setSecret({ id: c.id, secret: c.secret });
      const { secret: _s, ...cam } = c;
      cameras.upsert(cam);
      // The camera is also a device under the same id: fetch that one row, not a full re-sync.
      devices.upsert(await get<Device>(`/devices/${encodeURIComponent(c.id)}`));
    });
  return (
    <>
      <h3>{t('admin.addCamera')}</h3>
      <div className="form-inline">
        <Field label={t('common.id')}><input {...bind('id')} /></Field>
        <Field label={t('common.name')}><input {...bind('name')} /></Field>
        <Field label={t('admin.rtsp')}><input {...bind('rtspUrl')} size={36} /></Field>
        <Field label={t('common.lat')}><input {...bind('lat')} size={10} /></Field>
        <Field label={t('common.lon')}><input {...bind('lon')} size={10} /></Field>
        <button type="button" className="primary" onClick={() => void add()}>{t('admin.addCamera')}</button>
      </div>
      {a.el}
      {secret && <Secret {...secret} />}
      <table className="grid-table">
        <Head cols={[t('common.id'), t('common.name'), t('common.status'), t('common.grid'), t('common.lat'), t('common.lon')]} />
        <tbody>
          {list.map((c) => (
            <tr key={c.id}>
              <td className="code">{c.id}</td><td>{c.name}</td><td data-testid="camera-state" data-camera-id={c.id} data-state={cameraState(c)} title={(c.health as { reason?: string } | undefined)?.reason}>{t(`camera.state.${cameraState(c)}`)}</td><td>{c.gridId ?? ''}</td><td>{c.lat}</td><td>{c.lon}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

// ------------------------------------------------------------------ workers

function WorkersTab() {
  const { t } = useI18n();
  const list = useEntities(workers);
  const devs = useEntities(devices);
  const { form, setForm, bind } = useForm({ name: '', deviceId: '', gridIds: '' });
  const a = useAction();
  const handhelds = devs.filter((d) => d.type === 'handheld' && !list.some((w) => w.deviceId === d.id));
  const add = () =>
    a.run(async () => {
      const w = await post<Worker>('/workers', { name: form.name, deviceId: form.deviceId, gridIds: form.gridIds.split(',').map((s) => s.trim()).filter(Boolean) } satisfies CreateWorkerBody);
      workers.upsert(w);
      setForm({ name: '', deviceId: '', gridIds: '' });
    });
  return (
    <>
      <h3>{t('admin.addWorker')}</h3>
      <div className="form-inline">
        <Field label={t('common.name')}><input {...bind('name')} /></Field>
        <Field label={t('worker.device')}>
          <select {...bind('deviceId')}>
            <option value="">—</option>
            {handhelds.map((d) => (
              <option key={d.id} value={d.id}>{d.name || d.id}</option>
            ))}
          </select>
        </Field>
        <Field label={t('worker.grids')}><input {...bind('gridIds')} /></Field>
        <button type="button" className="primary" onClick={() => void add()} disabled={!form.name || !form.deviceId}>{t('admin.addWorker')}</button>
      </div>
      {a.el}
      <table className="grid-table">
        <Head cols={[t('common.name'), t('worker.device'), t('worker.grids'), t('common.status'), t('common.actions')]} />
        <tbody>
          {list.map((w) => (
            <tr key={w.id}>
              <td>{w.name}</td><td className="code">{w.deviceId}</td><td>{w.gridIds?.join(', ')}</td><td>{t(`worker.status.${w.status}` as DictKey)}</td>
              <td>
                <button type="button" onClick={() => void a.run(async () => workers.upsert(await post<Worker>(`/workers/${encodeURIComponent(w.id)}/duty`, { onDuty: w.status === 'off_duty' } satisfies DutyBody)))}>
                  {w.status === 'off_duty' ? t('admin.onDuty') : t('admin.offDuty')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

// ------------------------------------------------------------------ grids

function GridsTab() {
  const { t } = useI18n();
  const g = useValue(grids);
  const [msg, setMsg] = useState<string | null>(null);
  const a = useAction();
  const byLevel = new Map<string, number>();
  for (const f of g.features) byLevel.set(String(f.properties.level), (byLevel.get(String(f.properties.level)) ?? 0) + 1);
  const importFile = (file: File) =>
    a.run(async () => {
      let body: unknown;
      try {
        body = JSON.parse(await file.text());
      } catch {
        throw new Error(t('admin.invalidJson'));
      }
      const r = await put<GridsReplaced>('/grids', body);
      setMsg(t('admin.gridsImported', { n: r.count }));
      grids.set(await get('/grids'));
    });
  return (
    <>
      <h3>{t('admin.importGrids')}</h3>
      <label className="field">
        <span>{t('admin.gridsFile')}</span>
        <input type="file" accept=".json,.geojson,application/geo+json,application/json" onChange={(e) => e.target.files?.[0] && void importFile(e.target.files[0])} data-testid="grids-file" />
      </label>
      {a.el}
      {msg && <p className="hint" data-testid="grids-msg">{msg}</p>}
      <ul className="legend">
        {[...byLevel].map(([lv, n]) => (
          <li key={lv}>{gridLevel(t, lv)} <b>{n}</b></li>
        ))}
      </ul>
    </>
  );
}

// ------------------------------------------------------------------ rules

function RulesTab() {
  const { t } = useI18n();
  const [list, setList] = useState<Rule[] | null>(null);
  const [editing, setEditing] = useState<{ id: string; text: string } | null>(null);
  const [result, setResult] = useState<string | null>(null);
  const a = useAction();
  const load = () => items<Rule>('/rules').then((r) => setList(r.missing ? null : r.items)).catch(() => setList(null));
  useEffect(() => {
    void load();
  }, []);
  if (!list) return <p className="hint">{t('common.unavailable')}</p>;
  const save = () =>
    a.run(async () => {
      let body: Rule;
      try {
        body = JSON.parse(editing!.text) as Rule;
      } catch {
        throw new Error(t('admin.invalidJson'));
      }
      await put(`/rules/${encodeURIComponent(editing!.id)}`, body);
      setEditing(null);
      await load();
    });
  const backtest = (r: Rule) =>
    a.run(async () => {
      const to = Date.now();
      const res = await post<RuleBacktest>(`/rules/${encodeURIComponent(r.id)}/backtest`, { from: to - 7 * 86400_000, to } satisfies BacktestWindow);
      setResult(t('admin.backtestResult', { n: res.totals.alarms, cases: res.totals.cases, messages: res.messages }));
    });
  return (
    <>
      {a.el}
      {result && <p className="hint" data-testid="backtest-result">{result}</p>}
      <table className="grid-table">
        <Head cols={[t('common.id'), t('common.name'), t('common.status'), t('common.actions')]} />
        <tbody>
          {list.map((r) => (
            <tr key={r.id}>
              <td className="code">{r.id}</td>
              <td>{String(r.name ?? '')}</td>
              <td>{r.enabled ? t('common.enabled') : t('common.disabled')}</td>
              <td className="row">
                <button type="button" onClick={() => void a.run(async () => { await post(`/rules/${encodeURIComponent(r.id)}/${r.enabled ? 'disable' : 'enable'}`); await load(); })}>
                  {r.enabled ? t('admin.disable') : t('admin.enable')}
                </button>
                <button type="button" onClick={() => {
                  // Stored bookkeeping is not part of the definition the hub accepts back.
                  const { version: _v, createdAt: _c, updatedAt: _u, ...def } = r;
                  setEditing({ id: r.id, text: JSON.stringify(def, null, 2) });
                }}>{t('admin.ruleEdit')}</button>
                <button type="button" onClick={() => void backtest(r)}>{t('admin.backtest')}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editing && (
        <div className="panel" style={{ padding: '0.75rem', marginTop: '1rem' }}>
          <Field label={t('admin.ruleJson')}>
            <textarea value={editing.text} onChange={(e) => setEditing({ ...editing, text: e.target.value })} rows={16} />
          </Field>
          <div className="row">
            <button type="button" className="primary" onClick={() => void save()}>{t('common.save')}</button>
            <button type="button" onClick={() => setEditing(null)}>{t('common.cancel')}</button>
          </div>
        </div>
      )}
    </>
  );
}

// ------------------------------------------------------------------ users

const ROLES: Role[] = ['officer', 'dispatcher', 'integrator', 'worker', 'admin'];

function UsersTab() {
  const { t } = useI18n();
  const [list, setList] = useState<User[]>([]);
  const [msg, setMsg] = useState<string | null>(null);
  const { form, setForm, bind } = useForm({ username: '', password: '', role: 'officer' as Role, regionId: '', displayName: '' });
  const a = useAction();
  const load = () => items<User>('/users').then((r) => setList(r.items)).catch(() => undefined);
  useEffect(() => {
    void load();
  }, []);
  const add = () =>
    a.run(async () => {
      await post('/users', { username: form.username, password: form.password, role: form.role, ...(form.regionId ? { regionId: form.regionId } : {}), ...(form.displayName ? { displayName: form.displayName } : {}) } satisfies CreateUserBody);
      setForm({ ...form, username: '', password: '', displayName: '' });
      await load();
    });
  /** Every change of access ends the user's sessions at once (the hub revokes their tokens and sockets). */
  const change = (u: User, body: UpdateUserBody) =>
    a.run(async () => {
      await patch(`/users/${encodeURIComponent(u.id)}`, body);
      await load();
    });
  const region = (u: User) => {
    const v = prompt(t('admin.regionPrompt'), u.regionId ?? '');
    if (v !== null) void change(u, { regionId: v.trim() || null });
  };
  const reset = (u: User) => {
    const pw = prompt(t('admin.newPassword'));
    if (pw) void a.run(async () => {
      await post(`/users/${encodeURIComponent(u.id)}/password`, { password: pw } satisfies PasswordBody);
      setMsg(t('admin.passwordReset'));
    });
  };
  const remove = (u: User) => {
    if (!confirm(t('admin.deleteUserConfirm', { name: u.username }))) return;
    void a.run(async () => {
      await api('DELETE', `/users/${encodeURIComponent(u.id)}`);
      await load();
    });
  };
  return (
    <>
      <h3>{t('admin.addUser')}</h3>
      <div className="form-inline">
        <Field label={t('login.username')}><input {...bind('username')} /></Field>
        <Field label={t('login.password')}><input type="password" {...bind('password')} /></Field>
        <Field label={t('admin.displayName')}><input {...bind('displayName')} /></Field>
        <Field label={t('common.type')}>
          <select {...bind('role')}>
            {ROLES.map((r) => (
              <option key={r} value={r}>{t(`role.${r}`)}</option>
            ))}
          </select>
        </Field>
        <Field label={t('admin.region')}><input {...bind('regionId')} /></Field>
        <button type="button" className="primary" onClick={() => void add()} disabled={!form.username || form.password.length < 8}>{t('admin.addUser')}</button>
      </div>
      {a.el}
      {msg && <p className="hint">{msg}</p>}
      <table className="grid-table" data-testid="user-table">
        <Head cols={[t('login.username'), t('admin.displayName'), t('common.type'), t('admin.region'), t('common.status'), t('common.actions')]} />
        <tbody>
          {list.map((u) => (
            <tr key={u.id} data-user={u.username}>
              <td>{u.username}</td>
              <td>{u.displayName}</td>
              <td>
                <select value={u.role} onChange={(e) => void change(u, { role: e.target.value as Role })} data-testid="user-role">
                  {ROLES.map((r) => (
                    <option key={r} value={r}>{t(`role.${r}`)}</option>
                  ))}
                </select>
              </td>
              <td>{u.regionId ?? ''}</td>
              <td>{u.enabled === false ? t('common.disabled') : t('common.enabled')}</td>
              <td className="row">
                <button type="button" onClick={() => region(u)}>{t('admin.changeRegion')}</button>
                <button type="button" onClick={() => void change(u, { enabled: u.enabled === false })} data-testid="user-toggle">
                  {u.enabled === false ? t('admin.enable') : t('admin.disable')}
                </button>
                <button type="button" onClick={() => reset(u)}>{t('admin.resetPassword')}</button>
                <button type="button" className="danger" onClick={() => remove(u)}>{t('admin.deleteUser')}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
