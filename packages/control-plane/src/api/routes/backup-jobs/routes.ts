import type { Context } from 'hono';
import { principal, type Env } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { jsonBody, jsonResponse, maintenanceResponse, resource } from '../../openapi.js';
import { IdParam, NoQuery, PageQuery, pathId, SearchQuery } from '../../schemas.js';
import type { BackupJobRow } from '../../../store/schema.js';
import {
  Job,
  JobCreate,
  JobPage,
  JobPatch,
  JobRunMemberPage,
  JobRunPage,
  JobRunParams,
  JobSchedule,
  JobScheduleBody,
  JobScheduleParams,
  JobSchedulePatch,
} from './schemas.js';

/** Backup jobs: ordered instances under one policy, their schedules, runs and history. */
export function backupJobRoutes(deps: ApiDeps) {
  const api = resource('Backup jobs');
  const jobs = deps.backupJobs;
  const id = (c: Context<Env>, raw: string) => ({ p: principal(c), id: pathId('backup job', raw) });
  const sid = (raw: string) => pathId('schedule', raw);
  type Op = (p: ReturnType<typeof principal>, jobId: string) => Promise<BackupJobRow>;
  /** The job the path names after `op` on it, as the API shows it. */
  const jobAfter = async (c: Context<Env>, raw: string, op: Op) => {
    const { p, id: jobId } = id(c, raw);
    return jobs.view(await op(p, jobId));
  };

  api.post('/backup-jobs', {
    summary: 'Create a backup job',
    request: jsonBody(JobCreate),
    responses: { 201: jsonResponse(Job, 'the job') },
    handler: async (c) => {
      const job = await jobs.create(principal(c), c.req.valid('json'));
      return c.json(await jobs.view(job), 201, { Location: `/v1/backup-jobs/${job.id}` });
    },
  });

  api.get('/backup-jobs', {
    summary: 'List backup jobs, oldest first (a tenant: its own), or those matching ?q=',
    request: { query: SearchQuery },
    responses: { 200: jsonResponse(JobPage, 'a page of jobs') },
    handler: async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.records.listJobs(principal(c), q, q.q));
      return c.json(
        { items: await Promise.all(page.items.map((j) => jobs.view(j))), nextCursor: page.nextCursor },
        200,
      );
    },
  });

  api.get('/backup-jobs/{id}', {
    summary: "A backup job with its four sets, last run and the run's progress",
    request: { params: IdParam },
    responses: { 200: jsonResponse(Job, 'the job') },
    handler: async (c) => c.json(await jobAfter(c, c.req.valid('param').id, (p, j) => jobs.visible(p, j)), 200),
  });

  api.patch('/backup-jobs/{id}', {
    summary: 'Change a backup job (409 job_locked while locked)',
    request: { params: IdParam, ...jsonBody(JobPatch) },
    responses: { 200: jsonResponse(Job, 'the job') },
    handler: async (c) =>
      c.json(await jobAfter(c, c.req.valid('param').id, (p, j) => jobs.update(p, j, c.req.valid('json'))), 200),
  });

  api.delete('/backup-jobs/{id}', {
    summary: 'Delete a backup job and its history (409 while locked or while a run goes)',
    request: { params: IdParam, query: NoQuery },
    responses: { 204: { description: 'deleted' } },
    handler: async (c) => {
      const { p, id: jobId } = id(c, c.req.valid('param').id);
      await jobs.delete(p, jobId);
      return c.body(null, 204);
    },
  });

  /** `startsBackups`: the op starts backups, which a maintenance window refuses. */
  const accepted = (path: string, summary: string, op: Op, startsBackups = true) =>
    api.post(`/backup-jobs/{id}/${path}`, {
      summary,
      request: { params: IdParam, query: NoQuery },
      responses: {
        202: jsonResponse(Job, 'the job'),
        ...(startsBackups ? maintenanceResponse : {}),
      },
      handler: async (c) => c.json(await jobAfter(c, c.req.valid('param').id, op), 202),
    });
  const done = (path: string, summary: string, op: Op) =>
    api.post(`/backup-jobs/{id}/${path}`, {
      summary,
      request: { params: IdParam, query: NoQuery },
      responses: { 200: jsonResponse(Job, 'the job') },
      handler: async (c) => c.json(await jobAfter(c, c.req.valid('param').id, op), 200),
    });
  accepted('run', 'Run the job now (409 job_running while a run goes, job_locked while locked)', (p, j) =>
    jobs.run(p, j),
  );
  accepted('retry', 'Run exactly the ERROR set of the last run again, as a new run', (p, j) => jobs.retry(p, j));
  accepted(
    'cancel',
    'Cancel the run going: queued backups at once, running ones are asked to stop',
    (p, j) => jobs.cancel(p, j),
    false,
  );
  done('lock', 'Lock the job: it refuses every change and every run until unlocked', (p, j) =>
    jobs.setLocked(p, j, true),
  );
  done('unlock', 'Unlock the job', (p, j) => jobs.setLocked(p, j, false));

  api.get('/backup-jobs/{id}/runs', {
    summary: "The job's runs, newest first, each with its member counts by set and its first members",
    request: { params: IdParam, query: PageQuery },
    responses: { 200: jsonResponse(JobRunPage, 'a page of runs') },
    handler: async (c) => {
      const { p, id: jobId } = id(c, c.req.valid('param').id);
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => jobs.runsPage(p, jobId, q));
      return c.json((await deps.audiences.of(p)).json(page) as typeof page, 200);
    },
  });

  api.get('/backup-jobs/{id}/runs/{runId}/members', {
    summary: "A run's members in the job's order, each with its set, task and error",
    request: { params: JobRunParams, query: PageQuery },
    responses: { 200: jsonResponse(JobRunMemberPage, 'a page of members') },
    handler: async (c) => {
      const params = c.req.valid('param');
      const { p, id: jobId } = id(c, params.id);
      const runId = pathId('backup job run', params.runId);
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => jobs.runMembersPage(p, jobId, runId, q));
      return c.json((await deps.audiences.of(p)).json(page) as typeof page, 200);
    },
  });

  api.post('/backup-jobs/{id}/schedules', {
    summary: 'Add a schedule to the job',
    request: { params: IdParam, ...jsonBody(JobScheduleBody) },
    responses: { 201: jsonResponse(JobSchedule, 'the schedule') },
    handler: async (c) => {
      const { p, id: jobId } = id(c, c.req.valid('param').id);
      const row = await jobs.addSchedule(p, jobId, c.req.valid('json'));
      return c.json(await jobs.scheduleView(row), 201);
    },
  });

  api.patch('/backup-jobs/{id}/schedules/{sid}', {
    summary: "Change one of the job's schedules (its fire times count from now again)",
    request: { params: JobScheduleParams, ...jsonBody(JobSchedulePatch) },
    responses: { 200: jsonResponse(JobSchedule, 'the schedule') },
    handler: async (c) => {
      const params = c.req.valid('param');
      const { p, id: jobId } = id(c, params.id);
      const row = await jobs.updateSchedule(p, jobId, sid(params.sid), c.req.valid('json'));
      return c.json(await jobs.scheduleView(row), 200);
    },
  });

  api.delete('/backup-jobs/{id}/schedules/{sid}', {
    summary: "Remove one of the job's schedules",
    request: { params: JobScheduleParams, query: NoQuery },
    responses: { 204: { description: 'removed' } },
    handler: async (c) => {
      const params = c.req.valid('param');
      const { p, id: jobId } = id(c, params.id);
      await jobs.deleteSchedule(p, jobId, sid(params.sid));
      return c.body(null, 204);
    },
  });

  return api.app;
}
