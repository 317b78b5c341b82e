// @vitest-environment happy-dom
import { cleanup, fireEvent, render, screen } from '@testing-library/preact';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { progress, type LiveProgress } from './live.js';
import { route } from './router.js';
import { Link, Pager, TaskBar, type Task } from './ui.js';

const task = (over: Partial<Task> = {}): Task => ({
  id: 'tsk_1',
  kind: 'backup',
  state: 'running',
  instanceId: 'ins_1',
  backupId: null,
  progress: { percent: 10, bytesDone: 1024, bytesTotal: 10 * 1024, etaSeconds: 90 },
  error: null,
  createdAt: '2026-01-01T00:00:00Z',
  startedAt: '2026-01-01T00:00:00Z',
  endedAt: null,
  ...over,
});

const live = (over: Partial<LiveProgress>): LiveProgress => ({
  percent: 0,
  bytesDone: 0,
  bytesTotal: 0,
  etaSeconds: null,
  rate: undefined,
  sample: { bytesDone: 0, at: 0 },
  ...over,
});

afterEach(() => {
  cleanup();
  progress.value = new Map();
});

describe('a task bar', () => {
  it("shows a running task's live progress from the stream over the API's older figures", () => {
    progress.value = new Map([
      [
        'tsk_1',
        live({
          percent: 62.4,
          bytesDone: 6 * 1024 * 1024,
          bytesTotal: 10 * 1024 * 1024,
          etaSeconds: 65,
          rate: 2 * 1024 * 1024,
        }),
      ],
    ]);
    render(<TaskBar task={task()} />);
    const bar = screen.getByRole('progressbar', { name: 'backup tsk_1 progress' });
    expect(bar.getAttribute('value')).toBe('62');
    expect(document.body.textContent).toContain('62 % · 6.0 MiB of 10 MiB · 2.0 MiB/s · ETA 1 min 05 s');
  });

  it('moves when the stream does, without being rendered again by its parent', async () => {
    render(<TaskBar task={task()} />);
    expect(screen.getByRole('progressbar').getAttribute('value')).toBe('10');
    progress.value = new Map([['tsk_1', live({ percent: 80 })]]);
    await vi.waitFor(() => expect(screen.getByRole('progressbar').getAttribute('value')).toBe('80'));
  });

  it("shows an ended task's own figures: 100 % once it succeeded, its average rate, no ETA", () => {
    // A stale live report must not hold the bar back once the task ended.
    progress.value = new Map([['tsk_1', live({ percent: 50 })]]);
    render(
      <TaskBar
        task={task({
          state: 'succeeded',
          progress: { percent: 99, bytesDone: 4 * 1024 * 1024, bytesTotal: 4 * 1024 * 1024, etaSeconds: 0 },
          endedAt: '2026-01-01T00:00:02Z',
        })}
      />,
    );
    expect(screen.getByRole('progressbar').getAttribute('value')).toBe('100');
    expect(document.body.textContent).toContain('100 % · 4.0 MiB of 4.0 MiB · 2.0 MiB/s · ETA –');
  });
});

describe('paging and links', () => {
  it('shows no pager for a single page, and offers only the directions there are', () => {
    const next = vi.fn();
    const { rerender } = render(<Pager label="Things" hasPrev={false} hasNext={false} prev={vi.fn()} next={next} />);
    expect(screen.queryByRole('navigation')).toBeNull();
    rerender(<Pager label="Things" hasPrev={false} hasNext={true} prev={vi.fn()} next={next} />);
    expect(screen.getByRole('navigation', { name: 'Things pages' })).toBeTruthy();
    expect((screen.getByRole('button', { name: 'Previous page' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'Next page' }));
    expect(next).toHaveBeenCalledTimes(1);
  });

  it('follows a link in the page without a reload, and keeps a real href for a new tab', () => {
    render(<Link to="/instances/ins_9">vm</Link>);
    const a = screen.getByRole('link', { name: 'vm' });
    expect(a.getAttribute('href')).toBe('/ui/instances/ins_9');
    fireEvent.click(a);
    expect(route.value).toBe('/instances/ins_9');
    expect(location.pathname).toBe('/ui/instances/ins_9');
  });
});
