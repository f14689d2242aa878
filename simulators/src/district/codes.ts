/**
 * Grid codes (DOMAIN "Grid codes"): a 6-digit administrative division code
 * followed by fixed-width street, community and grid parts. Beijing uses
 * 3+3+3 (15 digits, the default); 3+3+2 gives the 14-digit form cited
 * nationally. Each level's code is the prefix of its children's codes, so a
 * region scope is a prefix match.
 */
export interface CodeScheme {
  admin: string;
  street: number;
  community: number;
  grid: number;
}

export const BEIJING_15: Omit<CodeScheme, 'admin'> = { street: 3, community: 3, grid: 3 };
export const NATIONAL_14: Omit<CodeScheme, 'admin'> = { street: 3, community: 3, grid: 2 };

export function schemeFor(digits: 14 | 15, admin: string): CodeScheme {
  return { admin, ...(digits === 14 ? NATIONAL_14 : BEIJING_15) };
}

export function validateScheme(s: CodeScheme): string[] {
  const problems: string[] = [];
  if (!/^\d{6}$/.test(s.admin)) problems.push(`admin code must be 6 digits, got ${JSON.stringify(s.admin)}`);
  for (const k of ['street', 'community', 'grid'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1 || s[k] > 4) problems.push(`${k} width must be 1-4 digits`);
  }
  return problems;
}

function part(n: number, width: number, what: string): string {
  if (!Number.isInteger(n) || n < 1 || n >= 10 ** width) throw new RangeError(`${what} number ${n} does not fit ${width} digits`);
  return String(n).padStart(width, '0');
}

export class CodeBuilder {
  constructor(readonly scheme: CodeScheme) {
    const problems = validateScheme(scheme);
    if (problems.length) throw new RangeError(`invalid code scheme: ${problems.join('; ')}`);
  }

  get length(): number {
    return 6 + this.scheme.street + this.scheme.community + this.scheme.grid;
  }

  district(): string {
    return this.scheme.admin;
  }

  street(street: number): string {
    return this.scheme.admin + part(street, this.scheme.street, 'street');
  }

  community(street: number, community: number): string {
    return this.street(street) + part(community, this.scheme.community, 'community');
  }

  grid(street: number, community: number, grid: number): string {
    return this.community(street, community) + part(grid, this.scheme.grid, 'grid');
  }
}
