import { CompiledQuery } from 'kysely';
import { openStore } from '../store/db.js';

/** Runs one statement of the holding transaction. */
export type Hold = (text: string, params?: unknown[]) => Promise<void>;

/**
 * MySQL/MariaDB: opens a transaction on a connection of its own to the database at `url`, runs
 * `hold` in it (statements that lock rows), then `act` while that transaction stays open.
 * Answers 'done' when `act` settled meanwhile, 'waiting' when it was still waiting 5 s on (for a
 * lock the holder took: InnoDB would wait 50 s). The holder then rolls back, and `act` is awaited
 * before answering either way.
 */
export async function whileHeld(
  url: string,
  hold: (run: Hold) => Promise<void>,
  act: () => Promise<unknown>,
): Promise<'done' | 'waiting'> {
  const other = openStore(url);
  try {
    return await other.db.connection().execute(async (conn) => {
      const run: Hold = async (text, params = []) => void (await conn.executeQuery(CompiledQuery.raw(text, params)));
      await run('begin');
      await hold(run);
      const acted = act().then(() => 'done' as const);
      const waited = new Promise<'waiting'>((resolve) => setTimeout(() => resolve('waiting'), 5_000));
      const outcome = await Promise.race([acted, waited]);
      await run('rollback');
      await acted;
      return outcome;
    });
  } finally {
    await other.close();
  }
}
