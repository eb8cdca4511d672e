/**
 * A small, real tmpfs for full-disk tests: `mount -t tmpfs -o size=N` on a
 * directory, a filler file that takes the free space down to a chosen amount
 * (or to nothing), and an unmount that never leaves a mount behind.
 *
 * Mounting needs root (or CAP_SYS_ADMIN). There is no substitute that gives a
 * real ENOSPC without one here (a loop filesystem needs mount too, and
 * RLIMIT_FSIZE gives EFBIG and SIGXFSZ, not ENOSPC), so when the mount is
 * refused mountTmpfs throws a TmpfsUnavailable error that says so: a full-disk
 * test must fail loudly, never pass without having filled a disk.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';

export class TmpfsUnavailable extends Error {
  override name = 'TmpfsUnavailable';
}

export interface Tmpfs {
  readonly dir: string;
  readonly sizeBytes: number;
  /** bytes an unprivileged writer can still allocate */
  free(): number;
  /**
   * Writes zeros to `path` (on this tmpfs) until at most `leaveBytes` are free,
   * then, if `leaveBytes` is 0, on in small writes until the kernel answers
   * ENOSPC. Returns the filler's size.
   */
  fill(path: string, leaveBytes?: number): number;
  /** Unmounts (lazily as a last resort). Safe to call twice. */
  unmount(): void;
}

function run(cmd: string, args: string[]): { ok: true } | { ok: false; message: string } {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    return { ok: true };
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return { ok: false, message: (e.stderr?.toString().trim() || e.message).replace(/\s+/g, ' ').replace(/\.+$/, '').slice(0, 500) };
  }
}

function isMountPoint(dir: string): boolean {
  return run('mountpoint', ['-q', dir]).ok;
}

const mounted = new Set<string>();
let exitHook = false;

/** Mounts a tmpfs of `sizeBytes` on `dir` (created if missing). */
export function mountTmpfs(dir: string, sizeBytes: number): Tmpfs {
  mkdirSync(dir, { recursive: true });
  const r = run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir]);
  if (!r.ok) {
    const uid = typeof process.getuid === 'function' ? process.getuid() : 'unknown';
    throw new TmpfsUnavailable(
      `cannot mount a ${sizeBytes}-byte tmpfs on ${dir} (uid ${uid}): ${r.message}. ` +
        'The full-disk test needs root or CAP_SYS_ADMIN to get a real ENOSPC; it does not pass without one.',
    );
  }
  mounted.add(dir);
  if (!exitHook) {
    exitHook = true;
    // afterAll unmounts; this is only for a worker that dies before it runs.
    process.once('exit', () => {
      for (const d of mounted) run('umount', ['-l', d]);
    });
  }
  const free = (): number => {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  };
  return {
    dir,
    sizeBytes,
    free,
    fill(path: string, leaveBytes = 0): number {
      const fd = openSync(path, 'a');
      let size = 0;
      try {
        const big = Buffer.alloc(64 * 1024);
        const small = Buffer.alloc(4096);
        for (;;) {
          const room = free() - leaveBytes;
          if (room <= 0) break;
          const buf = room >= big.length ? big : small;
          try {
            size += writeSync(fd, buf, 0, Math.min(buf.length, room));
          } catch (err) {
            if ((err as { code?: string }).code === 'ENOSPC') break;
            throw err;
          }
        }
        if (leaveBytes === 0) {
          // Page-granular until the kernel itself refuses.
          for (;;) {
            try {
              size += writeSync(fd, small);
            } catch (err) {
              if ((err as { code?: string }).code === 'ENOSPC') break;
              throw err;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      return size;
    },
    unmount(): void {
      if (!mounted.has(dir)) return;
      for (let i = 0; i < 5 && isMountPoint(dir); i++) {
        if (run('umount', [dir]).ok) break;
        // EBUSY: a process we spawned may still hold a file; give it a moment.
        execFileSync('sleep', ['0.2']);
      }
      if (isMountPoint(dir)) run('umount', ['-l', dir]);
      mounted.delete(dir);
      if (isMountPoint(dir)) throw new Error(`${dir} is still mounted after umount -l`);
    },
  };
}

/** Removes a filler file (frees its space). */
export function removeFiller(path: string): void {
  rmSync(path, { force: true });
}
