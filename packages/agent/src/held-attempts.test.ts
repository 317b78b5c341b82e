import { describe, expect, it } from 'vitest';
import { heldAttempts } from './agent.js';

describe('the attempts a hello lists', () => {
  it('lists the running attempts, then those whose result is unacknowledged, each once', () => {
    expect(
      heldAttempts(
        [
          { taskId: 'tsk_a', attempt: 1 },
          { taskId: 'tsk_b', attempt: 3 },
        ],
        [
          { taskId: 'tsk_c', attempt: 1 },
          { taskId: 'tsk_b', attempt: 3 },
          { taskId: 'tsk_b', attempt: 2 },
        ],
      ),
    ).toEqual([
      { taskId: 'tsk_a', attempt: 1 },
      { taskId: 'tsk_b', attempt: 3 },
      { taskId: 'tsk_c', attempt: 1 },
      { taskId: 'tsk_b', attempt: 2 },
    ]);
  });

  it("keeps to the control plane's limit of 10,000, running attempts first", () => {
    const many = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ taskId: `${prefix}${i}`, attempt: 1 }));
    const listed = heldAttempts(many('tsk_r', 3), many('tsk_u', 12_000));
    expect(listed).toHaveLength(10_000);
    expect(listed.slice(0, 3).map((a) => a.taskId)).toEqual(['tsk_r0', 'tsk_r1', 'tsk_r2']);
  });
});
