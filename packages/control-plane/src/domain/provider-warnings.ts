/**
 * What a new provider connection will not do yet, told when it is made. Never a refusal: agents
 * may be enrolled, or run with the plugin, after the connection exists; until then its tasks
 * (the periodic sync among them) wait in the queue for an agent that can take them.
 */
export interface ProviderWarning {
  code: 'no_agent_in_zone' | 'plugin_not_in_zone';
  message: string;
}

/** `agents`: the zone's agents (enrolled, not revoked); `plugins`: the plugins they reported. */
export function providerWarnings(
  zone: string,
  plugin: string,
  presence: { agents: number; plugins: readonly string[] },
): ProviderWarning[] {
  if (presence.agents === 0) {
    return [
      {
        code: 'no_agent_in_zone',
        message: `zone "${zone}" has no agent: the connection's tasks, its sync among them, wait until one is enrolled there and runs ${plugin}`,
      },
    ];
  }
  if (!presence.plugins.includes(plugin)) {
    return [
      {
        code: 'plugin_not_in_zone',
        message: `no agent of zone "${zone}" has reported plugin ${plugin}: the connection's tasks, its sync among them, wait until one runs it`,
      },
    ];
  }
  return [];
}
