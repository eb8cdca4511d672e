/**
 * The socket source's file on disk: listen on it with the configured mode,
 * and remove only what is ours.
 *
 * Contracts:
 * - a path that exists and is not a socket, or a socket someone listens
 *   on, is never replaced (`socket_path_not_socket`, `socket_in_use`); only
 *   a stale socket nobody accepts on is removed;
 * - the file's `dev:ino` is remembered once its mode is set, so removing it
 *   at close never unlinks a socket another process created at that path.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import net, { type Server, type Socket } from 'node:net';
import { errCode, type SourceLifecycle } from './source.js';

/** A listening server on `path` (mode set), and the socket file's identity. */
export async function listenOn(
  path: string,
  mode: number,
  life: SourceLifecycle,
  onConnection: (socket: Socket) => void,
): Promise<{ server: Server; identity: string }> {
  await removeStale(path, life);
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const code = errCode(err);
    if (code === 'EADDRINUSE') throw life.error('socket_in_use', `${path} is already in use`, err);
    throw life.error('socket_listen_failed', `cannot listen on ${path} (${code ?? 'error'})`, err);
  }
  server.on('error', (err) => life.report('socket_server_error', `server error (${errCode(err) ?? 'error'})`, err));
  try {
    // Until this chmod the file has the umask's mode; connections arriving meanwhile are closed at once.
    await chmod(path, mode);
    const st = await lstat(path);
    return { server, identity: `${st.dev}:${st.ino}` };
  } catch (err) {
    await closeListener(server);
    throw life.error('socket_chmod_failed', `cannot set the mode of ${path} (${errCode(err) ?? 'error'})`, err);
  }
}

/** Stops accepting. server.close() resolves only when every connection is gone; the listener itself closes at once. */
export async function closeListener(server: Server): Promise<void> {
  server.close();
  await new Promise<void>((r) => setImmediate(r));
}

/** Removes the socket file at `path` if it is still the one we created (`identity`). */
export async function unlinkOwnSocket(path: string, identity: string, life: SourceLifecycle): Promise<void> {
  try {
    // libuv normally removes the file when the listener closes; this covers the rest.
    const st = await lstat(path);
    if (st.isSocket() && `${st.dev}:${st.ino}` === identity) await unlink(path);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') life.report('socket_unlink_failed', `cannot remove ${path} (${errCode(err) ?? 'error'})`, err);
  }
}

/** Removes a socket file nobody listens on; refuses anything else. */
async function removeStale(path: string, life: SourceLifecycle): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return;
    throw life.error('socket_path_invalid', `cannot inspect ${path} (${errCode(err) ?? 'error'})`, err);
  }
  if (!st.isSocket()) {
    throw life.error('socket_path_not_socket', `${path} exists and is not a socket; refusing to replace it`);
  }
  if (await isListening(path, life)) {
    throw life.error('socket_in_use', `another process is listening on ${path}`);
  }
  try {
    await unlink(path);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') {
      throw life.error('socket_path_invalid', `cannot remove the stale socket ${path} (${errCode(err) ?? 'error'})`, err);
    }
  }
  life.notice(`removed a stale socket file at ${path}`);
}

/** True when something accepts connections on `path`. */
function isListening(path: string, life: SourceLifecycle): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err) => {
      probe.destroy();
      const code = errCode(err);
      if (code === 'ECONNREFUSED' || code === 'ENOENT') resolve(false);
      // a full accept backlog: someone is listening
      else if (code === 'EAGAIN') resolve(true);
      else reject(life.makeError('socket_path_invalid', `cannot probe the socket at ${path} (${code ?? 'error'})`, { cause: err }));
    });
  });
}
