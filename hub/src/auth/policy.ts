/**
 * The one authorization rule for writes. A user scoped to a region (a grid
 * id at any level) may change an object only when the region contains the
 * object as it is AND as it will be after the write; an object that lies in
 * no grid, or one that is global by nature (city-wide rules, users,
 * categories, the grid hierarchy), needs a user without a region.
 *
 * "As it is" failing answers 404 with the caller's not-found error, so a
 * scoped user cannot tell another region's object from a missing one; "as
 * it will be" failing answers 403 OUTSIDE_REGION.
 */
import { Errors, GridError } from '../core/errors.js';

/** Where an object lies: a grid, a set of grids (a worker's beat, a rule's scope), or nowhere in particular. */
export interface Place {
  gridId?: string | null;
  gridIds?: readonly string[];
}

/** Objects that belong to the whole city. */
export const GLOBAL = Symbol('global');
export type Target = Place | typeof GLOBAL | null | undefined;

export const PolicyErrors = {
  outsideRegion: (what = 'the target') => Errors.outsideRegion(`${what} is outside your region`),
  cityScope: () => Errors.cityScopeRequired('only a user without a region may change city-wide objects'),
};

/** The grid ids a place occupies; empty when it lies in no grid. */
function gridsOf(p: Place): string[] {
  const out: string[] = [];
  if (p.gridId) out.push(p.gridId);
  for (const g of p.gridIds ?? []) if (g) out.push(g);
  return out;
}

/**
 * True when `regionId` (null = the whole city) contains the target. A place
 * with no grid at all counts as city-wide.
 */
export function regionContains(contains: (regionId: string, gridId: string) => boolean, regionId: string | null, t: Target): boolean {
  if (t === null || t === undefined) return true;
  if (regionId === null) return true;
  if (t === GLOBAL) return false;
  const grids = gridsOf(t);
  return grids.length > 0 && grids.every((g) => contains(regionId, g));
}

export function assertCanWrite(
  contains: (regionId: string, gridId: string) => boolean,
  regionId: string | null,
  before: Target,
  after: Target,
  notFound: () => GridError,
  what?: string,
): void {
  if (!regionContains(contains, regionId, before)) throw before === GLOBAL ? PolicyErrors.cityScope() : notFound();
  if (!regionContains(contains, regionId, after)) throw after === GLOBAL ? PolicyErrors.cityScope() : PolicyErrors.outsideRegion(what);
}
