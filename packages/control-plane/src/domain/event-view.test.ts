import { describe, expect, it } from 'vitest';
import { eventSeen } from './event-view.js';

describe('eventSeen', () => {
  const sp = 'ten_sp';
  it('shows a tenant its own events only, and the sp-admin each maintenance change once', () => {
    expect(eventSeen({ tenantId: 'ten_a', type: 'maintenance.enabled' }, 'ten_a', sp)).toBe(true);
    expect(eventSeen({ tenantId: 'ten_b', type: 'task.queued' }, 'ten_a', sp)).toBe(false);
    expect(eventSeen({ tenantId: 'ten_a', type: 'maintenance.enabled' }, undefined, sp)).toBe(false);
    expect(eventSeen({ tenantId: sp, type: 'maintenance.enabled' }, undefined, sp)).toBe(true);
    expect(eventSeen({ tenantId: 'ten_a', type: 'task.queued' }, undefined, sp)).toBe(true);
  });
});
