import { tenantScope, type Principal } from '../domain/access.js';
import { checkEventsKept } from '../domain/history.js';
import type { TaskKind, TaskState } from '../domain/task.js';
import type { BackupRepository } from '../store/backup-repository.js';
import type { EventRepository } from '../store/event-repository.js';
import type { IdempotencyRepository } from '../store/idempotency-repository.js';
import type { JobRepository } from '../store/job-repository.js';
import type { PageRequest } from '../store/page.js';
import type { TaskRepository } from '../store/task-repository.js';
import type { UsageRepository } from '../store/usage-repository.js';
import type { Operations } from './operations.js';

/** What the records service reads from. */
export interface RecordsDeps {
  tasks: TaskRepository;
  eventLog: EventRepository;
  backups: BackupRepository;
  jobs: JobRepository;
  usage: UsageRepository;
  idempotency: IdempotencyRepository;
  operations: Operations;
}

/**
 * What the API reads back, each as the caller may see it (a tenant: its own): tasks and their
 * progress, the event log, restore points, backup jobs and usage.
 */
export class Records {
  constructor(private readonly deps: RecordsDeps) {}

  listTasks(p: Principal, page: PageRequest, filter: { state?: TaskState; kind?: TaskKind; instanceId?: string }) {
    const tenantId = tenantScope(p);
    return this.deps.tasks.list(page, {
      ...(tenantId !== undefined ? { tenantId } : {}),
      ...(filter.state ? { state: filter.state } : {}),
      ...(filter.kind ? { kind: filter.kind } : {}),
      ...(filter.instanceId ? { instanceId: filter.instanceId } : {}),
    });
  }

  /**
   * A task's stored progress reports, in order, a page at a time: the task is checked to be the
   * caller's to see first (404), before any page is read.
   */
  async progress(p: Principal, taskId: string) {
    const task = await this.deps.operations.visibleTask(p, taskId);
    return (page: PageRequest) => this.deps.tasks.progress(task.id, page);
  }

  /**
   * Up to `limit` events after `after`, and where the next page starts (see EventRepository.list);
   * refused (410) when events after `after` are forgotten.
   */
  async events(p: Principal, after: number, limit: number) {
    checkEventsKept(after, await this.deps.eventLog.forgottenThrough());
    return this.deps.eventLog.list(after, limit, tenantScope(p));
  }

  listBackups(p: Principal, page: PageRequest, filter: { instanceId?: string | undefined }) {
    const tenantId = tenantScope(p);
    return this.deps.backups.list(page, {
      ...(tenantId !== undefined ? { tenantId } : {}),
      ...(filter.instanceId ? { instanceId: filter.instanceId } : {}),
    });
  }

  /** `search`: `?q=`, a part of the name or the whole id. */
  listJobs(p: Principal, page: PageRequest, search?: string) {
    return this.deps.jobs.list(page, tenantScope(p), search);
  }

  usagePerTenant(p: Principal, page: PageRequest) {
    return this.deps.usage.perTenant(page, tenantScope(p));
  }

  /** Whether a request with this Idempotency-Key of the caller's token already has its stored answer. */
  answered(p: Principal, key: string): Promise<boolean> {
    return this.deps.idempotency.answered(p.tokenId, key);
  }
}
