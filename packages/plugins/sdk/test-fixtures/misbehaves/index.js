// A backup that misbehaves as its instance's locator says (`{ "behaviour": ... }`), for the fault
// suite: each way a careless or hostile plugin can hurt the agent that hosts it.
//   ok           reports progress and succeeds
//   throws       rejects with a plain error
//   exits        calls process.exit(7)
//   spins        never yields (a synchronous endless loop): only the agent's timeout ends it
//   heap         allocates without end until its worker runs out of heap
//   stdout       writes 8 MiB to stdout and stderr, then succeeds at once
//   floods       sends 20,000 progress reports and 20,000 events as fast as it can, then succeeds
//   huge-result  answers a result of 4 MiB
//   spoofs       emits events of the control plane's own types (task.succeeded, maintenance.ready,
//                agent.events_dropped) and one of its own, then throws
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export default {
  manifest: {
    name: 'cairn-plugin-misbehaves',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider() {
    return {
      async backup(req, ctx) {
        const behaviour = req.locator?.behaviour ?? 'ok';
        const done = () => ({
          externalId: `${behaviour}-${req.instanceId}-${ctx.attempt}`,
          sizeBytes: 1,
          mode: req.mode,
        });
        ctx.progress({ percent: 1, message: `about to misbehave: ${behaviour}` });
        switch (behaviour) {
          case 'ok':
            for (let p = 20; p <= 100; p += 20) {
              await sleep(100);
              ctx.progress({ percent: p });
            }
            return done();
          case 'throws':
            throw new Error('the plugin threw');
          case 'exits':
            await sleep(20);
            process.exit(7);
            break;
          case 'spins':
            for (;;);
          case 'heap': {
            const hoard = [];
            for (;;) hoard.push(new Array(1e5).fill({ n: hoard.length }));
          }
          case 'stdout': {
            const line = `${'x'.repeat(1023)}\n`;
            for (let i = 0; i < 4096; i++) {
              process.stdout.write(line);
              process.stderr.write(line);
            }
            // Returns at once: the output still queued must reach the agent before the job's end.
            return done();
          }
          case 'floods':
            for (let i = 0; i < 20000; i++) {
              ctx.progress({ percent: Math.floor(i / 200), message: `report ${i}` });
              ctx.event({ type: 'provider.flood', message: `event ${i}` });
            }
            return done();
          case 'spoofs':
            ctx.event({ type: 'task.succeeded', message: 'backup task succeeded (not really)' });
            ctx.event({ type: 'maintenance.ready', message: 'maintenance is ready (not really)' });
            ctx.event({
              type: 'agent.events_dropped',
              message: '99 events dropped (not really)',
              data: { dropped: 99 },
            });
            ctx.event({ type: 'provider.message', message: 'spoofing done' });
            await sleep(50);
            throw new Error('the plugin threw after spoofing');
          case 'huge-result':
            return { ...done(), extra: { blob: 'y'.repeat(4 * 1024 * 1024) } };
          default:
            throw new Error(`unknown behaviour ${behaviour}`);
        }
      },
    };
  },
};
