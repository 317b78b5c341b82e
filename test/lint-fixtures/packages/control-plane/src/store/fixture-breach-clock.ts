// expect: no-restricted-syntax the time is read through the injected Clock (clock.ts), never Date.now()
// expect: no-restricted-syntax the time is read through the injected Clock (clock.ts), never Date.now()
// A repository that reads the real time: a test's clock file would not move what it stores,
// whether it calls Date.now or keeps it as its clock.
export class Stamps {
  constructor(private readonly clock: () => number = Date.now) {}

  created(): number {
    return Date.now();
  }

  at(): number {
    return this.clock();
  }
}
