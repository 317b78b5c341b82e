import { isTransient } from '../store/db.js';

/** Runs `work` again (up to `attempts` times) when the store aborted it as a deadlock victim or busy. */
export async function retryTransient<T>(work: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= attempts || !isTransient(err)) throw err;
    }
  }
}
