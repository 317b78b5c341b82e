const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * Default restore-point name `<instance>.<DD>-<Mon> <HH.MM.SS>` (UTC).
 *
 * @example backupName('web-1', Date.UTC(2026, 10, 24, 9, 5, 7)) // 'web-1.24-Nov 09.05.07'
 */
export function backupName(instanceName: string, at: number): string {
  const d = new Date(at);
  return `${instanceName}.${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]} ${pad(d.getUTCHours())}.${pad(d.getUTCMinutes())}.${pad(d.getUTCSeconds())}`;
}
