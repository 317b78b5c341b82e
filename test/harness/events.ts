/** `n` rows of the event log of `type` for `tenantId`, for a test that writes them straight into the log. */
export function eventRows(tenantId: string, type: string, n: number, data: string | null = null) {
  return Array.from({ length: n }, () => ({
    tenantId,
    type,
    at: Date.now(),
    message: 'm',
    taskId: null,
    instanceId: null,
    jobId: null,
    agentId: null,
    data,
    sourceAgentId: null,
    sourceSeq: null,
  }));
}
