/**
 * How fast the agent sends reports. The control plane announces the agent's budget in its
 * welcome (token buckets of `burst` frames refilled at `perSecond`, and the same over frame
 * bytes) and closes a session that goes over it. The budget is the agent's, not the session's:
 * the control plane carries it over from one session to the next, so the agent's own buckets
 * outlive its sessions too. The agent keeps inside buckets of its own of a quarter of each burst
 * and half each rate, and has at most another quarter of each burst sent but not yet
 * acknowledged: frames bunched up on the network then still fit, with room left for heartbeats.
 */
export interface Pace {
  perSecond: number;
  burst: number;
  /** Reports sent on the session and not yet acknowledged. */
  window: number;
  /** The same over frame bytes; absent when the server announced no byte budget. */
  bytes?: { perSecond: number; burst: number; window: number };
}

/** The agent's own pace for a welcome's budget; null when the server announced none. */
export function paceFor(welcome: {
  framesPerSecond?: number | null;
  frameBurst?: number | null;
  bytesPerSecond?: number | null;
  byteBurst?: number | null;
}): Pace | null {
  const perSecond = welcome.framesPerSecond ?? 0;
  const burst = welcome.frameBurst ?? 0;
  if (perSecond <= 0 || burst <= 0) return null;
  const share = Math.max(1, Math.floor(burst / 4));
  const pace: Pace = { perSecond: perSecond / 2, burst: share, window: share };
  const bytesPerSecond = welcome.bytesPerSecond ?? 0;
  const byteBurst = welcome.byteBurst ?? 0;
  if (bytesPerSecond > 0 && byteBurst > 0) {
    const byteShare = Math.max(1, Math.floor(byteBurst / 4));
    pace.bytes = { perSecond: bytesPerSecond / 2, burst: byteShare, window: byteShare };
  }
  return pace;
}

/** Same pace: the buckets built for one stay valid for the other. */
export function samePace(a: Pace | null, b: Pace | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
