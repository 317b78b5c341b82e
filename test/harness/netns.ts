import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/*
 * A real network partition: a network namespace joined to the host by a veth pair, private to
 * this machine (no route leads out of it; servers bind to the host end's address, nothing else).
 * An agent runs inside the namespace (`ip netns exec`, see `wrapper`) and reaches the control
 * plane on the host end; `cut()` takes the link down, `heal()` brings it back. Needs root and
 * iproute2; `netnsUnavailable()` says why not, for a skip with a notice.
 */

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why real partitions cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = `cairn-probe-${randomBytes(3).toString('hex')}`;
  try {
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return undefined;
  } catch (err) {
    return `"ip netns add" failed: ${(err as Error).message.split('\n')[0]}`;
  }
}

export class NetnsLink {
  /** The host end's address: what the control plane binds to and the agent connects to. */
  readonly hostAddress: string;
  readonly agentAddress: string;
  private removed = false;

  private constructor(
    readonly ns: string,
    private readonly hostIf: string,
    private readonly nsIf: string,
    subnet: number,
  ) {
    this.hostAddress = `10.213.${subnet}.1`;
    this.agentAddress = `10.213.${subnet}.2`;
  }

  /** A new namespace and veth pair with unique names; remove it with `remove()` (afterAll). */
  static create(): NetnsLink {
    const tag = randomBytes(3).toString('hex');
    const subnet = 1 + (parseInt(tag, 16) % 250);
    const link = new NetnsLink(`cairn-${tag}`, `cvh${tag}`, `cvn${tag}`, subnet);
    try {
      ip('netns', 'add', link.ns);
      ip('link', 'add', link.hostIf, 'type', 'veth', 'peer', 'name', link.nsIf);
      ip('link', 'set', link.nsIf, 'netns', link.ns);
      ip('addr', 'add', `${link.hostAddress}/30`, 'dev', link.hostIf);
      ip('link', 'set', link.hostIf, 'up');
      ip('-n', link.ns, 'addr', 'add', `${link.agentAddress}/30`, 'dev', link.nsIf);
      ip('-n', link.ns, 'link', 'set', link.nsIf, 'up');
      ip('-n', link.ns, 'link', 'set', 'lo', 'up');
    } catch (err) {
      link.remove();
      throw err;
    }
    return link;
  }

  /** The command an agent runs under to be inside the namespace. */
  get wrapper(): string[] {
    return ['ip', 'netns', 'exec', this.ns];
  }

  /** The partition: the host end goes down, and with it the namespace's only way out. */
  cut(): void {
    ip('link', 'set', this.hostIf, 'down');
  }

  heal(): void {
    ip('link', 'set', this.hostIf, 'up');
  }

  /** Removes the namespace and the veth pair (deleting either end deletes both); safe to call twice. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    for (const args of [
      ['link', 'del', this.hostIf],
      ['netns', 'del', this.ns],
    ]) {
      try {
        ip(...args);
      } catch {
        // already gone
      }
    }
  }
}
