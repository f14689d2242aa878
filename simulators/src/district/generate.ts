/**
 * Demo district generator, deterministic from a seed.
 *
 * The district is a jittered lattice of unit grids: lattice vertices and
 * edge midpoints are computed once and shared by every polygon that touches
 * them, so neighbours have bit-identical edges and the grids tile the
 * district with no gaps and no overlaps by construction (tests prove it).
 *
 *   district (6-digit admin code)
 *     └ street 街道 (a column band of communities)
 *         └ community 社区 (a block of cells)
 *             └ unit grid 单元网格 (one cell)
 *
 * The road network runs along interior grid boundaries (roads 路/街) and
 * from each grid centre to its edges (lanes 巷), so it is connected and
 * workers walking it cross grids the way real patrols do.
 */
import type { DeviceType } from '@gridlink/devices';
import type { GridCollection as ContractGridCollection } from '@gridlink/devices/contract';
import { CodeBuilder, schemeFor, type CodeScheme } from './codes.js';
import { centroid, dist, pointInRing, projection, type Pt } from './geo.js';
import { Rng } from '../util/rng.js';

export interface DistrictOptions {
  seed: number;
  /** District name, e.g. 金牛区. */
  name: string;
  /** Centre of the district (WGS-84). */
  lat: number;
  lon: number;
  /** 6-digit administrative division code (GB/T 2260), e.g. 510106 Chengdu Jinniu. */
  adminCode: string;
  codeDigits: 14 | 15;
  /** Streets (街道), side by side west to east. */
  streets: number;
  /** Communities per street, stacked south to north. */
  communitiesPerStreet: number;
  /** Unit grids per community as columns x rows. */
  communityCols: number;
  communityRows: number;
  /** Nominal grid edge length in metres. */
  cellM: number;
  /** Vertex jitter as a fraction of cellM (kept < 0.25 so every cell stays a simple polygon). */
  jitter: number;
  /** Probability that a grid gets a second worker. */
  secondWorker: number;
}

export const PRESETS = {
  /** Chengdu Jinniu (金牛区), 30.70N 104.05E; the seed case study of DOMAIN.md. */
  jinniu: { name: '金牛区', lat: 30.7, lon: 104.05, adminCode: '510106' },
  /** Beijing Haidian (海淀区). */
  haidian: { name: '海淀区', lat: 39.96, lon: 116.3, adminCode: '110108' },
} as const;

export const DEFAULT_OPTIONS: DistrictOptions = {
  seed: 20240601,
  ...PRESETS.jinniu,
  codeDigits: 15,
  streets: 4,
  communitiesPerStreet: 3,
  communityCols: 3,
  communityRows: 3,
  cellM: 300,
  jitter: 0.18,
  secondWorker: 0.4,
};

export type GridLevel = 'district' | 'street' | 'community' | 'grid';

/** A type, not an interface: the grids go on the wire as the contract's `GridUpload`, whose properties are a string-keyed record. */
export type GridProps = {
  id: string;
  code: string;
  name: string;
  level: GridLevel;
  parentId: string | null;
};

export interface PolygonFeature {
  type: 'Feature';
  id: string;
  properties: GridProps;
  geometry: { type: 'Polygon'; coordinates: Array<Array<[number, number]>> };
}

export interface GridCollection {
  type: 'FeatureCollection';
  features: PolygonFeature[];
}

export type StreetNodeKind = 'intersection' | 'junction' | 'centre';

export interface StreetNodeFeature {
  type: 'Feature';
  id: string;
  properties: { id: string; kind: StreetNodeKind; elevationM: number };
  geometry: { type: 'Point'; coordinates: [number, number] };
}

export interface StreetEdgeFeature {
  type: 'Feature';
  id: string;
  properties: { id: string; from: string; to: string; kind: 'road' | 'lane'; name: string; lengthM: number };
  geometry: { type: 'LineString'; coordinates: Array<[number, number]> };
}

export interface StreetCollection {
  type: 'FeatureCollection';
  features: Array<StreetNodeFeature | StreetEdgeFeature>;
}

export interface SimDevice {
  id: string;
  type: DeviceType;
  name: string;
  lat: number;
  lon: number;
  gridId: string;
  meta: Record<string, unknown>;
}

export interface SimWorker {
  /** Stable local key; the hub assigns its own worker id at provisioning. */
  key: string;
  name: string;
  deviceId: string;
  gridIds: string[];
  role: 'worker' | 'leader';
  /** Street node where the worker starts and patrols around. */
  homeNode: string;
  mode: 'walk' | 'cycle';
  speedMps: number;
}

export interface DistrictMeta {
  format: 'gridlink-district/1';
  seed: number;
  name: string;
  center: { lat: number; lon: number };
  codeScheme: CodeScheme;
  cellM: number;
  cols: number;
  rows: number;
  counts: Record<string, number>;
}

export interface District {
  meta: DistrictMeta;
  grids: GridCollection;
  streets: StreetCollection;
  devices: SimDevice[];
  workers: SimWorker[];
}

const STREET_NAMES = ['西华', '抚琴', '茶店子', '营门口', '沙河源', '驷马桥', '荷花池', '九里堤'];
const COMMUNITY_NAMES = [
  '银沙', '蜀汉', '金鱼', '友联', '五福桥', '花照', '西月城', '新桥', '金仙桥', '白马寺', '兴盛', '解放',
  '人民北', '星科', '高家庄', '金泉', '土桥', '洞子口', '双水碾', '红花堰', '羊西', '侯家桥', '马鞍', '王贾',
];
const ROAD_STEMS = [
  '蜀西', '金府', '一环', '二环', '羊西', '沙湾', '营康', '金牛', '抚琴', '交大', '西体', '花牌坊',
  '星辉', '北站', '人民', '通锦', '银沙', '青羊', '长庆', '高笋塘', '兴科', '韦家碾', '天回', '量力',
];
const SURNAMES = '王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢';
const GIVEN = '伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华建国红梅文斌玉兰志鹏宇浩雪琳晨欣';

export function generateDistrict(partial: Partial<DistrictOptions> = {}): District {
  const o: DistrictOptions = { ...DEFAULT_OPTIONS, ...partial };
  if (!(o.jitter >= 0 && o.jitter < 0.25)) throw new RangeError('jitter must be in [0, 0.25)');
  if (o.streets < 1 || o.communitiesPerStreet < 1 || o.communityCols < 1 || o.communityRows < 1) throw new RangeError('counts must be >= 1');
  const codes = new CodeBuilder(schemeFor(o.codeDigits, o.adminCode));
  const rng = new Rng(o.seed);
  const cols = o.streets * o.communityCols;
  const rows = o.communitiesPerStreet * o.communityRows;
  const W = cols * o.cellM;
  const H = rows * o.cellM;
  const proj = projection(o.lat, o.lon);
  const c = o.cellM;

  // Terrain: a smooth random surface; water level sensors go to low points.
  const terrain = rng.fork('terrain');
  const waves = Array.from({ length: 4 }, () => ({ kx: terrain.range(0.5, 2.5) / W, ky: terrain.range(0.5, 2.5) / H, ph: terrain.range(0, 2 * Math.PI), amp: terrain.range(1, 3) }));
  const elevation = (x: number, y: number) => 500 + waves.reduce((s, w) => s + w.amp * Math.sin(2 * Math.PI * (w.kx * x + w.ky * y) + w.ph), 0);

  // ---- lattice points, each computed once and shared ------------------------------------
  const jr = rng.fork('lattice');
  const local = new Map<string, Pt>();
  const lonlat = new Map<string, [number, number]>();
  const put = (id: string, p: Pt) => {
    local.set(id, p);
    lonlat.set(id, proj.toLonLat([p[0] - W / 2, p[1] - H / 2]));
  };
  for (let j = 0; j <= rows; j++) {
    for (let i = 0; i <= cols; i++) {
      // Boundary vertices slide along the boundary only, so the outline stays a rectangle's sides.
      const dx = i === 0 || i === cols ? 0 : jr.range(-o.jitter, o.jitter) * c;
      const dy = j === 0 || j === rows ? 0 : jr.range(-o.jitter, o.jitter) * c;
      put(`v${i}_${j}`, [i * c + dx, j * c + dy]);
    }
  }
  const mid = (a: Pt, b: Pt, t: number): Pt => {
    // Midpoint pushed perpendicular to the edge; one value per edge, used by both neighbours.
    const mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2;
    const len = dist(a, b);
    return [mx + (-(b[1] - a[1]) / len) * t * c, my + ((b[0] - a[0]) / len) * t * c];
  };
  for (let j = 0; j <= rows; j++) {
    for (let i = 0; i < cols; i++) put(`h${i}_${j}`, mid(local.get(`v${i}_${j}`)!, local.get(`v${i + 1}_${j}`)!, jr.range(-0.6, 0.6) * o.jitter));
  }
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i <= cols; i++) put(`u${i}_${j}`, mid(local.get(`v${i}_${j}`)!, local.get(`v${i}_${j + 1}`)!, jr.range(-0.6, 0.6) * o.jitter));
  }
  const cellRingIds = (i: number, j: number) => [
    `v${i}_${j}`, `h${i}_${j}`, `v${i + 1}_${j}`, `u${i + 1}_${j}`, `v${i + 1}_${j + 1}`, `h${i}_${j + 1}`, `v${i}_${j + 1}`, `u${i}_${j}`,
  ];
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      const ring = cellRingIds(i, j).map((id) => local.get(id)!);
      put(`c${i}_${j}`, centroid(ring));
    }
  }
  /** Outline of the block of cells [i0, i1) x [j0, j1), counter-clockwise, as point ids. */
  const blockRingIds = (i0: number, i1: number, j0: number, j1: number): string[] => {
    const ids: string[] = [];
    for (let i = i0; i < i1; i++) ids.push(`v${i}_${j0}`, `h${i}_${j0}`);
    for (let j = j0; j < j1; j++) ids.push(`v${i1}_${j}`, `u${i1}_${j}`);
    for (let i = i1; i > i0; i--) ids.push(`v${i}_${j1}`, `h${i - 1}_${j1}`);
    for (let j = j1; j > j0; j--) ids.push(`v${i0}_${j}`, `u${i0}_${j - 1}`);
    return ids;
  };
  const polygon = (ids: string[], props: GridProps): PolygonFeature => {
    const ring = ids.map((id) => lonlat.get(id)!);
    return { type: 'Feature', id: props.id, properties: props, geometry: { type: 'Polygon', coordinates: [[...ring, ring[0]!]] } };
  };

  // ---- administrative hierarchy ----------------------------------------------------------
  const features: PolygonFeature[] = [];
  const districtId = codes.district();
  features.push(polygon(blockRingIds(0, cols, 0, rows), { id: districtId, code: districtId, name: o.name, level: 'district', parentId: null }));
  const names = rng.fork('names');
  const streetNames = shuffle(names, STREET_NAMES);
  const communityNames = shuffle(names, COMMUNITY_NAMES);
  interface Cell { i: number; j: number; id: string; name: string; communityId: string; ring: Pt[] }
  const cells: Cell[] = [];
  const communities: Array<{ id: string; name: string; cells: Cell[] }> = [];
  for (let s = 0; s < o.streets; s++) {
    const streetId = codes.street(s + 1);
    const i0 = s * o.communityCols;
    features.push(polygon(blockRingIds(i0, i0 + o.communityCols, 0, rows), { id: streetId, code: streetId, name: `${streetNames[s % streetNames.length]}街道`, level: 'street', parentId: districtId }));
    for (let k = 0; k < o.communitiesPerStreet; k++) {
      const communityId = codes.community(s + 1, k + 1);
      const cname = `${communityNames[(s * o.communitiesPerStreet + k) % communityNames.length]}社区`;
      const j0 = k * o.communityRows;
      features.push(polygon(blockRingIds(i0, i0 + o.communityCols, j0, j0 + o.communityRows), { id: communityId, code: communityId, name: cname, level: 'community', parentId: streetId }));
      const community = { id: communityId, name: cname, cells: [] as Cell[] };
      communities.push(community);
      let g = 0;
      for (let jj = 0; jj < o.communityRows; jj++) {
        for (let ii = 0; ii < o.communityCols; ii++) {
          const i = i0 + ii, j = j0 + jj;
          const id = codes.grid(s + 1, k + 1, ++g);
          const name = `${cname}第${g}网格`;
          const ids = cellRingIds(i, j);
          features.push(polygon(ids, { id, code: id, name, level: 'grid', parentId: communityId }));
          const cell = { i, j, id, name, communityId, ring: ids.map((x) => local.get(x)!) };
          cells.push(cell);
          community.cells.push(cell);
        }
      }
    }
  }

  // ---- road network --------------------------------------------------------------------
  const interiorV = (i: number, j: number) => i > 0 && i < cols && j > 0 && j < rows;
  const nodeKind = (id: string): StreetNodeKind => (id[0] === 'v' ? 'intersection' : id[0] === 'c' ? 'centre' : 'junction');
  const usedNodes = new Set<string>();
  const edges: StreetEdgeFeature[] = [];
  const roadNames = shuffle(names, ROAD_STEMS);
  const addEdge = (a: string, b: string, kind: 'road' | 'lane', name: string) => {
    usedNodes.add(a);
    usedNodes.add(b);
    const id = `e${edges.length + 1}`;
    const lengthM = Math.round(dist(local.get(a)!, local.get(b)!) * 10) / 10;
    edges.push({ type: 'Feature', id, properties: { id, from: a, to: b, kind, name, lengthM }, geometry: { type: 'LineString', coordinates: [lonlat.get(a)!, lonlat.get(b)!] } });
  };
  for (let j = 1; j < rows; j++) {
    const name = `${roadNames[(j - 1) % roadNames.length]}路`;
    for (let i = 0; i < cols; i++) {
      if (interiorV(i, j)) addEdge(`v${i}_${j}`, `h${i}_${j}`, 'road', name);
      if (interiorV(i + 1, j)) addEdge(`h${i}_${j}`, `v${i + 1}_${j}`, 'road', name);
    }
  }
  for (let i = 1; i < cols; i++) {
    const name = `${roadNames[(rows - 1 + i - 1) % roadNames.length]}街`;
    for (let j = 0; j < rows; j++) {
      if (interiorV(i, j)) addEdge(`v${i}_${j}`, `u${i}_${j}`, 'road', name);
      if (interiorV(i, j + 1)) addEdge(`u${i}_${j}`, `v${i}_${j + 1}`, 'road', name);
    }
  }
  for (const cell of cells) {
    const { i, j } = cell;
    const lane = `${cell.name.replace(/第(\d+)网格$/, '$1')}巷`;
    if (j > 0) addEdge(`c${i}_${j}`, `h${i}_${j}`, 'lane', lane);
    if (j + 1 < rows) addEdge(`c${i}_${j}`, `h${i}_${j + 1}`, 'lane', lane);
    if (i > 0) addEdge(`c${i}_${j}`, `u${i}_${j}`, 'lane', lane);
    if (i + 1 < cols) addEdge(`c${i}_${j}`, `u${i + 1}_${j}`, 'lane', lane);
  }
  const nodes: StreetNodeFeature[] = [...usedNodes].sort(naturalCompare).map((id) => {
    const [x, y] = local.get(id)!;
    return { type: 'Feature', id, properties: { id, kind: nodeKind(id), elevationM: Math.round(elevation(x, y) * 100) / 100 }, geometry: { type: 'Point', coordinates: lonlat.get(id)! } };
  });

  // ---- devices -------------------------------------------------------------------------
  const dr = rng.fork('devices');
  const devices: SimDevice[] = [];
  const toLL = (p: Pt) => {
    const [lon, lat] = proj.toLonLat([p[0] - W / 2, p[1] - H / 2]);
    return { lon, lat };
  };
  /** A point between the centre and `p`, strictly inside the cell. */
  const inward = (cell: Cell, p: Pt, t: number): Pt => {
    const ctr = local.get(`c${cell.i}_${cell.j}`)!;
    return [ctr[0] + (p[0] - ctr[0]) * t, ctr[1] + (p[1] - ctr[1]) * t];
  };
  const add = (type: DeviceType, id: string, name: string, p: Pt, gridId: string, meta: Record<string, unknown> = {}) =>
    devices.push({ id, type, name, ...toLL(p), gridId, meta });
  // Low points: per community the lowest grid (plus any grid in the lowest fifth overall).
  const cellElev = (cell: Cell) => elevation(...local.get(`c${cell.i}_${cell.j}`)!);
  const sortedElev = cells.map(cellElev).sort((a, b) => a - b);
  const lowCut = sortedElev[Math.floor(sortedElev.length / 5)]!;
  const lowest = new Set(communities.map((cm) => cm.cells.reduce((a, b) => (cellElev(a) <= cellElev(b) ? a : b)).id));
  for (const cell of cells) {
    const ring = cell.ring;
    add('sensor.smoke', `smoke-${cell.id}`, `${cell.name}烟感`, inward(cell, ring[dr.int(0, 7)]!, dr.range(0.2, 0.5)), cell.id, { building: `${dr.int(1, 30)}栋` });
    add('sensor.gas', `gas-${cell.id}`, `${cell.name}燃气监测`, inward(cell, ring[dr.int(0, 7)]!, dr.range(0.2, 0.5)), cell.id, { site: dr.pick(['餐饮街', '小区燃气表间', '燃气调压箱']) });
    const manholes = dr.chance(0.5) ? 2 : 1;
    for (let n = 1; n <= manholes; n++) {
      add('sensor.manhole_cover', `manhole-${cell.id}-${n}`, `${cell.name}井盖${n}`, inward(cell, ring[2 * dr.int(0, 3) + 1]!, dr.range(0.4, 0.7)), cell.id, { kind: dr.pick(['污水', '雨水', '通信', '电力']) });
    }
    if (lowest.has(cell.id) || cellElev(cell) <= lowCut) {
      // The lowest of the cell's edge midpoints, pulled inside: where water collects on the road.
      const mids = [1, 3, 5, 7].map((k) => ring[k]!);
      const low = mids.reduce((a, b) => (elevation(...a) <= elevation(...b) ? a : b));
      add('sensor.water_level', `water-${cell.id}`, `${cell.name}积水监测`, inward(cell, low, 0.8), cell.id, { elevationM: Math.round(elevation(...low) * 100) / 100, lowPoint: true });
    }
  }
  // Cameras at every other interior intersection; the camera's grid is the one the intersection falls in.
  const gridOf = (p: Pt) => cells.find((cl) => pointInRing(p, cl.ring));
  let cam = 0;
  for (let j = 1; j < rows; j++) {
    for (let i = 1; i < cols; i++) {
      if ((i + j) % 2 !== 0) continue;
      const p = local.get(`v${i}_${j}`)!;
      const cell = gridOf(p);
      if (!cell) continue;
      const id = `cam-${String(++cam).padStart(4, '0')}`;
      const road1 = `${roadNames[(j - 1) % roadNames.length]}路`;
      const road2 = `${roadNames[(rows - 1 + i - 1) % roadNames.length]}街`;
      add('camera', id, `${road1}与${road2}交叉口`, p, cell.id, { node: `v${i}_${j}`, ptz: dr.chance(0.3), ai: ['fire', 'smoke', 'crowd', 'illegal_parking', 'street_vending', 'garbage_overflow'] });
    }
  }

  // ---- people --------------------------------------------------------------------------
  const pr = rng.fork('people');
  const workers: SimWorker[] = [];
  const person = () => pr.pick([...SURNAMES]) + pr.pick([...GIVEN]) + (pr.chance(0.5) ? pr.pick([...GIVEN]) : '');
  const mode = (): Pick<SimWorker, 'mode' | 'speedMps'> =>
    pr.chance(0.2) ? { mode: 'cycle', speedMps: Math.round(pr.range(3.5, 4.5) * 10) / 10 } : { mode: 'walk', speedMps: Math.round(pr.range(1.1, 1.5) * 10) / 10 };
  for (const cell of cells) {
    const n = pr.chance(o.secondWorker) ? 2 : 1;
    for (let k = 1; k <= n; k++) {
      const deviceId = `hh-${cell.id}-${k}`;
      const name = person();
      workers.push({ key: `w-${cell.id}-${k}`, name, deviceId, gridIds: [cell.id], role: 'worker', homeNode: `c${cell.i}_${cell.j}`, ...mode() });
      const home = local.get(`c${cell.i}_${cell.j}`)!;
      add('handheld', deviceId, `${name}的手持终端`, home, cell.id, { worker: `w-${cell.id}-${k}` });
    }
  }
  for (const cm of communities) {
    const deviceId = `hh-${cm.id}-L`;
    const name = person();
    const first = cm.cells[Math.floor(cm.cells.length / 2)]!;
    workers.push({ key: `w-${cm.id}-L`, name, deviceId, gridIds: cm.cells.map((cl) => cl.id), role: 'leader', homeNode: `c${first.i}_${first.j}`, ...mode() });
    add('handheld', deviceId, `${name}(网格长)的手持终端`, local.get(`c${first.i}_${first.j}`)!, first.id, { worker: `w-${cm.id}-L`, leader: true });
  }

  const counts: Record<string, number> = {
    streets: o.streets,
    communities: communities.length,
    grids: cells.length,
    streetNodes: nodes.length,
    streetEdges: edges.length,
    workers: workers.length,
    devices: devices.length,
  };
  for (const d of devices) counts[d.type] = (counts[d.type] ?? 0) + 1;
  return {
    meta: { format: 'gridlink-district/1', seed: o.seed, name: o.name, center: { lat: o.lat, lon: o.lon }, codeScheme: codes.scheme, cellM: o.cellM, cols, rows, counts },
    // Already normalised (parent and code set): the file is what `GET /grids` answers once it is loaded.
    grids: { type: 'FeatureCollection', features } satisfies ContractGridCollection,
    streets: { type: 'FeatureCollection', features: [...nodes, ...edges] },
    devices,
    workers,
  };
}

function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const k = Math.floor(rng.next() * (i + 1));
    [out[i], out[k]] = [out[k]!, out[i]!];
  }
  return out;
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
