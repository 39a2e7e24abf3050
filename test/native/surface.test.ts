// The addon's surface against its one declaration, src/kernel/native-api.d.ts: every function
// declared in NativeApi exists on the loaded addon, and the addon exports nothing undeclared.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native, packageRoot } from '../../src/kernel/native.js';
import { UFFD_MSG_SIZE } from '../../src/kernel/uffd.js';
import { USER_REGS_SIZE } from '../../src/kernel/regs.js';
import { PAGE_SIZE } from '../../src/kernel/syscalls.js';

/** The members of an interface: `name(` for methods, `name:` for properties, one level deep. */
function declared(source: string, iface: string): { methods: string[]; props: string[] } {
  const start = source.indexOf(`export interface ${iface} {`);
  if (start < 0) throw new Error(`no interface ${iface}`);
  let depth = 0;
  let body = '';
  for (let i = source.indexOf('{', start); i < source.length; i++) {
    const c = source[i];
    if (c === '{') depth++;
    if (c === '}' && --depth === 0) break;
    if (depth === 1) body += c; // nested object types are left out
  }
  // Drop comments, then read the top-level members.
  body = body.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const methods = [...body.matchAll(/^\s*(\w+)\s*\(/gm)].map((m) => m[1]!);
  const props = [...body.matchAll(/^\s*(\w+)\s*:/gm)].map((m) => m[1]!);
  return { methods, props };
}

const dts = readFileSync(join(packageRoot(), 'src', 'kernel', 'native-api.d.ts'), 'utf8');
const api = declared(dts, 'NativeApi');
const addon = native as unknown as Record<string, unknown>;

describe('native surface', () => {
  it('parses a plausible declaration', () => {
    // Guards the parser: a broken one would make the checks below vacuous.
    expect(api.methods.length).toBeGreaterThan(40);
    expect(api.methods).toContain('ptraceSeize');
    expect(api.methods).toContain('pagemapScan');
    expect(api.props).toEqual(['constants']);
    expect(new Set(api.methods).size).toBe(api.methods.length);
  });

  it('every declared function exists on the addon', () => {
    const missing = api.methods.filter((n) => typeof addon[n] !== 'function');
    expect(missing).toEqual([]);
  });

  it('the addon exports nothing undeclared', () => {
    const undeclared = Object.keys(addon).filter((k) => !api.methods.includes(k) && !api.props.includes(k));
    expect(undeclared).toEqual([]);
  });

  it('constants: declared keys, values that match the kernel ABI and the TS side', () => {
    const c = native.constants;
    const constBlock = dts.slice(dts.indexOf('constants: {'));
    const keys = [...constBlock.slice(0, constBlock.indexOf('}')).matchAll(/^\s*(\w+)\s*:/gm)].map((m) => m[1]!).filter((k) => k !== 'constants');
    expect(Object.keys(c).sort()).toEqual(keys.sort());
    // _IOWR('f', 16, struct pm_scan_arg): 96-byte argument.
    expect(c.PAGEMAP_SCAN >>> 0).toBe(((3 << 30) | (96 << 16) | (0x66 << 8) | 16) >>> 0);
    expect(c.pageSize).toBe(PAGE_SIZE);
    expect(c.uffdMsgSize).toBe(UFFD_MSG_SIZE);
    expect(c.pageRegionSize).toBe(24);
    expect(c.userRegsSize).toBe(USER_REGS_SIZE);
  });

  it('a missing argument is EINVAL with a code, not a crash or a bare TypeError', () => {
    for (const name of api.methods) {
      const fn = addon[name] as (...a: unknown[]) => unknown;
      if (name === 'userfaultfd') continue; // every argument optional: a real call
      if (name === 'syscallRunner') continue; // takes none: it only hands out the runner's bytes
      let code: string | undefined;
      try {
        const r = fn();
        if (r instanceof Promise) r.catch(() => {});
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      expect([name, code]).toEqual([name, 'EINVAL']);
    }
  });
});
