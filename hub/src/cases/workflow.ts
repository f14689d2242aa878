/**
 * The case workflow (CONTRACT section 4): the table itself is the
 * contract's (`@gridlink/devices/workflow`), so the hub that enforces it and
 * the console that offers actions read one definition. What is only the
 * hub's lives here: the table as markdown for the OpenAPI description.
 */
import { CASE_ACTIONS, WORKFLOW } from '@gridlink/devices/workflow';

export { CASE_ACTIONS, CASE_STATUSES, OPEN_STATUSES, POOR_RATING, WORKFLOW, actionsForRole, isOpen, type Transition } from '@gridlink/devices/workflow';

/** The workflow as a markdown table (OpenAPI description, docs). */
export function workflowTable(): string {
  const rows = CASE_ACTIONS.map((a) => {
    const t = WORKFLOW[a];
    const who = [...t.roles, ...(t.worker ? ['dispatched worker'] : []), ...(t.department ? ['routed department'] : [])].join(', ') || '—';
    return `| ${a} (${t.zh}) | ${t.from.join(', ')} | ${t.to ?? '(unchanged)'} | ${who}, admin |`;
  });
  return ['| action | from | to | who |', '|---|---|---|---|', ...rows].join('\n');
}
