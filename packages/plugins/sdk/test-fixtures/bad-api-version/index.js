// Written for an SDK API version no agent supports yet. Its package.json says so, and the agent
// must refuse it from there, without importing this module.
throw new Error('must never be imported: package.json already tells the agent it cannot host this plugin');
