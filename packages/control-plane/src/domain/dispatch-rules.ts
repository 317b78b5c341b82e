/**
 * Pure dispatch rules: the order queued tasks are offered to agents, and what an agent's
 * rejection does to a task.
 */
import { FailureCodes, requeues } from '@cairn/proto/vocabulary';
import { unfit, type AgentCandidate, type TaskNeeds } from './placement.js';

export interface Queued {
  id: string;
  tenantId: string;
  priority: number;
}

/**
 * Higher priority first; within one priority, tenants take turns (each tenant's own tasks stay
 * in enqueue order), so no tenant starves the others at equal priority. Input must be sorted by
 * priority desc then enqueue order, as the queue query returns it.
 *
 * @example fairOrder([a1, a2, a3, b1]) // → a1, b1, a2, a3 (same priority)
 */
export function fairOrder<T extends Queued>(sorted: readonly T[]): T[] {
  const out: T[] = [];
  let i = 0;
  while (i < sorted.length) {
    const priority = sorted[i]!.priority;
    const band: T[] = [];
    while (i < sorted.length && sorted[i]!.priority === priority) band.push(sorted[i++]!);
    const byTenant = new Map<string, T[]>();
    for (const t of band) {
      const list = byTenant.get(t.tenantId);
      if (list) list.push(t);
      else byTenant.set(t.tenantId, [t]);
    }
    const queues = [...byTenant.values()];
    for (let round = 0; out.length < i; round++) {
      for (const q of queues) {
        const t = q[round];
        if (t) out.push(t);
      }
    }
  }
  return out;
}

/** A queued task as one dispatch round sees it. */
export type RoundTask = Queued & TaskNeeds & { instanceId: string | null };

/**
 * One dispatch round: which queued task goes to which agent. Tasks are offered in `fairOrder`
 * (priority first, tenants taking turns within a priority); each goes to the fitting agent with the
 * most free slots (ties: the first in `agents`), at most one task per instance, until `budget` (the
 * global limit minus what agents already hold) or the slots run out. A task that fits no agent
 * now is passed over, so it never holds back a lower-priority task that does fit somewhere.
 * `agents` is not changed; the plan counts the slots it hands out.
 *
 * @example planRound(head, [{ id: 'ag1', slots: 2, held: 1, ... }], 10) // → [{ task: head[0], agentId: 'ag1' }]
 */
export function planRound<T extends RoundTask>(
  sorted: readonly T[],
  agents: readonly AgentCandidate[],
  budget: number,
): { task: T; agentId: string }[] {
  const pool = agents.map((a) => ({ ...a }));
  const busyInstances = new Set<string>();
  const plan: { task: T; agentId: string }[] = [];
  for (const task of fairOrder(sorted)) {
    if (plan.length >= budget) break;
    if (task.instanceId !== null && busyInstances.has(task.instanceId)) continue;
    let best: (typeof pool)[number] | undefined;
    for (const a of pool) {
      if (unfit(a, task) !== null) continue;
      if (!best || a.slots - a.held > best.slots - best.held) best = a;
    }
    if (!best) continue;
    best.held++;
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
