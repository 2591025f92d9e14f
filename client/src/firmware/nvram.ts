/** Copy the UEFI variable template to the user's nvram file: all or nothing, never over a file. */
import { copyFileSync, linkSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ClientError } from '../errors.js';

export function copyNvramTemplate(from: string, to: string): void {
  const temp = join(dirname(to), `.${basename(to)}.${process.pid}.xkvm-tmp`);
  try {
    copyFileSync(from, temp);
    linkSync(temp, to); // fails if `to` appeared meanwhile: never overwrite a user's variables
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'EEXIST' ? 'it appeared meanwhile' : (cause as Error).message;
    throw new ClientError('NVRAM', `cannot create the UEFI variable file '${to}' from '${from}': ${reason}`, { cause });
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // never created
    }
  }
}
