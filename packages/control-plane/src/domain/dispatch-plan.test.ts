import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planRound, type RoundTask } from './dispatch-rules.js';
import { unfit, type AgentCandidate } from './placement.js';

const plugins = [{ name: 'p', capabilities: ['backup', 'restore'] }];

function agent(id: string, slots: number, held = 0, zone = 'z1'): AgentCandidate {
  return { id, zone, slots, held, plugins, draining: false, shuttingDown: false };
}

function task(id: string, tenantId: string, priority: number, extra: Partial<RoundTask> = {}): RoundTask {
  return {
    id,
    tenantId,
    priority,
    kind: 'backup',
    plugin: 'p',
    zone: 'z1',
    pinnedAgentId: null,
    instanceId: `ins-${id}`,
    ...extra,
  };
}

/** The queue's order: priority desc, then id (enqueue order). */
const sorted = (tasks: RoundTask[]) =>
  [...tasks].sort((a, b) => b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

describe('planRound', () => {
  it('fills the agent with the most free slots first and stops at the budget', () => {
    const plan = planRound(
      sorted([task('t1', 'a', 0), task('t2', 'a', 0), task('t3', 'a', 0)]),
      [agent('ag1', 2, 1), agent('ag2', 4, 1)],
      2,
    );
    expect(plan.map((p) => [p.task.id, p.agentId])).toEqual([
      ['t1', 'ag2'],
      ['t2', 'ag2'],
    ]);
  });

  it('passes over a task that fits nowhere, so a lower priority one that fits still runs', () => {
    const plan = planRound(sorted([task('hi', 'a', 60, { zone: 'z2' }), task('lo', 'a', 0)]), [agent('ag1', 1)], 10);
    expect(plan.map((p) => p.task.id)).toEqual(['lo']);
  });

  it('one task per instance per round, pins and zones respected', () => {
    const plan = planRound(
      sorted([
        task('t1', 'a', 0, { instanceId: 'x' }),
        task('t2', 'a', 0, { instanceId: 'x' }),
        task('t3', 'a', 0, { pinnedAgentId: 'ag2' }),
        task('t4', 'a', 0, { zone: 'z2' }),
      ]),
      [agent('ag1', 5), agent('ag2', 5), agent('ag3', 5, 0, 'z2')],
      10,
    );
    expect(plan.map((p) => [p.task.id, p.agentId])).toEqual([
      ['t1', 'ag1'],
      ['t3', 'ag2'],
      ['t4', 'ag3'],
    ]);
  });

  it('does not change the agents it was given', () => {
    const agents = [agent('ag1', 2)];
    planRound([task('t1', 'a', 0)], agents, 5);
    expect(agents[0]!.held).toBe(0);
  });
});

// A whole queue driven through rounds, with backups ending at random between them.
describe('dispatch rounds (property)', () => {
  const scenario = fc.record({
    agents: fc.array(fc.record({ slots: fc.integer({ min: 1, max: 4 }), zone: fc.constantFrom('z1', 'z2') }), {
      minLength: 1,
      maxLength: 4,
    }),
    tasks: fc.array(
      fc.record({
        tenant: fc.constantFrom('a', 'b', 'c'),
        priority: fc.constantFrom(0, 10, 49, 50, 99),
        instance: fc.integer({ min: 0, max: 15 }),
        zone: fc.constantFrom('z1', 'z2'),
        pin: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
      }),
      { maxLength: 40 },
    ),
    globalLimit: fc.integer({ min: 1, max: 10 }),
    // How many of the running tasks end between two rounds (taken from the oldest).
    endings: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 10 }),
  });

  it('never more held than slots or the global limit; the provider’s band and a tenant’s higher priority never wait behind lower; every runnable task runs', () => {
    fc.assert(
      fc.property(scenario, ({ agents: specs, tasks: taskSpecs, globalLimit, endings }) => {
        const agents = specs.map((s, i) => agent(`ag${i}`, s.slots, 0, s.zone));
        const all = taskSpecs.map((s, i) =>
          task(`t${String(i).padStart(3, '0')}`, s.tenant, s.priority, {
            instanceId: `ins${s.instance}`,
            zone: s.zone,
            pinnedAgentId: s.pin !== undefined && s.pin < agents.length ? `ag${s.pin}` : null,
          }),
        );
        // A task with no agent that could ever take it stays queued; all others must run.
        const runnable = all.filter((t) => agents.some((a) => unfit({ ...a, held: 0 }, t) === null));
        let queued = [...all];
        const running: { task: RoundTask; agentId: string }[] = [];
        const ran = new Set<string>();
        for (let round = 0; round < 500; round++) {
          const held = agents.map((a) => ({ ...a, held: running.filter((r) => r.agentId === a.id).length }));
          const busy = new Set(running.map((r) => r.task.instanceId));
          // As the queue query does: tasks whose instance is busy are not offered.
          const offered = sorted(queued.filter((t) => !busy.has(t.instanceId)));
          const byTenant = new Map<string, number>();
          for (const r of running) byTenant.set(r.task.tenantId, (byTenant.get(r.task.tenantId) ?? 0) + 1);
          const plan = planRound(offered, held, globalLimit - running.length, byTenant);

          // A task of the provider's band never waits behind a lower priority, nor a tenant's task
          // behind a lower one of the same tenant: no such unplaced task could have taken the agent
          // the lower one got (same agent free before the plan, and instance not taken). Across
          // tenants, the tenants' band is shared, not ordered by priority.
          const placedIds = new Set(plan.map((p) => p.task.id));
          const placedInstances = new Set(plan.map((p) => p.task.instanceId));
          for (const low of plan) {
            for (const high of offered) {
              if (placedIds.has(high.id) || high.priority <= low.task.priority) continue;
              if (high.priority < 50 && high.tenantId !== low.task.tenantId) continue;
              if (placedInstances.has(high.instanceId)) continue;
              const a = held.find((x) => x.id === low.agentId)!;
              expect(unfit(a, high)).not.toBeNull();
            }
          }

          for (const p of plan) {
            running.push(p);
            ran.add(p.task.id);
            queued = queued.filter((t) => t.id !== p.task.id);
          }
          // Never more than the slots of any agent, nor the global limit.
          expect(running.length).toBeLessThanOrEqual(globalLimit);
          for (const a of agents) {
            expect(running.filter((r) => r.agentId === a.id).length).toBeLessThanOrEqual(a.slots);
          }
          // Never two tasks of one instance at once.
          expect(new Set(running.map((r) => r.task.instanceId)).size).toBe(running.length);

          const end = Math.max(1, endings[round % endings.length]!);
          running.splice(0, end);
          if (queued.every((t) => !runnable.includes(t)) && running.length === 0) break;
        }
        expect([...ran].sort()).toEqual(runnable.map((t) => t.id).sort());
      }),
    );
  });

  it('at equal priority each next slot goes to a tenant holding the fewest tasks', () => {
    const tenants = ['a', 'b', 'c', 'd'];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...tenants), { maxLength: 60 }),
        fc.dictionary(fc.constantFrom(...tenants), fc.integer({ min: 0, max: 20 })),
        fc.integer({ min: 1, max: 30 }),
        (queuedBy, heldSpec, slots) => {
          const tasks = queuedBy.map((tenant, i) => task(`t${String(i).padStart(3, '0')}`, tenant, 0));
          const held = new Map(Object.entries(heldSpec));
          const plan = planRound(sorted(tasks), [agent('ag1', slots)], 1000, held);
          const count = new Map(held);
          const left = new Map<string, number>();
          for (const t of tasks) left.set(t.tenantId, (left.get(t.tenantId) ?? 0) + 1);
          for (const { task: t } of plan) {
            const mine = count.get(t.tenantId) ?? 0;
            for (const [other, n] of left) {
              if (n > 0 && other !== t.tenantId) expect(mine).toBeLessThanOrEqual(count.get(other) ?? 0);
            }
            count.set(t.tenantId, mine + 1);
            left.set(t.tenantId, left.get(t.tenantId)! - 1);
          }
          expect(plan).toHaveLength(Math.min(slots, tasks.length));
        },
      ),
    );
  });

  it('with one free slot per round, tenants still take turns (the one served longest ago goes next)', () => {
    let queue = sorted([
      ...Array.from({ length: 6 }, (_, i) => task(`a${i}`, 'a', 0)),
      task('b0', 'b', 0),
      task('b1', 'b', 0),
    ]);
    const lastServed = new Map<string, number>();
    const order: string[] = [];
    for (let turn = 1; queue.length > 0; turn++) {
      // Each round: the one slot is free again (the previous backup ended), nothing is held.
      const [picked] = planRound(queue, [agent('ag1', 1)], 1, new Map(), lastServed);
      order.push(picked!.task.id);
      lastServed.set(picked!.task.tenantId, turn);
      queue = queue.filter((t) => t.id !== picked!.task.id);
    }
    expect(order).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'a3', 'a4', 'a5']);
  });

  it('a tenant with many queued tasks delays another tenant’s one by at most one slot turn', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 8 }), (flood, slots) => {
        const tasks = [
          ...Array.from({ length: flood }, (_, i) => task(`a${String(i).padStart(4, '0')}`, 'a', 0)),
          task('b0', 'b', 0),
        ];
        const plan = planRound(sorted(tasks), [agent('ag1', slots)], 1000);
        // b's one task is second in line at most, whatever a queued before it.
        const at = plan.findIndex((p) => p.task.id === 'b0');
        if (slots >= 2) expect(at).toBeLessThanOrEqual(1);
        else expect(plan.map((p) => p.task.id)).toEqual(['a0000']);
        // And first once a's flood already runs something.
        const running = planRound(sorted(tasks), [agent('ag1', slots)], 1000, new Map([['a', 1]]));
        expect(running[0]!.task.id).toBe('b0');
      }),
    );
  });
  it('in the tenants’ band each next slot goes to a tenant holding the fewest tasks, whatever priorities they use', () => {
    const tenants = ['a', 'b', 'c', 'd'];
    fc.assert(
      fc.property(
        fc.array(fc.record({ tenant: fc.constantFrom(...tenants), priority: fc.integer({ min: 0, max: 49 }) }), {
          maxLength: 60,
        }),
        fc.dictionary(fc.constantFrom(...tenants), fc.integer({ min: 0, max: 20 })),
        fc.integer({ min: 1, max: 30 }),
        (queuedBy, heldSpec, slots) => {
          const tasks = queuedBy.map((q, i) => task(`t${String(i).padStart(3, '0')}`, q.tenant, q.priority));
          const held = new Map(Object.entries(heldSpec));
          const plan = planRound(sorted(tasks), [agent('ag1', slots)], 1000, held);
          const count = new Map(held);
          const left = new Map<string, RoundTask[]>();
          for (const t of tasks) left.set(t.tenantId, [...(left.get(t.tenantId) ?? []), t]);
          for (const { task: t } of plan) {
            const mine = count.get(t.tenantId) ?? 0;
            for (const [other, rest] of left) {
              if (rest.length > 0 && other !== t.tenantId) expect(mine).toBeLessThanOrEqual(count.get(other) ?? 0);
            }
            // A tenant's own tasks: its highest priority first, then enqueue order.
            const own = left.get(t.tenantId)!;
            const next = [...own].sort((x, y) => y.priority - x.priority || (x.id < y.id ? -1 : 1))[0]!;
            expect(t.id).toBe(next.id);
            count.set(t.tenantId, mine + 1);
            left.set(
              t.tenantId,
              own.filter((x) => x.id !== t.id),
            );
          }
          expect(plan).toHaveLength(Math.min(slots, tasks.length));
        },
      ),
    );
  });

  it('the provider’s band goes first, strictly by priority, whoever holds what', () => {
    const plan = planRound(
      sorted([
        task('a49', 'a', 49),
        task('b0', 'b', 0),
        task('b50', 'b', 50),
        task('a90', 'a', 90),
        task('a60', 'a', 60),
      ]),
      [agent('ag1', 10)],
      1000,
      new Map([['a', 5]]),
    );
    expect(plan.map((p) => p.task.id)).toEqual(['a90', 'a60', 'b50', 'b0', 'a49']);
  });

  it('a tenant at its runningTasks limit gets no more of its band; others and the provider’s band still do', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ tenant: fc.constantFrom('a', 'b'), priority: fc.constantFrom(0, 20, 49, 50, 90) }), {
          maxLength: 40,
        }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 30 }),
        (queuedBy, limit, heldA, slots) => {
          const tasks = queuedBy.map((q, i) => task(`t${String(i).padStart(3, '0')}`, q.tenant, q.priority));
          const plan = planRound(sorted(tasks), [agent('ag1', slots)], 1000, new Map([['a', heldA]]), new Map(), (t) =>
            t === 'a' ? limit : Infinity,
          );
          let holds = heldA;
          for (const { task: t } of plan) {
            if (t.tenantId !== 'a') continue;
            // Only the provider's band passes the limit.
            if (t.priority < 50) expect(holds).toBeLessThan(limit);
            holds++;
          }
          // Whatever is left out waits only for the slots or a's limit.
          const planned = new Set(plan.map((p) => p.task.id));
          const waiting = tasks.filter((t) => !planned.has(t.id));
          if (plan.length < slots)
            for (const t of waiting) expect(t.tenantId === 'a' && t.priority < 50 && holds >= limit).toBe(true);
        },
      ),
    );
  });
});
