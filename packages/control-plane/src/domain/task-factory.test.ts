import { describe, expect, it } from 'vitest';
import { backupTask, instanceTask, providerTask } from './task-factory.js';

const instance = {
  id: 'ins_1',
  tenantId: 'tnt_1',
  zone: 'z1',
  agentId: null,
  name: 'web-1',
  locator: '{"vm":"web-1"}',
};
const offering = { id: 'off_1', externalId: 'gold' };
const provider = { id: 'prv_1', plugin: 'dummy', zone: 'z1' };

describe('the task factory', () => {
  it('makes a backup the same way for every caller: instance, offering, provider and parameters', () => {
    expect(backupTask({ instance, offering, provider }, 10)).toEqual({
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
      params: {
        instanceId: 'ins_1',
        instanceName: 'web-1',
        locator: { vm: 'web-1' },
        mode: 'FULL',
        offeringExternalId: 'gold',
      },
    });
  });

  it('an increment names its parent; a job adds its id and fsFreeze; a caller may name the task', () => {
    const task = backupTask(
      { instance: { ...instance, agentId: 'agt_1' }, offering, provider },
      49,
      { externalId: 'snap-0' },
      { jobId: 'job_1', fsFreeze: true },
      'tsk_1',
    );
    expect(task).toMatchObject({ id: 'tsk_1', pinnedAgentId: 'agt_1', priority: 49 });
    expect(task.params).toMatchObject({
      mode: 'INCREMENT',
      parentExternalId: 'snap-0',
      jobId: 'job_1',
      fsFreeze: true,
    });
  });

  it('a task that is not the instance’s own holds no instance, yet runs where the instance lives', () => {
    const place = { instance: { ...instance, agentId: 'agt_1' }, offeringId: null, provider };
    const task = instanceTask('power-state', place, 5, {}, { ownsInstance: false });
    expect(task).toMatchObject({ instanceId: null, zone: 'z1', pinnedAgentId: 'agt_1', offeringId: null });
    expect(instanceTask('restore', place, 5, {}, { backupId: 'bkp_1' })).toMatchObject({
      instanceId: 'ins_1',
      backupId: 'bkp_1',
    });
  });

  it('a provider task runs on any agent of the provider’s zone and names no instance', () => {
    expect(providerTask('sync', provider, 'tnt_sp', 60, {})).toMatchObject({
      kind: 'sync',
      instanceId: null,
      offeringId: null,
      pinnedAgentId: null,
      zone: 'z1',
      tenantId: 'tnt_sp',
    });
  });
});
