/** Shared with `@cairn/plugin-sdk/testing`, so both call a provider's methods the same way. */
export { invoke } from '@cairn/plugin-sdk/host';
