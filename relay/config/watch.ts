// Watches the relay's mounted config file and hands each new text to the caller. Two ways a file
// changes under a running relay:
// - a Kubernetes ConfigMap volume: the kubelet writes a new timestamped directory and swaps the
//   `..data` symlink, so `relay.yaml` (itself a symlink into `..data`) changes without any write
//   to it; only a directory watch sees that;
// - a plain rewrite (an administrator, a test, `mailfleet dev`), by rename or in place.
// The directory is watched, and the file is read again on a timer as well, because inotify
// events can be lost (a watched directory replaced, an overlay filesystem). The caller compares
// versions, so extra reads cost nothing.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/**
 * Whether a directory watcher's event is about this file: its name, or the kubelet's `..data` /
 * `..<timestamp>` entries of a mounted ConfigMap or Secret. A directory shared with busy files (a
 * log written beside the config, `mailfleet relay --config ./relay.yaml`) otherwise woke the
 * watcher on every write of theirs. No name given: yes (it may be ours).
 */
export function aboutFile(file: string): (filename: string | Buffer | null) => boolean {
  const name = basename(file);
  return (filename) => filename === null || String(filename) === name || String(filename).startsWith('..');
}

export interface ConfigWatcher {
  /** Reads the file now (what the timer does). */
  check(): Promise<void>;
  close(): void;
}

export function watchConfigFile(
  file: string,
  onText: (text: string) => void,
  onError: (err: Error) => void,
  options: { pollMs?: number; debounceMs?: number } = {},
): ConfigWatcher {
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let reading: Promise<void> | undefined;
  let again = false;

  async function check(): Promise<void> {
    if (closed) return;
    // One read at a time; an event during a read asks for one more.
    if (reading) {
      again = true;
      return reading;
    }
    reading = (async () => {
      do {
        again = false;
        try {
          onText(await readFile(file, 'utf8'));
        } catch (err) {
          // Between the kubelet's unlink and symlink there is a moment without the file.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err as Error);
        }
      } while (again && !closed);
    })().finally(() => (reading = undefined));
    return reading;
  }

  // A writer's several events (truncate, write, close; or the kubelet's symlink dance) become one read.
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void check(), options.debounceMs ?? 100);
  };
  const ours = aboutFile(file);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, filename) => {
      if (ours(filename)) soon();
    });
    watcher.on('error', (err) => onError(err));
  } catch (err) {
    onError(err as Error);
  }
  const poll = setInterval(() => void check(), options.pollMs ?? 10_000);
  poll.unref();

  return {
    check,
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    },
  };
}
