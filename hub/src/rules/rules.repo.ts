/**
 * The rule set: stored in `rules`, cached in memory, and pushed into the
 * evaluator on every write so an edit is live without a restart.
 */
import { Errors } from '../core/errors.js';
import type { Db } from '../store/index.js';
import { ruleCheck, type Rule } from './rule.schema.js';

export interface RuleRecord {
  rule: Rule;
  version: number;
  createdAt: number;
  updatedAt: number;
}

interface RuleRow {
  id: string;
  definition: Rule;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export const RuleErrors = {
  notFound: () => Errors.ruleNotFound('Rule not found'),
  exists: (id: string) => Errors.ruleExists(`rule ${id} exists`),
  invalid: (msg: string) => Errors.ruleInvalid(msg),
};

export class RuleRepo {
  private readonly records = new Map<string, RuleRecord>();

  constructor(
    private readonly db: Db,
    private readonly onChange: (rule: Rule | null, id: string) => void,
    private readonly now: () => number,
  ) {}

  async load(): Promise<Rule[]> {
    const rows = await this.db.query<RuleRow>('select id, definition, version, created_at, updated_at from rules order by id');
    this.records.clear();
    for (const r of rows) {
      if (!ruleCheck.Check(r.definition)) continue; // a hand-edited row that no longer validates is skipped, not fatal
      this.records.set(r.id, { rule: r.definition, version: r.version, createdAt: new Date(r.created_at).getTime(), updatedAt: new Date(r.updated_at).getTime() });
    }
    return this.rules();
  }

  rules(): Rule[] {
    return [...this.records.values()].map((r) => r.rule);
  }

  map(): ReadonlyMap<string, Rule> {
    return new Map([...this.records].map(([id, r]) => [id, r.rule]));
  }

  list(): RuleRecord[] {
    return [...this.records.values()].sort((a, b) => a.rule.id.localeCompare(b.rule.id));
  }

  get(id: string): RuleRecord | undefined {
    return this.records.get(id);
  }

  require(id: string): RuleRecord {
    const r = this.records.get(id);
    if (!r) throw RuleErrors.notFound();
    return r;
  }

  private validate(rule: Rule): void {
    if (!ruleCheck.Check(rule)) {
      const first = [...ruleCheck.Errors(rule)][0];
      throw RuleErrors.invalid(`rule is invalid${first ? `: ${first.path} ${first.message}` : ''}`);
    }
    if (rule.kind === 'threshold' && rule.clear && rule.clear.op === rule.op && rule.clear.value === rule.value) {
      throw RuleErrors.invalid('clear level equals the trigger; use a hysteresis band or omit clear');
    }
  }

  async create(input: Rule): Promise<RuleRecord> {
    const rule = { ...input, enabled: input.enabled ?? true } as Rule;
    this.validate(rule);
    const now = this.now();
    const rows = await this.db.query<RuleRow>(
      `insert into rules (id, name, kind, enabled, definition, created_at, updated_at) values ($1, $2, $3, $4, $5, to_timestamp($6 / 1000.0), to_timestamp($6 / 1000.0))
       on conflict (id) do nothing returning id, definition, version, created_at, updated_at`,
      [rule.id, rule.name, rule.kind, rule.enabled, JSON.stringify(rule), now],
    );
    if (!rows[0]) throw RuleErrors.exists(rule.id);
    const rec = { rule, version: 1, createdAt: now, updatedAt: now };
    this.records.set(rule.id, rec);
    this.onChange(rule, rule.id);
    return rec;
  }

  async update(input: Rule): Promise<RuleRecord> {
    const rule = { ...input, enabled: input.enabled ?? true } as Rule;
    this.validate(rule);
    const cur = this.require(rule.id);
    const now = this.now();
    const rows = await this.db.query<RuleRow>(
      `update rules set name = $2, kind = $3, enabled = $4, definition = $5, version = version + 1, updated_at = to_timestamp($6 / 1000.0)
       where id = $1 returning id, definition, version, created_at, updated_at`,
      [rule.id, rule.name, rule.kind, rule.enabled, JSON.stringify(rule), now],
    );
    if (!rows[0]) throw RuleErrors.notFound();
    const rec = { rule, version: rows[0].version, createdAt: cur.createdAt, updatedAt: now };
    this.records.set(rule.id, rec);
    this.onChange(rule, rule.id);
    return rec;
  }

  async remove(id: string): Promise<void> {
    this.require(id);
    await this.db.query('delete from rules where id = $1', [id]);
    await this.db.query('delete from rule_state where rule_id = $1', [id]);
    this.records.delete(id);
    this.onChange(null, id);
  }
}
