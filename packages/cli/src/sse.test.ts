import { describe, expect, it } from 'vitest';
import { SseParser, type SseMessage } from './sse.js';

function parse(chunks: string[]) {
  const got: SseMessage[] = [];
  const p = new SseParser((m) => got.push(m));
  for (const c of chunks) p.feed(c);
  return { got, p };
}

describe('SseParser', () => {
  it('takes the position of an id-only first message without firing an event', () => {
    const { got, p } = parse(['id: 41\n\n']);
    expect(got).toEqual([]);
    expect(p.lastEventId).toBe('41');
  });

  it('fires one message per block with data, tracking the last id', () => {
    const { got, p } = parse([
      'id: 41\n\n: keep-alive\n\nid: 42\nevent: task.queued\ndata: {"a":1}\n\n',
      'id: 43\ndata: x\ndata: y\n\n',
    ]);
    expect(got).toEqual([
      { id: '42', event: 'task.queued', data: '{"a":1}' },
      { id: '43', event: 'message', data: 'x\ny' },
    ]);
    expect(p.lastEventId).toBe('43');
  });

  it('joins lines split across chunks, CRLF split between chunks included', () => {
    const { got } = parse(['id: 7\r', '\ndata: {"m":', '"hi"}\r', '\n\r\n', 'data: z\r\r']);
    expect(got).toEqual([
      { id: '7', event: 'message', data: '{"m":"hi"}' },
      { id: '7', event: 'message', data: 'z' },
    ]);
  });

  it('keeps the last id across a reset, drops the partial block, and reads retry', () => {
    const { got, p } = parse(['retry: 2500\nid: 5\ndata: a\n\nid: 6\ndata: half']);
    p.reset();
    p.feed('data: b\n\n');
    expect(got.map((m) => [m.id, m.data])).toEqual([
      ['5', 'a'],
      ['5', 'b'],
    ]);
    expect(p.retryMs).toBe(2500);
  });
});
