/**
 * A JSONL file for a sidecar's file source to tail, for agents that cannot
 * reach a socket.
 *
 * Durability: an entry is acked once its line was written, i.e. is in the
 * kernel (it survives this process crashing, not the machine losing power);
 * with `fsync` once fdatasync returned too (it survives a power loss; a
 * file this client created gets its directory synced as well). Nothing
 * answers, so there is no seq: the sidecar ingests the line later, and
 * whether it stored or quarantined it shows in its buffer and metrics.
 *
 * Whole lines only: the file is opened O_APPEND and every line goes out in
 * one write call of its own, so on a local filesystem the kernel appends it
 * whole, between the lines of any other writer (another client, another
 * process). A failed write rejects its emit with `client_write_failed`; the
 * file is reopened for the next line, which also follows a rotation (the
 * path now naming another file).
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { ClientError } from './errors.js';
import type { Entry } from './queue.js';
import type { Transport, TransportHost } from './transport.js';

export interface FileTransportOptions {
  path: string;
  fsync: boolean;
  mode: number;
}

interface Open {
  handle: fsp.FileHandle;
  dev: number;
  ino: number;
}

export class FileTransport implements Transport {
  private toWrite: Entry[] = [];
  private running: Promise<void> | undefined;
  private file: Open | undefined;
  private closed = false;

  constructor(
    private readonly opts: FileTransportOptions,
    private readonly host: TransportHost,
  ) {}

  push(entry: Entry): void {
    this.toWrite.push(entry);
    this.kick();
  }

  /**
   * Starts the writer unless it runs. An emit made as soon as the previous
   * one resolved is pushed while run() has finished but its promise has not
   * settled yet: the writer is started again for it here, or its line would
   * wait for the next emit.
   */
  private kick(): void {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
      if (this.toWrite.length > 0 && !this.closed) this.kick();
    });
  }

  idle(): void {
    // Nothing keeps the process alive between writes.
  }

  async end(): Promise<void> {
    this.closed = true;
    await this.running;
    await this.closeFile();
  }

  destroy(): void {
    this.closed = true;
    void this.closeFile();
  }

  private async run(): Promise<void> {
    while (this.toWrite.length > 0 && !this.closed) {
      // Every line queued now goes in this burst, each in its own write; one fsync covers them.
      const burst = this.toWrite.filter((e) => !e.settled);
      this.toWrite = [];
      if (burst.length === 0) continue;
      let file: Open;
      try {
        file = await this.current();
      } catch (err) {
        for (const e of burst) this.host.failed(e, writeFailed(this.opts.path, 'open', err, e));
        continue;
      }
      const written: Entry[] = [];
      for (let i = 0; i < burst.length; i++) {
        const e = burst[i]!;
        if (e.settled) continue;
        try {
          await writeLine(file.handle, e.line);
        } catch (err) {
          this.host.failed(e, writeFailed(this.opts.path, 'write', err, e));
          await this.closeFile();
          // The rest go with the next burst, on a reopened file.
          this.toWrite.unshift(...burst.slice(i + 1));
          break;
        }
        if (this.opts.fsync) written.push(e);
        else this.host.acked(e, {});
      }
      if (written.length === 0) continue;
      try {
        await file.handle.datasync();
        for (const e of written) this.host.acked(e, {});
      } catch (err) {
        for (const e of written) this.host.failed(e, writeFailed(this.opts.path, 'fsync', err, e));
        await this.closeFile();
      }
    }
  }

  /** The open file, reopened when the path names another file now (rotated, deleted) or none was open. */
  private async current(): Promise<Open> {
    let created = false;
    if (this.file) {
      const st = await fsp.stat(this.opts.path).catch(() => undefined);
      if (st && st.dev === this.file.dev && st.ino === this.file.ino) return this.file;
      await this.closeFile();
    }
    const before = await fsp.stat(this.opts.path).catch(() => undefined);
    created = before === undefined;
    // O_APPEND: every write lands at the end as one piece, whoever else appends.
    const handle = await fsp.open(this.opts.path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, this.opts.mode);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
      if (created && this.opts.fsync) await syncDir(dirname(this.opts.path));
      this.file = { handle, dev: st.dev, ino: st.ino };
      return this.file;
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  private async closeFile(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    await f?.handle.close().catch(() => undefined);
  }
}

/** One write call for the whole line; a short count (disk full) is an error, not a cue to write the rest later. */
async function writeLine(handle: fsp.FileHandle, line: Buffer): Promise<void> {
  const { bytesWritten } = await handle.write(line, 0, line.length, null);
  if (bytesWritten !== line.length) {
    throw Object.assign(new Error(`only ${bytesWritten} of ${line.length} bytes were written`), { code: 'ESHORT' });
  }
}

/** The new file's name is durable only once its directory is. */
async function syncDir(dir: string): Promise<void> {
  const d = await fsp.open(dir, fsc.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function writeFailed(path: string, what: string, err: unknown, e: Entry): ClientError<'client_write_failed'> {
  const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
  return new ClientError('client_write_failed', `file ${path}: could not ${what} the event's line (${code}); the file may lack it or hold part of it. Check the path, its permissions and free space`, {
    cause: err,
    eventId: e.eventId,
  });
}
