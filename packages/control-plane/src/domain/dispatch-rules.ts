/**
 * Pure dispatch rules: the order queued tasks are offered to agents, and what an agent's
 * rejection does to a task.
 */
import { FailureCodes, requeues } from '@cairn/proto/vocabulary';
import { inProviderBand } from './job-run.js';
import { unfit, type AgentCandidate, type TaskNeeds } from './placement.js';

export interface Queued {
  id: string;
  tenantId: string;
  priority: number;
}

/**
 * The two bands of priority. The service provider's band (50-99, SLA fires, its jobs) runs first,
 * strictly by priority; within one such priority, tenants share the slots. The tenants' band
 * (0-49) is one pool: tenants share its slots whatever priority they give their work, and a
 * tenant's priority only orders its own tasks (higher first, then enqueue order). So a tenant that
 * floods at 49 cannot starve another's backups at 0.
 *
 * Sharing: each next task goes to the tenant with the fewest tasks running plus already picked
 * (`held`: tasks agents hold per tenant now, whatever their band); ties go to the tenant served
 * longest ago (`lastServed`: a rising number per dispatch, absent for never), then to the one that
 * appears first in the input. So tenants take turns, also across rounds that each have one free
 * slot, and a tenant whose flood already runs goes after one that runs nothing. Input in the
 * queue's order (provider's band by priority desc, then enqueue order); each tenant's tasks keep
 * their input order within one priority.
 *
 * @example fairOrder([a1, a2, a3, b1]) // → a1, b1, a2, a3 (same priority)
 * @example fairOrder([a2, a3, b1], new Map([['a', 1]])) // → b1, a2, a3 (a already runs one)
 * @example fairOrder([a49, a49b, b0]) // → a49, b0, a49b (both in the tenants' band)
 */
export function fairOrder<T extends Queued>(
  sorted: readonly T[],
  held: ReadonlyMap<string, number> = new Map(),
  lastServed: ReadonlyMap<string, number> = new Map(),
): T[] {
  const out: T[] = [];
  const taken = new Map(held);
  const served = new Map(lastServed);
  let turn = Math.max(0, ...served.values());
  // Fewer held first; then served longest ago (never: first of all).
  const before = (a: string, b: string) => {
    const d = (taken.get(a) ?? 0) - (taken.get(b) ?? 0);
    if (d !== 0) return d < 0;
    return (served.get(a) ?? -1) < (served.get(b) ?? -1);
  };
  // One level per priority of the provider's band, one for the whole tenants' band; per level, each
  // tenant's tasks (Map order is first appearance: the tie-break).
  const levels = new Map<number, Map<string, T[]>>();
  for (const t of sorted) {
    const level = bandLevel(t.priority);
    let byTenant = levels.get(level);
    if (!byTenant) levels.set(level, (byTenant = new Map()));
    const list = byTenant.get(t.tenantId);
    if (list) list.push(t);
    else byTenant.set(t.tenantId, [t]);
  }
  for (const level of [...levels.keys()].sort((a, b) => b - a)) {
    const queues = [...levels.get(level)!.entries()].map(([tenantId, tasks]) => ({
      tenantId,
      // A stable sort: higher priority first, input (enqueue) order within one.
      tasks: [...tasks].sort((a, b) => b.priority - a.priority),
      next: 0,
    }));
    for (let left = queues.reduce((n, q) => n + q.tasks.length, 0); left > 0; left--) {
      let best: (typeof queues)[number] | undefined;
      for (const q of queues) {
        if (q.next >= q.tasks.length) continue;
        if (!best || before(q.tenantId, best.tenantId)) best = q;
      }
      out.push(best!.tasks[best!.next++]!);
      taken.set(best!.tenantId, (taken.get(best!.tenantId) ?? 0) + 1);
      served.set(best!.tenantId, ++turn);
    }
  }
  return out;
}

/** The order level of a priority: itself in the provider's band; one level (-1) for the tenants' band. */
function bandLevel(priority: number): number {
  return inProviderBand(priority) ? priority : -1;
}

/** A queued task as one dispatch round sees it. */
export type RoundTask = Queued & TaskNeeds & { instanceId: string | null };

/**
 * One dispatch round: which queued task goes to which agent. Tasks are offered in `fairOrder`
 * (the provider's band by priority, then the tenants' band shared; the tenant with the fewest
 * tasks held, `heldByTenant`, counting this round's picks, then the one served longest ago,
 * `lastServed`); each goes to the fitting agent with the
 * most free slots (ties: the first in `agents`), at most one task per instance, until `budget` (the
 * global limit minus what agents already hold) or the slots run out. A task that fits no agent
 * now is passed over, so it never holds back a lower-priority task that does fit somewhere.
 * `agents` is not changed; the plan counts the slots it hands out.
 *
 * A tenant is handed no task of the tenants' band while it holds `runningLimit(tenant)` tasks or
 * more (held plus this round's picks, in both bands): those wait queued. Work in the provider's
 * band is its promise (SLA) and is never held back by it, though it counts toward the holding.
 *
 * @example planRound(head, [{ id: 'ag1', slots: 2, held: 1, ... }], 10) // → [{ task: head[0], agentId: 'ag1' }]
 */
export function planRound<T extends RoundTask>(
  sorted: readonly T[],
  agents: readonly AgentCandidate[],
  budget: number,
  heldByTenant: ReadonlyMap<string, number> = new Map(),
  lastServed: ReadonlyMap<string, number> = new Map(),
  runningLimit: (tenantId: string) => number = () => Infinity,
): { task: T; agentId: string }[] {
  const pool = agents.map((a) => ({ ...a }));
  const busyInstances = new Set<string>();
  const holding = new Map(heldByTenant);
  const plan: { task: T; agentId: string }[] = [];
  for (const task of fairOrder(sorted, heldByTenant, lastServed)) {
    if (plan.length >= budget) break;
    if (task.instanceId !== null && busyInstances.has(task.instanceId)) continue;
    const holds = holding.get(task.tenantId) ?? 0;
    if (!inProviderBand(task.priority) && holds >= runningLimit(task.tenantId)) continue;
    let best: (typeof pool)[number] | undefined;
    for (const a of pool) {
      if (unfit(a, task) !== null) continue;
      if (!best || a.slots - a.held > best.slots - best.held) best = a;
    }
    if (!best) continue;
    best.held++;
    holding.set(task.tenantId, holds + 1);
    if (task.instanceId !== null) busyInstances.add(task.instanceId);
    plan.push({ task, agentId: best.id });
  }
  return plan;
}

/** What an agent's refusal (TaskRejected.reason_code) does to the task. */
export type RejectOutcome = { requeue: true } | { requeue: false; code: string };

/**
 * A busy, draining or shutting-down agent hands the task back to the queue (the vocabulary's
 * `REQUEUE_REASONS`); an agent that cannot run it at all (no plugin, unsupported operation, bad
 * parameters) fails it, with the agent's reason as code.
 */
export function rejectionOutcome(reasonCode: string): RejectOutcome {
  if (requeues(reasonCode)) return { requeue: true };
  return { requeue: false, code: reasonCode || FailureCodes.REJECTED };
}
