/**
 * REST for the monthly 考核: the league table as JSON and as .xlsx, region-scoped.
 */
import { Type } from '@sinclair/typebox';
import { Assessment as AssessmentSchema, AssessmentQuery } from '@gridlink/devices/contract';
import { regionScope, type Auth, type Principal } from '../auth/index.js';
import { Errors } from '../core/errors.js';
import type { App } from '../http/app.js';
import { authenticate, parseTime, principal, requireRole } from '../http/guards.js';
import { errors } from '../http/schemas.js';
import type { WorkerService } from '../core/services.js';
import type { Queryable } from '../store/index.js';
import { ASSESSMENT_FORMULAS, assessmentXlsx, computeAssessment, METRICS, monthRange, type Weights } from './assessment.js';
import type { CalendarStore } from './calendar.store.js';
import type { DepartmentDirectory } from './departments.js';
import type { GridIndex } from './grids.js';

export interface AssessmentRouteDeps {
  auth: Auth;
  db: Queryable;
  grids: GridIndex;
  calendar: CalendarStore;
  departments: DepartmentDirectory;
  workers: () => WorkerService | undefined;
  now: () => number;
}

export function assessmentRoutes(app: App, d: AssessmentRouteDeps): void {
  const guard = authenticate(d.auth);

  async function run(p: Principal, q: AssessmentQuery) {
    const cal = d.calendar.current();
    const now = d.now();
    let from: number, to: number;
    if (q.month) ({ from, to } = monthRange(q.month, cal.data.utcOffsetMin));
    else {
      to = parseTime(q.to, now);
      from = parseTime(q.from, to - 30 * 24 * 3600_000);
    }
    if (!(from < to)) throw Errors.validation('from must be before to');
    const weights: Partial<Weights> = {};
    for (const part of q.weights?.split(',') ?? []) {
      const [k, v] = part.split(':') as [string, string];
      if (!(METRICS as readonly string[]).includes(k)) throw Errors.validation(`unknown weight ${k}; use ${METRICS.join(', ')}`);
      weights[k as keyof Weights] = Number(v);
    }
    const gridIds = regionScope(d.auth, p, q.gridId, d.grids);
    return computeAssessment(
      { db: d.db, grids: d.grids, calendar: cal, names: { worker: (id) => d.workers()?.get(id)?.name, department: (id) => d.departments.get(id)?.name } },
      { from, to, now, level: q.level, gridIds, weights },
    );
  }

  app.get('/stats/assessment', {
    preHandler: [guard, requireRole('officer', 'dispatcher', 'integrator')],
    schema: { tags: ['stats'], summary: '月度考核: league table per grid, community, street, worker or department', description: ASSESSMENT_FORMULAS, querystring: AssessmentQuery, response: { 200: AssessmentSchema, ...errors(400, 401, 403, 404) } },
  }, async (req) => run(principal(req), req.query));

  app.get('/stats/assessment.xlsx', {
    preHandler: [guard, requireRole('officer', 'dispatcher', 'integrator')],
    schema: { tags: ['stats'], summary: 'The 考核 league table as an .xlsx workbook (sheets 考核 and 公式)', querystring: AssessmentQuery, response: { 401: Type.Ref('Error'), 403: Type.Ref('Error'), 404: Type.Ref('Error') } },
  }, async (req, reply) => {
    const a = await run(principal(req), req.query);
    const body = await assessmentXlsx(a, d.calendar.current().data.utcOffsetMin);
    return reply
      .type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
      .header('content-disposition', `attachment; filename="assessment-${a.level}.xlsx"`)
      .send(body);
  });
}
