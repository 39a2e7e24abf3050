// A small schema language for the JSON images: each check names the field path, so a bad
// file is reported as "core-42.json: regs.rip: expected a hex string". No dependency: the
// images are simple, and errors must carry the file and the field.

export class SchemaError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path || '(root)'}: ${problem}`);
  }
}

export type Check<T> = (v: unknown, path: string) => T;

const fail = (path: string, problem: string): never => {
  throw new SchemaError(path, problem);
};

export const num: Check<number> = (v, p) => (typeof v === 'number' && Number.isFinite(v) ? v : fail(p, 'expected a number'));
export const int: Check<number> = (v, p) => (Number.isSafeInteger(v) ? (v as number) : fail(p, 'expected an integer'));
export const uint: Check<number> = (v, p) => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : fail(p, 'expected a non-negative integer'));
export const str: Check<string> = (v, p) => (typeof v === 'string' ? v : fail(p, 'expected a string'));
export const bool: Check<boolean> = (v, p) => (typeof v === 'boolean' ? v : fail(p, 'expected a boolean'));
/** 64-bit values (masks, registers) as "0x..." strings: JSON numbers lose bits above 2^53. */
export const hex: Check<string> = (v, p) =>
  typeof v === 'string' && /^0x[0-9a-f]{1,16}$/i.test(v) ? v : fail(p, 'expected a hex string (0x...)');
export const base64: Check<string> = (v, p) =>
  typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v) ? v : fail(p, 'expected base64 data');

export function literal<T extends string | number>(...values: T[]): Check<T> {
  return (v, p) => (values.includes(v as T) ? (v as T) : fail(p, `expected one of ${values.map((x) => JSON.stringify(x)).join(', ')}`));
}

export function arr<T>(item: Check<T>): Check<T[]> {
  return (v, p) => (Array.isArray(v) ? v.map((x, i) => item(x, `${p}[${i}]`)) : fail(p, 'expected an array'));
}

export function opt<T>(c: Check<T>): Check<T | undefined> {
  return (v, p) => (v === undefined ? undefined : c(v, p));
}

export function nullable<T>(c: Check<T>): Check<T | null> {
  return (v, p) => (v === null ? null : c(v, p));
}

type Shape = Record<string, Check<unknown>>;
type Out<S extends Shape> = { [K in keyof S as undefined extends ReturnType<S[K]> ? never : K]: ReturnType<S[K]> } & {
  [K in keyof S as undefined extends ReturnType<S[K]> ? K : never]?: ReturnType<S[K]>;
};

/** An object with exactly these fields (unknown fields are refused: a foreign file, not ours). */
export function obj<S extends Shape>(shape: S): Check<Out<S>> {
  return (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(p, 'expected an object');
    const out: Record<string, unknown> = {};
    for (const [k, c] of Object.entries(shape)) {
      const r = c((v as Record<string, unknown>)[k], p ? `${p}.${k}` : k);
      if (r !== undefined) out[k] = r;
    }
    for (const k of Object.keys(v)) if (!(k in shape)) fail(p ? `${p}.${k}` : k, 'unknown field');
    return out as Out<S>;
  };
}

export function record<T>(value: Check<T>): Check<Record<string, T>> {
  return (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(p, 'expected an object');
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) out[k] = value(x, p ? `${p}.${k}` : k);
    return out;
  };
}

export type Infer<C> = C extends Check<infer T> ? T : never;
