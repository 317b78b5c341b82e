/**
 * F5's model of the report protocol (docs/architecture.md, "the path of one report";
 * `proto/cairn/agent/v1/agent.proto`, "Delivery"): what the control plane must hold after an agent
 * sent a sequence of reports, duplicated, reordered and replayed across sessions. Pure: it is
 * told every report in the order the control plane takes it and says what each task, its progress
 * rows, its events and its backup record must be. The rules, as the contract states them:
 *
 * - a report about no task, a task this agent does not hold, or another attempt changes nothing;
 * - a plugin's event is kept once per (agent, spool seq), also after its task ended;
 * - nothing else changes an ended task; `accepted` starts a dispatched task (one `task.started`);
 * - progress is stored once per (agent, spool seq) while the task is held (dispatched or running;
 *   it runs from then on), and the task shows the figures of its newest (highest seq) stored report;
 * - the first result of the attempt ends the task (succeeded with its backup record, or failed
 *   with its code, one end event); any later result changes nothing;
 * - a refusal (`NO_SLOT`) of a dispatched task hands it back to the queue, and the dispatcher gives
 *   it out again under the next attempt; a running task cannot be refused any more.
 */

export type ReportKind = 'accepted' | 'progress' | 'event' | 'result-ok' | 'result-fail' | 'rejected';
export const REPORT_KINDS: readonly ReportKind[] = [
  'accepted',
  'progress',
  'event',
  'result-ok',
  'result-fail',
  'rejected',
];

/** One report as the model sees it (the frame carries the same fields). */
export interface ModelReport {
  seq: number;
  taskId: string;
  attempt: number;
  kind: ReportKind;
  /** Progress only. */
  percent: number;
}

export type TaskModelState = 'queued' | 'dispatched' | 'running' | 'succeeded' | 'failed';

/** What the control plane must show of one task. */
export interface TaskModel {
  id: string;
  state: TaskModelState;
  attempt: number;
  /** The agent holds it (false once it went back to the queue, until it is given out again). */
  held: boolean;
  /** Stored progress rows by seq (with the attempt they were stored under). */
  progress: Map<number, { attempt: number; percent: number }>;
  /** Plugin events kept, by seq. */
  events: Set<number>;
  started: number;
  ends: number;
  /** The seq of the result that ended it (its backup's external id and error code name it). */
  endedBy: number | null;
}

/** The failure code a `result-fail` report carries (the control plane keeps it as the task's error). */
export const MODEL_FAILURE_CODE = 'F5_MODEL_FAILURE';

/** The external id of the backup a `result-ok` report of `seq` names. */
export const modelExternalId = (taskId: string, seq: number) => `f5-${taskId}-${seq}`;

export type Applied = 'applied' | 'ignored' | 'requeued';

export class ReportModel {
  readonly tasks = new Map<string, TaskModel>();

  /** A task the dispatcher gave this agent (its first attempt, or the next after a requeue). */
  assigned(id: string, attempt: number): void {
    const t = this.tasks.get(id);
    if (t) {
      t.state = 'dispatched';
      t.attempt = attempt;
      t.held = true;
      return;
    }
    this.tasks.set(id, {
      id,
      state: 'dispatched',
      attempt,
      held: true,
      progress: new Map(),
      events: new Set(),
      started: 0,
      ends: 0,
      endedBy: null,
    });
  }

  /** The control plane takes report `r` (its first arrival or a repeat): what it must do. */
  apply(r: ModelReport): Applied {
    const t = this.tasks.get(r.taskId);
    if (!t || !t.held || t.attempt !== r.attempt) return 'ignored';
    if (r.kind === 'event') {
      if (t.events.has(r.seq)) return 'ignored';
      t.events.add(r.seq);
      return 'applied';
    }
    if (t.state !== 'dispatched' && t.state !== 'running') return 'ignored';
    switch (r.kind) {
      case 'accepted':
        if (t.state !== 'dispatched') return 'ignored';
        t.state = 'running';
        t.started++;
        return 'applied';
      case 'rejected':
        if (t.state !== 'dispatched') return 'ignored';
        t.state = 'queued';
        t.held = false;
        return 'requeued';
      case 'progress':
        if (t.progress.has(r.seq)) return 'ignored';
        t.progress.set(r.seq, { attempt: r.attempt, percent: r.percent });
        t.state = 'running';
        return 'applied';
      case 'result-ok':
      case 'result-fail':
        t.state = r.kind === 'result-ok' ? 'succeeded' : 'failed';
        t.ends++;
        t.endedBy = r.seq;
        return 'applied';
    }
  }

  /** The percentage the task must show, or undefined when the model does not say (no progress of this attempt yet). */
  static percent(t: TaskModel): number | undefined {
    if (t.state === 'succeeded') return 100;
    let newest: number | undefined;
    for (const [seq, p] of t.progress)
      if (p.attempt === t.attempt && (newest === undefined || seq > newest)) newest = seq;
    return newest === undefined ? undefined : t.progress.get(newest)!.percent;
  }
}

/** One step of the agent's side of a generated sequence. */
export type Action =
  /** A new report about task `task` (an index into the run's tasks). */
  | { do: 'report'; task: number; kind: ReportKind; percent: number }
  /** Two new reports, the second (higher seq) sent first. */
  | { do: 'swap'; task: number; first: ReportKind; second: ReportKind; percent: number }
  /** An earlier frame sent again, as it was (`pick` indexes the frames sent so far). */
  | { do: 'duplicate'; pick: number }
  /** The connection dropped at once; a new session says hello and replays every unacknowledged report. */
  | { do: 'reconnect' }
  /** A report of the task under an attempt it is not at (a superseded one when there is one). */
  | { do: 'stale'; task: number; kind: ReportKind }
  /** A report about a task no agent holds (`unknown`: one that does not exist). */
  | { do: 'foreign'; kind: ReportKind; unknown: boolean };
