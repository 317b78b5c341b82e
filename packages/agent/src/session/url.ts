/** Path of the agent WebSocket endpoint on the control plane. */
export const AGENT_SOCKET_PATH = '/v1/agent';

/**
 * The agent WebSocket URL for a control-plane base URL: http→ws, https→wss, same host and
 * port, `/v1/agent` under the base path.
 *
 * @example agentSocketUrl('https://cp.example:8443') // → 'wss://cp.example:8443/v1/agent'
 */
export function agentSocketUrl(server: string): string {
  const url = new URL(server);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    throw new Error(`unsupported control plane URL scheme ${url.protocol} in ${server}`);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${AGENT_SOCKET_PATH}`;
  url.search = '';
  url.hash = '';
  return url.href;
}

/** The base URL with no trailing slash, for building HTTP routes under it. */
export function serverBase(server: string): string {
  const url = new URL(server);
  url.search = '';
  url.hash = '';
  return url.href.replace(/\/+$/, '');
}
