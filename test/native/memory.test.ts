// process_vm_readv / process_vm_writev, sync and async, many iovecs per call, on the memtool
// fixture (a running C program with a known buffer, a read-only mapping and a hole).
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { MemTool, PAGE, Procs, deadPid, errCode, fnv1a, pattern } from './util.js';

const procs = new Procs();
afterEach(() => procs.cleanup());

/** 300 small ranges spread over the buffer, none page-aligned. */
function scattered(m: MemTool): number[] {
  const ranges: number[] = [];
  for (let i = 0; i < 300; i++) ranges.push(m.buf + ((i * 3331) % m.bufPages) * PAGE + ((i * 37) % 3000), 100 + (i % 7));
  return ranges;
}

function expected(m: MemTool, ranges: number[]): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    const off = ranges[i]! - m.buf;
    parts.push(Buffer.from(Array.from({ length: ranges[i + 1]! }, (_, k) => pattern(off + k))));
  }
  return Buffer.concat(parts);
}

const total = (ranges: number[]) => ranges.reduce((s, v, i) => (i % 2 ? s + v : s), 0);

describe('process_vm_readv / writev (sync)', () => {
  it('reads many ranges into one buffer, contiguously from the offset', async () => {
    const m = await procs.memtool();
    const ranges = scattered(m);
    const buf = Buffer.alloc(total(ranges) + 20, 0xee);
    expect(native.processVmReadv(m.pid, buf, 7, ranges)).toBe(total(ranges));
    expect(buf.subarray(7, 7 + total(ranges))).toEqual(expected(m, ranges));
    // Outside the filled window the buffer is untouched.
    expect(buf.subarray(0, 7)).toEqual(Buffer.alloc(7, 0xee));
    expect(buf.subarray(7 + total(ranges))).toEqual(Buffer.alloc(13, 0xee));
  });

  it('takes the ranges as a Float64Array too (the same bytes), and refuses other typed arrays', async () => {
    const m = await procs.memtool();
    const ranges = scattered(m);
    const buf = Buffer.alloc(total(ranges));
    expect(native.processVmReadv(m.pid, buf, 0, Float64Array.from(ranges))).toBe(total(ranges));
    expect(buf).toEqual(expected(m, ranges));
    // A view into a larger array: its own elements only.
    const wide = new Float64Array(ranges.length + 4);
    wide.set(ranges, 2);
    const again = Buffer.alloc(total(ranges));
    expect(await native.processVmReadvAsync(m.pid, again, 0, wide.subarray(2, 2 + ranges.length))).toBe(total(ranges));
    expect(again).toEqual(buf);
    expect(errCode(() => native.processVmReadv(m.pid, buf, 0, Float64Array.from([m.buf]) as Float64Array))).toBe('EINVAL'); // odd length
    expect(errCode(() => native.processVmReadv(m.pid, buf, 0, Int32Array.from([0, 1]) as unknown as Float64Array))).toBe('EINVAL');
  });

  it('writes many ranges; the target itself sees the bytes', async () => {
    const m = await procs.memtool();
    // 200 ranges of 64 bytes each, one per page, at varying offsets.
    const ranges: number[] = [];
    for (let p = 0; p < 200; p++) ranges.push(m.buf + p * PAGE + ((p * 97) % 4000), 64);
    const data = Buffer.alloc(200 * 64);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    expect(native.processVmWritev(m.pid, data, 0, ranges)).toBe(data.length);
    const back = Buffer.alloc(data.length);
    expect(native.processVmReadv(m.pid, back, 0, ranges)).toBe(data.length);
    expect(back).toEqual(data);
    // The fixture hashes one written range itself.
    expect(await m.cmd(`s ${ranges[0]!.toString(16)} 64`)).toBe(fnv1a(data.subarray(0, 64)));
    expect(await m.cmd(`s ${ranges[398]!.toString(16)} 64`)).toBe(fnv1a(data.subarray(199 * 64)));
  });

  it('stops short at an unmapped hole; EFAULT when the first byte is unmapped', async () => {
    const m = await procs.memtool();
    const ranges = [m.hole, PAGE, m.hole + PAGE, PAGE, m.hole + 2 * PAGE, PAGE];
    const buf = Buffer.alloc(3 * PAGE);
    expect(native.processVmReadv(m.pid, buf, 0, ranges)).toBe(PAGE);
    expect(buf.subarray(0, PAGE)).toEqual(Buffer.alloc(PAGE, 0x11));
    // A range straddling the hole's start also stops there.
    expect(native.processVmReadv(m.pid, buf, 0, [m.hole + PAGE - 100, 200])).toBe(100);
    expect(errCode(() => native.processVmReadv(m.pid, buf, 0, [m.hole + PAGE, PAGE]))).toBe('EFAULT');

    expect(native.processVmWritev(m.pid, Buffer.alloc(3 * PAGE, 0x44), 0, ranges)).toBe(PAGE);
    expect(errCode(() => native.processVmWritev(m.pid, buf, 0, [m.hole + PAGE, 8]))).toBe('EFAULT');
    // Read-only mapping: readable, not writable.
    expect(native.processVmReadv(m.pid, buf, 0, [m.other, PAGE])).toBe(PAGE);
    expect(errCode(() => native.processVmWritev(m.pid, buf, 0, [m.other, 8]))).toBe('EFAULT');
  });

  it('argument and kernel errors: EINVAL, ENOBUFS, ESRCH', async () => {
    const m = await procs.memtool();
    const buf = Buffer.alloc(PAGE);
    // The kernel takes at most UIO_MAXIOV (1024) remote iovecs per call.
    const many = Array.from({ length: 1025 }, (_, i) => [m.buf + i, 1]).flat();
    expect(native.processVmReadv(m.pid, Buffer.alloc(1024), 0, many.slice(0, 2048))).toBe(1024);
    expect(errCode(() => native.processVmReadv(m.pid, Buffer.alloc(1025), 0, many))).toBe('EINVAL');
    expect(errCode(() => native.processVmReadv(m.pid, buf, 0, [m.buf]))).toBe('EINVAL');
    expect(errCode(() => native.processVmReadv(m.pid, buf, 1, [m.buf, PAGE]))).toBe('ENOBUFS');
    expect(errCode(() => native.processVmReadv(m.pid, buf, PAGE + 1, []))).toBe('EINVAL');
    expect(errCode(() => native.processVmReadv(m.pid, 'x' as unknown as Buffer, 0, []))).toBe('EINVAL');
    const dead = deadPid();
    expect(errCode(() => native.processVmReadv(dead, buf, 0, [m.buf, 8]))).toBe('ESRCH');
    expect(errCode(() => native.processVmWritev(dead, buf, 0, [m.buf, 8]))).toBe('ESRCH');
  });
});

describe('process_vm_readv / writev (async)', () => {
  it('reads and writes the whole buffer in 512 iovecs off the event loop', async () => {
    const m = await procs.memtool();
    const len = m.bufPages * PAGE;
    const half = PAGE / 2;
    const ranges: number[] = [];
    for (let off = 0; off < len; off += half) ranges.push(m.buf + off, half);
    expect(ranges.length / 2).toBe(512);

    const buf = Buffer.alloc(len);
    expect(await native.processVmReadvAsync(m.pid, buf, 0, ranges)).toBe(len);
    for (const off of [0, 1, 4095, 4096, 12345, len - 1]) expect(buf[off]).toBe(pattern(off));
    const want = Buffer.alloc(len);
    for (let i = 0; i < len; i++) want[i] = pattern(i);
    // Buffer.equals: vitest's deep equality walks a MiB byte by byte, slowly.
    expect(buf.equals(want)).toBe(true);

    const data = Buffer.alloc(len);
    for (let i = 0; i < len; i++) data[i] = (i * 11 + (i >> 12)) & 0xff;
    // Reversed order: range i of the remote side takes the i-th slice of the local buffer.
    const reversed: number[] = [];
    for (let i = ranges.length - 2; i >= 0; i -= 2) reversed.push(ranges[i]!, ranges[i + 1]!);
    expect(await native.processVmWritevAsync(m.pid, data, 0, reversed)).toBe(len);
    const back = Buffer.alloc(len);
    expect(await native.processVmReadvAsync(m.pid, back, 0, reversed)).toBe(len);
    expect(back.equals(data)).toBe(true);
    expect(await m.cmd(`s ${m.buf.toString(16)} ${half}`)).toBe(fnv1a(data.subarray(len - half)));
  });

  it('short counts and errors arrive as rejections with codes', async () => {
    const m = await procs.memtool();
    const buf = Buffer.alloc(3 * PAGE);
    expect(await native.processVmReadvAsync(m.pid, buf, 0, [m.hole, PAGE, m.hole + PAGE, PAGE])).toBe(PAGE);
    expect(await native.processVmWritevAsync(m.pid, buf, 0, [m.hole + 2 * PAGE, PAGE, m.hole + PAGE, PAGE])).toBe(PAGE);
    await expect(native.processVmReadvAsync(m.pid, buf, 0, [m.hole + PAGE, PAGE])).rejects.toMatchObject({
      code: 'EFAULT',
      syscall: `process_vm_readv(${m.pid})`,
    });
    await expect(native.processVmWritevAsync(m.pid, buf, 0, [m.other, 8])).rejects.toMatchObject({ code: 'EFAULT' });
    const dead = deadPid();
    await expect(native.processVmReadvAsync(dead, buf, 0, [m.buf, 8])).rejects.toMatchObject({ code: 'ESRCH' });
    await expect(native.processVmWritevAsync(dead, buf, 0, [m.buf, 8])).rejects.toMatchObject({ code: 'ESRCH' });
    // Argument errors are thrown at the call, before anything is queued.
    expect(errCode(() => native.processVmReadvAsync(m.pid, buf, 0, [m.buf, 4 * PAGE]))).toBe('ENOBUFS');
  });
});
