/**
 * The parameters a backup task hands its plugin, whoever asked for it (an ad-hoc request, a
 * schedule, a backup job): the instance, the mode (INCREMENT only on top of a parent) and the
 * offering's id at the provider; `extra` adds what only some callers set (a job's fsFreeze).
 */
export function backupParams(
  instance: { id: string; name: string; locator: string },
  offering: { externalId: string | null },
  parent: { externalId: string } | undefined,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    instanceId: instance.id,
    instanceName: instance.name,
    locator: JSON.parse(instance.locator) as unknown,
    mode: parent ? 'INCREMENT' : 'FULL',
    ...(parent ? { parentExternalId: parent.externalId } : {}),
    ...(offering.externalId ? { offeringExternalId: offering.externalId } : {}),
    ...extra,
  };
}

/** The backup job whose run made a task (a job's backups name it in their params), else null. */
export function jobIdOf(task: { kind: string; params: string }): string | null {
  // Params are written by JSON.stringify, which never escapes a key's letters: without the key's
  // text there is no job id, and the parse is skipped (most backups are no job's).
  if (task.kind !== 'backup' || !task.params.includes('"jobId"')) return null;
  const jobId = (JSON.parse(task.params) as { jobId?: unknown }).jobId;
  return typeof jobId === 'string' ? jobId : null;
}
