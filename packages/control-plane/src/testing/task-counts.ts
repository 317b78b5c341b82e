import { TERMINAL_STATES } from '../domain/task.js';
import { openStore, type Db } from '../store/db.js';

/**
 * Where the kept counts of ended tasks (`task_counts`) differ from the ended tasks the store
 * holds, one line per state and kind; empty when they agree. The store fixtures check it as they
 * close, so every test that ends or forgets tasks, whichever way, checks that it counted them.
 */
export async function taskCountsDrift(db: Db): Promise<string[]> {
  const [kept, counted] = await Promise.all([
    db.selectFrom('taskCounts').select(['state', 'kind', 'n']).execute(),
    db
      .selectFrom('tasks')
      .select(['state', 'kind', (eb) => eb.fn.countAll<number>().as('n')])
      .where('state', 'in', TERMINAL_STATES)
      .groupBy(['state', 'kind'])
      .execute(),
  ]);
  const byName = new Map<string, { kept: number; counted: number }>();
  const entry = (state: string, kind: string) => {
    const name = `${state} ${kind}`;
    let e = byName.get(name);
    if (!e) byName.set(name, (e = { kept: 0, counted: 0 }));
    return e;
  };
  for (const r of kept) entry(r.state, r.kind).kept += Number(r.n);
  for (const r of counted) entry(r.state, r.kind).counted += Number(r.n);
  return [...byName]
    .filter(([, e]) => e.kept !== e.counted)
    .map(([name, e]) => `${name}: kept ${e.kept}, in the store ${e.counted}`);
}

/** Throws when {@link taskCountsDrift} finds any. */
export async function checkTaskCounts(db: Db): Promise<void> {
  const drift = await taskCountsDrift(db);
  if (drift.length > 0) throw new Error(`the kept counts of ended tasks drifted: ${drift.join('; ')}`);
}

/** {@link checkTaskCounts} on the database at `url`, through a handle of its own. */
export async function checkTaskCountsAt(url: string): Promise<void> {
  const store = openStore(url);
  try {
    await checkTaskCounts(store.db);
  } finally {
    await store.close();
  }
}
