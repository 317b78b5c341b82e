// expect: no-restricted-syntax tasks are made by domain/task-factory.ts
// A task written out by hand beside the factory: the shape drifts (one such copy once left out a
// backup's parameters), so lint asks for the factory.
export const task = {
  kind: 'backup',
  tenantId: 'tnt_1',
  instanceId: 'ins_1',
  backupId: null,
  offeringId: 'off_1',
  providerId: 'prv_1',
  plugin: 'dummy',
  zone: 'z1',
  pinnedAgentId: null,
  priority: 10,
  params: {},
};
