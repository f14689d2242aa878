/**
 * Plane geometry for the district. The generator works in local metres
 * (x east, y north) around an origin and projects to WGS-84 with an
 * equirectangular approximation, exact enough over a few kilometres and
 * affine, so tiling properties proven in metres hold in degrees too.
 */
export type Pt = readonly [number, number];
export type Ring = Pt[];

const M_PER_DEG_LAT = 111_320;

export interface Projection {
  toLonLat(p: Pt): [number, number];
  toLocal(lon: number, lat: number): [number, number];
}

export function projection(originLat: number, originLon: number): Projection {
  const mLon = M_PER_DEG_LAT * Math.cos((originLat * Math.PI) / 180);
  return {
    toLonLat: ([x, y]) => [round7(originLon + x / mLon), round7(originLat + y / M_PER_DEG_LAT)],
    toLocal: (lon, lat) => [(lon - originLon) * mLon, (lat - originLat) * M_PER_DEG_LAT],
  };
}

/** 7 decimals is ~1 cm: enough, and shared vertices stay bit-identical after rounding. */
export function round7(v: number): number {
  return Math.round(v * 1e7) / 1e7;
}

/** Signed area (shoelace); positive for counter-clockwise. Ring without the closing point. */
export function signedArea(ring: readonly Pt[]): number {
  let a = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) a += ring[j]![0] * ring[i]![1] - ring[i]![0] * ring[j]![1];
  return a / 2;
}

/**
 * Half-open point-in-polygon (crossing number). Each edge is evaluated with
 * its endpoints in a canonical order, so two polygons sharing an edge decide
 * a point on it identically: in a tiling every point inside the outline
 * belongs to exactly one tile, boundary points included.
 */
export function pointInRing(p: Pt, ring: readonly Pt[]): boolean {
  const [x, y] = p;
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    let a = ring[i]!;
    let b = ring[j]!;
    if (a[1] > b[1] || (a[1] === b[1] && a[0] > b[0])) [a, b] = [b, a];
    if (a[1] <= y && y < b[1]) {
      const xCross = a[0] + ((y - a[1]) * (b[0] - a[0])) / (b[1] - a[1]);
      if (x < xCross) inside = !inside;
    }
  }
  return inside;
}

export function bbox(ring: readonly Pt[]): [number, number, number, number] {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [x, y] of ring) {
    if (x < minX) minX = x;
    if (y < minY) minY = y;
    if (x > maxX) maxX = x;
    if (y > maxY) maxY = y;
  }
  return [minX, minY, maxX, maxY];
}

export function centroid(ring: readonly Pt[]): [number, number] {
  let a = 0, cx = 0, cy = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const f = ring[j]![0] * ring[i]![1] - ring[i]![0] * ring[j]![1];
    a += f;
    cx += (ring[j]![0] + ring[i]![0]) * f;
    cy += (ring[j]![1] + ring[i]![1]) * f;
  }
  return [cx / (3 * a), cy / (3 * a)];
}

export function dist(a: Pt, b: Pt): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

/** Great-circle distance in metres. */
export function haversineM(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const R = 6_371_008.8;
  const toRad = Math.PI / 180;
  const dLat = (lat2 - lat1) * toRad;
  const dLon = (lon2 - lon1) * toRad;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * toRad) * Math.cos(lat2 * toRad) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(s)));
}

/** Initial bearing from point 1 to point 2, degrees clockwise from north. */
export function bearingDeg(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const toRad = Math.PI / 180;
  const y = Math.sin((lon2 - lon1) * toRad) * Math.cos(lat2 * toRad);
  const x = Math.cos(lat1 * toRad) * Math.sin(lat2 * toRad) - Math.sin(lat1 * toRad) * Math.cos(lat2 * toRad) * Math.cos((lon2 - lon1) * toRad);
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

/** Moves a WGS-84 point by metres east/north (small offsets). */
export function offsetLonLat(lon: number, lat: number, dxM: number, dyM: number): [number, number] {
  return [lon + dxM / (M_PER_DEG_LAT * Math.cos((lat * Math.PI) / 180)), lat + dyM / M_PER_DEG_LAT];
}
