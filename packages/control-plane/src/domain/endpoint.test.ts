import { describe, expect, it } from 'vitest';
import { endpointParts, maskEndpoint, redactText } from './endpoint.js';

describe('maskEndpoint', () => {
  it.each([
    ['rest:https://user:pw@host/repo', 'rest:https://user:***@host/repo', 'pw'],
    ['rest:https://user:p@ss:w0rd@backup.example:8000/', 'rest:https://user:***@backup.example:8000/', 'p@ss:w0rd'],
    ['https://user:pw@host', 'https://user:***@host', 'pw'],
    ['rest:https://host/repo', 'rest:https://host/repo', undefined],
    ['rest:https://user@host/repo', 'rest:https://user@host/repo', undefined],
    ['rest:https://user:@host/repo', 'rest:https://user:@host/repo', undefined],
    ['sftp:user@host:/srv/repo', 'sftp:user@host:/srv/repo', undefined],
    ['/srv/backup/repo', '/srv/backup/repo', undefined],
    // An @ in the path is not user info.
    ['rest:https://host/a@b:c', 'rest:https://host/a@b:c', undefined],
  ])('%s shows as %s', (endpoint, shown, secret) => {
    expect(maskEndpoint(endpoint)).toEqual({ shown, secret });
  });
});

describe('endpointParts and redactText', () => {
  const cases: [string, string, string][] = [
    [
      'rest:https://backup:s3cretpass@backup.sp.example:8000/tenants/acme',
      'Fatal: create repository at rest:https://backup:***@backup.sp.example:8000/tenants/acme/ failed',
      'Fatal: create repository at <repository>/ failed',
    ],
    [
      'rest:https://backup:s3cretpass@backup.sp.example:8000/tenants/acme',
      'dial tcp backup.sp.example:8000: connection refused; user backup@backup.sp.example; pass s3cretpass',
      'dial tcp <repository>: connection refused; user <repository>; pass <repository>',
    ],
    [
      'rest:https://backup:s3cretpass@backup.sp.example:8000/tenants/acme',
      'https://backup:***@backup.sp.example:8000/tenants/acme/locks/1 and /tenants/acme',
      '<repository>/locks/1 and <repository>',
    ],
    [
      '/srv/backup/acme/',
      'restic: repository /srv/backup/acme is locked; lock /srv/backup/acme/locks/ab12',
      'restic: repository <repository> is locked; lock <repository>/locks/ab12',
    ],
    [
      'sftp:restic@store.sp.example:/srv/restic-repo',
      'ssh: connect to restic@store.sp.example failed; sftp:restic@store.sp.example:/srv/restic-repo; /srv/restic-repo',
      'ssh: connect to <repository> failed; <repository>; <repository>',
    ],
    [
      's3:s3.sp.example/bucket-a/acme',
      'no such bucket s3.sp.example/bucket-a/acme at s3.sp.example',
      'no such bucket <repository> at <repository>',
    ],
    // A bare single-label host, or a short user, is not taken for the SP's in ordinary words.
    [
      'rest:http://backup:8000/',
      'backup failed: dial tcp backup:8000: refused',
      'backup failed: dial tcp <repository>: refused',
    ],
  ];
  it.each(cases)('%s: %s', (endpoint, text, redacted) => {
    expect(redactText(text, endpointParts(endpoint))).toBe(redacted);
  });

  it('gives the longest pieces first, so the whole is replaced before its parts', () => {
    const parts = endpointParts('rest:https://u:longpassword@h.example/r');
    expect([...parts].sort((a, b) => b.length - a.length)).toEqual(parts);
    expect(parts[0]).toBe('rest:https://u:longpassword@h.example/r');
    expect(parts).toContain('longpassword');
    expect(endpointParts('rest:https://u:short@h.example/r')).not.toContain('short');
  });
});
