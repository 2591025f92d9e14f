/** The format of disk images, from `qemu-img info --output=json`, several images at once. */
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { ClientError } from '../errors.js';
import { childProcess } from '../lazy.js';

export type FormatDetector = (path: string) => Promise<string>;

export function qemuImgFormat(qemuImg = 'qemu-img'): FormatDetector {
  return (path) =>
    new Promise((resolve, reject) => {
      childProcess().execFile(
        qemuImg,
        ['info', '--output=json', '--', path],
        { env: { ...process.env, LANG: 'C', LC_ALL: 'C' }, timeout: 30_000, maxBuffer: 1 << 20 },
        (error, stdout, stderr) => {
          if (error !== null) {
            const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
            const why = missing
              ? `${qemuImg} is not installed (apt-get install qemu-utils)`
              : escapeForTerminal(String(stderr).trim().split('\n')[0] ?? error.message);
            reject(new ClientError('BAD_DISK', `cannot determine the format of '${path}': ${why}`, { cause: error }));
            return;
          }
          try {
            const info = JSON.parse(stdout) as { format?: unknown };
            if (typeof info.format !== 'string' || !/^[a-z0-9_-]+$/.test(info.format)) throw new Error('no "format" in qemu-img output');
            resolve(info.format);
          } catch (cause) {
            reject(new ClientError('BAD_DISK', `cannot determine the format of '${path}': unexpected qemu-img output`, { cause }));
          }
        },
      );
    });
}
