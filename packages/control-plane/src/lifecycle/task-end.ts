import type { TaskEndHook, TaskEndings } from '../store/task-endings.js';

/** The parts of the control plane that react to a task's end (each a {@link TaskEndHook}). */
export interface TaskEndReactions {
  retention: { deleteEnded: TaskEndHook };
  providerSchedules: { taskEnded: TaskEndHook };
  sync: { taskEnded: TaskEndHook };
  jobs: { taskEnded: TaskEndHook };
  maintenance: { taskEnded: TaskEndHook };
}

/**
 * What a task's end changes besides the task, in the order it runs, inside the transaction that
 * ends the task (an agent's result or refusal, a cancel, an undeliverable assignment, an expired
 * lease): whichever way it ended, all of it commits with the end or none does. Each reaction looks
 * only at the tasks it is about and lets the others pass.
 */
export function reactToTaskEnds(endings: TaskEndings, r: TaskEndReactions): void {
  endings.react([
    // A delete-backup task: its restore point's record goes on success, stays (with an event) otherwise.
    r.retention.deleteEnded,
    // A configure- or deconfigure-schedule task: its instance's schedule in the backup system settles.
    r.providerSchedules.taskEnded,
    // A sync: its listing is compared with the records and the drift report replaced.
    r.sync.taskEnded,
    // A job's backup: its member moves to UPDATED or ERROR and the run starts what comes next.
    r.jobs.taskEnded,
    // Last, a held backup: the maintenance scopes covering it that wait for readiness are checked.
    r.maintenance.taskEnded,
  ]);
}
