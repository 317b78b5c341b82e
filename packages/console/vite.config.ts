import { defineConfig } from 'vite';

// Static files for the control plane to serve at /ui: no inline script (its CSP forbids one), no
// module-preload polyfill (inlined otherwise), JSX compiled for Preact by Vite itself (no Babel).
export default defineConfig({
  base: '/ui/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: 'es2022',
  },
});
