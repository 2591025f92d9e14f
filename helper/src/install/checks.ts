import { isAbsolute, normalize } from 'node:path';
import { InstallError } from './errors.js';

/**
 * Paths that go into generated files (a shebang, XML, unit files, a JavaScript rule): absolute,
 * normalised, and free of control characters, so no quoting mistake can turn one into syntax.
 */
export function checkedPath(path: string, what: string): string {
  if (!isAbsolute(path)) {
    throw new InstallError('INSTALL_BAD_PATH', `${what} ${JSON.stringify(path)} is relative; expected an absolute path`);
  }
  if (/[\u0000-\u001f\u007f]/.test(path)) {
    throw new InstallError('INSTALL_BAD_PATH', `${what} ${JSON.stringify(path)} contains a control character; expected a plain path`);
  }
  if (normalize(path) !== path) {
    throw new InstallError('INSTALL_BAD_PATH', `${what} ${JSON.stringify(path)} is not normalised; expected ${normalize(path)}`);
  }
  return path;
}
