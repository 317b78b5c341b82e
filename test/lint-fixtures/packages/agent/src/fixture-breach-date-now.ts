// expect: no-restricted-syntax never Date.now()
// A part of the agent reading the machine's time beside the clock it was given: its timestamps
// and deadlines drift from the others', and a test cannot set them.
export function stamp(taskId: string) {
  return { taskId, atMs: Date.now() };
}
