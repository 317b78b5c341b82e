// expect: no-restricted-syntax a constructor of more than 4 parameters takes one options object
// Five positional parameters: a caller can swap two of one type unseen. Four still pass.
export class Wide {
  constructor(
    readonly a: string,
    readonly b: string,
    readonly c: string,
    readonly d: string,
    readonly e: string,
  ) {}
}

export class Narrow {
  constructor(
    readonly a: string,
    readonly b: string,
    readonly c: string,
    readonly d: string,
  ) {}
}
